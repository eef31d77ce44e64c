"""Search/replace edits (the Agentless format) and the git patches they become.

A model fixing an issue in oracle-file mode answers with blocks like::

    ```python
    ### src/pkg/mod.py
    <<<<<<< SEARCH
    exact lines to find
    =======
    replacement lines
    >>>>>>> REPLACE
    ```

:func:`parse_edits` reads them (after an optional ``<think>…</think>``), :func:`apply_edits` applies them to the
files the model was shown, :func:`make_patch` turns old and new contents into a ``git apply``-able diff, and
:func:`edits_from_patch` + :func:`render_edits` write a gold patch in the same format (the expert answer).

Files are ``dict[path, content]``; a content of ``None`` means "the file does not exist" (a file the patch
creates). An edit with an empty SEARCH part creates such a file, or fills an empty one. Edits are line based:
SEARCH and REPLACE are whole lines. Two things the format cannot say, and :func:`edits_from_patch` therefore
drops: deleting a file (it is emptied instead) and adding or removing the newline at the end of a file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice

from srl_swe.errors import ActionParseError, SRLError

SEARCH, DIVIDER, REPLACE = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"
MARKERS = (SEARCH, DIVIDER, REPLACE)
Files = Mapping[str, "str | None"]

# "### path" names the file the next blocks edit; a heading with spaces ("### Fix the bug") is prose, not a path.
_PATH_RE = re.compile(r"###\s+(\S+)")
_NO_EOL = "\\ No newline at end of file\n"


class EditError(SRLError, ValueError):
    """An edit cannot be applied: its SEARCH text is missing or ambiguous, or its file was not shown."""


@dataclass(frozen=True)
class Edit:
    path: str
    search: str  # whole lines, each ending in "\n"; "" = create the file (or fill an empty one)
    replace: str


def _lines(text: str) -> list[str]:
    """Lines with their "\\n" (the last one may lack it). Not str.splitlines: that also splits on form feeds
    and other separators that Python sources contain, which would misplace line-based edits."""
    if not text:
        return []
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _clean_path(raw: str) -> str:
    path = raw.strip("`'\"*")
    for prefix in ("/testbed/", "./"):  # the runtime's absolute path, or a shell-style relative one
        if path.startswith(prefix):
            path = path[len(prefix):]
    return path


def _strip_think(text: str) -> str:
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        raise ActionParseError("the <think> block is never closed (output cut off?), so no edits follow it")
    return text


def parse_edits(text: object) -> list[Edit]:
    """The edits in a model's answer, in order. Prose and code fences around the blocks are ignored; an
    answer without any block gives ``[]``. A malformed block raises :class:`ActionParseError` saying where."""
    if not isinstance(text, str):
        raise ActionParseError(f"output must be a string, got {type(text).__name__}")
    lines = _strip_think(text.replace("\r\n", "\n")).split("\n")
    edits: list[Edit] = []
    path: str | None = None
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("###") and (m := _PATH_RE.fullmatch(stripped)):
            path = _clean_path(m.group(1))
        elif stripped == SEARCH:
            if path is None:
                raise ActionParseError(f"line {i + 1}: {SEARCH} without a '### path/to/file' line before it")
            where = f"the block for {path} at line {i + 1}"
            search, i = _block_part(lines, i + 1, DIVIDER, where)
            replace, i = _block_part(lines, i + 1, REPLACE, where)
            edits.append(Edit(path, search, replace))
        elif stripped == REPLACE:
            raise ActionParseError(f"line {i + 1}: {REPLACE} without a {SEARCH} block to close")
        i += 1
    return edits


def _block_part(lines: list[str], start: int, end_marker: str, where: str) -> tuple[str, int]:
    """The text from ``start`` up to the line holding ``end_marker``, and that line's index."""
    for j in range(start, len(lines)):
        stripped = lines[j].strip()
        if stripped == end_marker:
            return "".join(line + "\n" for line in lines[start:j]), j
        if stripped in MARKERS:
            raise ActionParseError(f"line {j + 1}: {stripped!r} in {where}, where {end_marker!r} was expected "
                                   f"(a block is SEARCH lines, =======, REPLACE lines)")
    raise ActionParseError(f"{where} is not closed by {end_marker!r} (output cut off?)")


