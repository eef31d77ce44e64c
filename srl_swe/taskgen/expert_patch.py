"""What the scripted expert reads and says: the gold patch's hunks, the edit that applies one, pytest's and the
editor's output (failed tests, traceback frames, pass counts, numbered lines), and the thought before an edit.
All of it is bounded and checked, since a task record is input from a file: a patch the expert cannot apply is an
:class:`ExpertError` naming the instance.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from srl_swe.errors import SRLError

MAX_PATCH_CHARS = 200_000
MAX_HUNKS = 8
MAX_CONTEXT = 40  # lines of context added around a change to make old_str unique
_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_FRAME = re.compile(r"^([^\s:]+\.py):(\d+): in (\S+)$", re.M)
_COUNT = re.compile(r"\b\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)\b")
_NUMBERED = re.compile(r"^ *(\d+)\t(.*)$", re.M)
_SCOPE = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+(\w+)")


class ExpertError(SRLError):
    """The expert cannot solve this task: an unsupported record or an observation the plan did not expect."""


@dataclass(frozen=True)
class Hunk:
    """One hunk of the gold patch: ``start`` is the 1-based first line of its old side in the buggy file."""

    path: str
    start: int
    old: tuple[str, ...]
    new: tuple[str, ...]
    lead: int  # context lines before the first change
    trail: int  # context lines after the last change

    def removed(self) -> tuple[str, ...]:
        return self.old[self.lead : len(self.old) - self.trail]

    def added(self) -> tuple[str, ...]:
        return self.new[self.lead : len(self.new) - self.trail]

    def changed_lines(self) -> tuple[int, int]:
        """The buggy file's lines the fix replaces; for a pure insertion the two lines around it."""
        first = self.start + self.lead
        if self.removed():
            return first, first + len(self.removed()) - 1
        return max(1, first - 1), first


def _bad(iid: str, why: str) -> ExpertError:
    return ExpertError(f"{iid}: the gold patch {why}; the scripted expert edits existing text files only")


def parse_patch(patch: object, iid: str) -> list[Hunk]:
    """The hunks of a ``git diff`` (edits of existing text files), in file order."""
    if not isinstance(patch, str) or not patch.strip():
        raise _bad(iid, "is empty or not text")
    if len(patch) > MAX_PATCH_CHARS:
        raise _bad(iid, f"has {len(patch)} characters (more than {MAX_PATCH_CHARS})")
    hunks: list[Hunk] = []
    path: str | None = None
    lines = patch.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(("--- /dev/null", "+++ /dev/null", "Binary files", "GIT binary patch", "rename from")):
            raise _bad(iid, f"adds, deletes, renames or binary-patches a file ({line[:60]!r})")
        if line.startswith("+++ "):
            path = line[4:].split("\t")[0].removeprefix("b/")
            p = PurePosixPath(path)
            if p.is_absolute() or ".." in p.parts or not path or "\\" in path:
                raise _bad(iid, f"names the path {path!r}")
        m = _HEADER.match(line)
        if m and path is None:
            raise _bad(iid, "has a hunk before any +++ line")
        if m:
            n_old, n_new = int(m.group(2) or 1), int(m.group(4) or 1)
            old, new, tags = [], [], []
            i += 1
            while (len(old) < n_old or len(new) < n_new) and i < len(lines):
                tag, text = lines[i][:1], lines[i][1:]
                if tag in (" ", ""):
                    old.append(text), new.append(text), tags.append(" ")
                elif tag in "-+":
                    (old if tag == "-" else new).append(text), tags.append(tag)
                elif tag != "\\":
                    raise _bad(iid, f"has a malformed hunk line {lines[i][:60]!r}")
                i += 1
            if (len(old), len(new)) != (n_old, n_new) or ("-" not in tags and "+" not in tags):
                raise _bad(iid, f"has a hunk of {path} whose lines do not match its header {line[:40]!r}")
            changes = [k for k, t in enumerate(tags) if t != " "]
            hunks.append(Hunk(path, int(m.group(1)), tuple(old), tuple(new), changes[0],
                              len(tags) - 1 - changes[-1]))
            if len(hunks) > MAX_HUNKS:
                raise _bad(iid, f"has more than {MAX_HUNKS} hunks")
            continue
        i += 1
    if not hunks:
        raise _bad(iid, "has no hunk")
    return hunks


def find_edit(content: str, hunk: Hunk, rng: random.Random, iid: str) -> tuple[str, str]:
    """``(old_str, new_str)`` for ``str_replace``: the hunk's change with the fewest lines of the file's own context
    (a random 0-1 to start with) that make ``old_str`` occur exactly once in ``content``."""
    lines = content.split("\n")
    a = hunk.start - 1 + hunk.lead  # 0-based first removed line (or where the insertion goes)
    removed, added = list(hunk.removed()), list(hunk.added())
    b = a + len(removed)
    if lines[a:b] != removed:
        raise ExpertError(f"{iid}: {hunk.path} does not hold the gold patch's old lines at line {a + 1}")
    before, after = rng.randint(0, 1), rng.randint(0, 1)
    for step in range(2 * MAX_CONTEXT + 2):
        lo, hi = max(0, a - before), min(len(lines), b + after)
        old = "\n".join(lines[lo:hi])
        if old.strip() and content.count(old) == 1:
            return old, "\n".join(lines[lo:a] + added + lines[b:hi])
        if (step % 2 == 0 and lo > 0) or hi >= len(lines):
            before += 1
        else:
            after += 1
    raise ExpertError(f"{iid}: no old_str around {hunk.path}:{a + 1} with up to {MAX_CONTEXT} context lines is "
                      "unique in the file")