def render_edits(edits: Iterable[Edit]) -> str:
    """Edits in the answer format (one fenced block each), the inverse of :func:`parse_edits`."""
    blocks = []
    for e in edits:
        body = _lines(e.search) + _lines(e.replace)
        if clash := next((line for line in body if line.strip() in MARKERS), None):
            raise ValueError(f"{e.path}: the line {clash.strip()!r} cannot be written inside a SEARCH/REPLACE block")
        fence = "```python" if e.path.endswith(".py") else "```"
        blocks.append(f"{fence}\n### {e.path}\n{SEARCH}\n{_terminated(e.search)}{DIVIDER}\n"
                      f"{_terminated(e.replace)}{REPLACE}\n```\n")
    return "\n".join(blocks)


def _terminated(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _matches(lines: list[str], needle: list[str], key: Callable[[str], str]) -> list[int]:
    if not needle:
        return []
    hay, pin = [key(line) for line in lines], [key(line) for line in needle]
    m = len(pin)
    return [i for i in range(len(hay) - m + 1) if hay[i] == pin[0] and hay[i : i + m] == pin]


def _exact(line: str) -> str:
    return line.rstrip("\n")


def _loose(line: str) -> str:
    return line.rstrip()


def apply_edit(content: str | None, edit: Edit) -> str:
    """``content`` after one edit. The SEARCH lines must occur exactly once; when they do not occur as written,
    they are looked for again ignoring trailing white space on each line (models often drop or add it)."""
    first = _exact(_lines(edit.search)[0]) if edit.search else ""
    if content is None:
        if edit.search:
            raise EditError(f"{edit.path} does not exist yet: create it with an empty SEARCH part "
                            f"(SEARCH starts with {first!r})")
        return edit.replace
    if not edit.search:
        if content:
            raise EditError(f"{edit.path}: empty SEARCH part, but the file is not empty; quote the lines to replace")
        return edit.replace
    # A file without a final newline is edited as if it had one (SEARCH lines all end in "\n"); it is taken
    # off again afterwards so the edit does not change that.
    no_eol = not content.endswith("\n")
    lines = _lines(content + "\n" if no_eol else content)
    needle = _lines(_terminated(edit.search))
    hits = _matches(lines, needle, _exact) or _matches(lines, needle, _loose)
    if not hits:
        raise EditError(f"{edit.path}: SEARCH text not found in the file (its first line: {first!r})")
    if len(hits) > 1:
        raise EditError(f"{edit.path}: SEARCH text found {len(hits)} times (its first line: {first!r}); "
                        f"include more surrounding lines so it matches once")
    at = hits[0]
    out = "".join(lines[:at]) + _terminated(edit.replace) + "".join(lines[at + len(needle) :])
    return out[:-1] if no_eol and out.endswith("\n") else out


def apply_edits(files: Files, edits: Iterable[Edit]) -> dict[str, str | None]:
    """New contents of ``files`` after the edits, applied in order (each sees the previous ones' result).
    An edit to a path not in ``files`` is an :class:`EditError`: the model has only seen those files."""
    out = dict(files)
    for e in edits:
        if e.path not in out:
            shown = ", ".join(sorted(files)) or "none"
            raise EditError(f"{e.path}: not one of the files shown ({shown}); edits may only change those")
        out[e.path] = apply_edit(out[e.path], e)
    return out


def make_patch(old: Files, new: Files) -> str:
    """A git-format unified diff (3 lines of context) from ``old`` to ``new`` contents, for ``git apply``.
    A path missing from a side, or mapped to None there, does not exist on that side."""
    return "".join(_file_diff(p, old.get(p), new.get(p)) for p in sorted(set(old) | set(new))
                   if old.get(p) != new.get(p))


def _file_diff(path: str, a: str | None, b: str | None) -> str:
    head = [f"diff --git a/{path} b/{path}\n"]
    if a is None:
        head.append("new file mode 100644\n")
    elif b is None:
        head.append("deleted file mode 100644\n")
    # difflib yields a last line without "\n" as is; git wants it followed by the no-newline marker.
    body = [line if line.endswith("\n") else line + "\n" + _NO_EOL
            for line in islice(difflib.unified_diff(_lines(a or ""), _lines(b or ""), n=3), 2, None)]
    if body:  # git writes no ---/+++ lines for a created or deleted empty file
        head += [f"--- {'/dev/null' if a is None else 'a/' + path}\n",
                 f"+++ {'/dev/null' if b is None else 'b/' + path}\n"]
    return "".join(head + body)


def edits_from_patch(patch: str, files: Files) -> list[Edit]:
    """The edits that turn ``files`` into what ``patch`` makes of them, one per hunk (the expert answer).

    Each hunk's context and removed lines become its SEARCH part, located in ``files`` (the nearest place to
    the hunk's line number, as ``git apply`` does with offsets) and widened with neighbouring lines until it
    occurs once, so the edits apply with :func:`apply_edits`. Raises ValueError for what edits cannot say
    (renames, binary files) and for a hunk that does not match ``files``."""
    try:
        from unidiff import PatchSet
        from unidiff.errors import UnidiffParseError
    except ImportError as exc:  # pragma: no cover - unidiff comes with swebench
        raise ImportError("edits_from_patch needs unidiff: pip install 'srl-swe[swebench]'") from exc
    try:
        parsed = PatchSet(patch)
    except UnidiffParseError as exc:
        raise ValueError(f"not a unified diff: {exc}") from None
    current, edits = dict(files), []
    for pf in parsed:
        if pf.is_rename or pf.is_binary_file:
            raise ValueError(f"{pf.path}: renames and binary changes cannot be written as search/replace edits")
        if pf.path not in current:
            raise ValueError(f"{pf.path}: the patch changes it but it is not among the files given")
        offset = 0
        for hunk in pf:
            if pf.is_added_file:
                edit = Edit(pf.path, "", _side(hunk, "+"))
            else:
                edit = _hunk_edit(pf.path, current[pf.path] or "", hunk, offset)
                offset += hunk.target_length - hunk.source_length
            current[pf.path] = apply_edit(current[pf.path], edit)
            edits.append(edit)
    return edits


def _side(hunk, keep: str) -> str:
    """A hunk's text on one side ("-": before, "+": after), honouring a no-newline marker on that side."""
    out, last = [], None
    for line in hunk:
        if line.line_type == "\\":
            if last is not None and last in (" ", keep) and out:
                out[-1] = out[-1].rstrip("\n")
        elif line.line_type in (" ", keep):
            out.append(line.value)
        last = line.line_type if line.line_type != "\\" else last
    return "".join(out)


def _hunk_edit(path: str, content: str, hunk, offset: int) -> Edit:
    lines = _lines(content if content.endswith("\n") or not content else content + "\n")
    old = _lines(_terminated(_side(hunk, "-")))
    new = _terminated(_side(hunk, "+"))
    expected = (hunk.source_start if hunk.source_length == 0 else hunk.source_start - 1) + offset
    if old:
        hits = _matches(lines, old, _exact)
        if not hits:
            raise ValueError(f"{path}: the hunk at line {hunk.source_start} does not match the file")
        at = min(hits, key=lambda h: abs(h - expected))
    else:  # a hunk without context (diff -U0) only inserts: anchor it at its line number
        at = max(0, min(expected, len(lines)))
    lo, hi = at, at + len(old)
    while lines and (hi == lo or len(_matches(lines, lines[lo:hi], _exact)) > 1):
        lo, hi = max(0, lo - 1), min(len(lines), hi + 1)
    search = "".join(lines[lo:hi])
    return Edit(path, search, "".join(lines[lo:at]) + new + "".join(lines[at + len(old) : hi]))