def enclosing(lines: list[str], index: int) -> list[tuple[str, str, int]]:
    """``(kind, name, 1-based line)`` of the defs and classes around 0-based line ``index``, innermost first."""
    out = []
    own = _SCOPE.match(lines[index]) if 0 <= index < len(lines) else None
    if own:  # the change is on a def or class line itself (a changed default): that is the scope
        out.append(("class" if lines[index].lstrip().startswith("class") else "def", own.group(2), index + 1))
        probe = lines[index]
    else:
        probe = next((lines[k] for k in range(index, min(len(lines), index + 50)) if lines[k].strip()), "")
    indent = len(probe.expandtabs()) - len(probe.expandtabs().lstrip())
    if own and not indent:
        return out
    for k in range(min(index, len(lines)) - 1, -1, -1):
        m = _SCOPE.match(lines[k])
        if m and len(m.group(1).expandtabs()) < indent:
            out.append(("class" if lines[k].lstrip().startswith("class") else "def", m.group(2), k + 1))
            indent = len(m.group(1).expandtabs())
            if not indent:
                break
    return out


def normalise(text: str) -> str:
    """pytest's wall-clock durations and object addresses made constant: the rest of a test run's output is
    the same on every run."""
    text = re.sub(r"\bin \d+(?:\.\d+)?s\b(?: \(\d+:\d\d:\d\d\))?", "in 0.00s", text)
    return re.sub(r"\bat 0x[0-9a-fA-F]+\b", "at 0x0", text)


def frames(output: str) -> list[tuple[str, int, str]]:
    """``(file, line, function)`` of each ``--tb=short`` traceback frame, outermost first."""
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in _FRAME.finditer(output)]


def test_failed(output: str, node: str) -> bool:
    """Whether pytest's short summary has a ``FAILED``/``ERROR`` line for the test ``node``."""
    return any(line in (f"FAILED {node}", f"ERROR {node}") or line.startswith((f"FAILED {node} ", f"ERROR {node} "))
               for line in output.splitlines())


def summary_counts(output: str) -> str:
    """pytest's result counts from its last summary line (``1 failed, 12 passed, 1 warning``), "" if none."""
    for line in reversed(output.splitlines()):
        found = _COUNT.findall(line)
        if found:
            return ", ".join(found)
    return ""


def failing_counts(counts: str) -> bool:
    return bool(re.search(r"\b\d+ (?:failed|errors?)\b", counts))


def viewed_lines(output: str) -> dict[int, str]:
    """Line number -> text of a ``str_replace_editor view`` output (``cat -n`` style)."""
    return {int(m.group(1)): m.group(2) for m in _NUMBERED.finditer(output)}


# --- the thought before an edit ---------------------------------------------------------------------------------------

MAX_QUOTE = 160
FAMILY_NOTES = {
    "flip_comparison": "the comparison operator is wrong", "flip_boolean": "the boolean logic is wrong",
    "flip_arithmetic": "the arithmetic operator is wrong", "off_by_one_constant": "the constant is off by one",
    "off_by_one_slice": "the slice bound is off by one", "swap_if_else": "the two branches are swapped",
    "remove_conditional": "a conditional branch is missing", "remove_early_return": "a `return` is missing",
    "remove_statement": "a statement is missing", "swap_arguments": "two arguments are in the wrong order",
    "change_default": "the default value is wrong",
}


def quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3] + "..."


def _code(lines: Sequence[str]) -> str:
    """One line inline, several as a block (which then ends the sentence before it)."""
    return f"`{lines[0].strip()}`" if len(lines) == 1 else ":\n```\n" + "\n".join(lines) + "\n```\n"


def _then(text: str, more: str) -> str:
    """``more`` after ``text``: a space after a sentence, nothing after a code block (it ends with a newline)."""
    return text + more if not more or text.endswith("\n") else f"{text} {more}"


def fix_thought(hunk: Hunk, shown: list[str], viewed: dict[int, str], note: str, error: str) -> str:
    """The thought before an edit: the viewed lines it changes, what is wrong (the bug family's note) and the
    new text, and the error it would explain."""
    first, last = hunk.changed_lines()
    added, explains = list(hunk.added()), f"That would explain `{error}`." if error else ""
    if hunk.removed():
        where = f"{hunk.path} line {first}" if last == first else f"{hunk.path} lines {first}-{last}"
        if len(shown) == 1:
            text = f"In {where}, {_code(shown)}" + (f": {note}." if note else ".")
        else:
            text = _then(f"In {where}{_code(shown)}", f"{note[:1].upper()}{note[1:]}." if note else "")
        new = ("It should read " + _code(added) + "." if len(added) == 1 else "It should read" + _code(added)
               if added else "It must go.")
        return _then(_then(text, new), explains)
    above = first  # the last non-empty line above the insertion, as the anchor
    while above > 1 and not (viewed.get(above) or "").strip() and (above - 1) in viewed:
        above -= 1
    blanks = first - above
    anchor = f"line {above} (`{viewed[above].strip()}`)" if (viewed.get(above) or "").strip() else f"line {above}"
    if blanks:
        anchor += f" and the {'empty line' if blanks == 1 else f'{blanks} empty lines'} below it"
    if len(added) == 1:
        text = f"In {hunk.path}, after {anchor}, {_code(added)} is missing."
    else:
        text = f"In {hunk.path}, after {anchor}, these lines are missing{_code(added)}"
    name = re.match(r"\s*(\w+)\s*=[^=]", added[0])
    if name and "NameError" in error and f"'{name.group(1)}'" in error:
        return _then(text, f"It defines `{name.group(1)}`, the name of the NameError.")
    return _then(text, explains)
