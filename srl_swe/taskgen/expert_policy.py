"""The scripted expert's policy (issue 12): it solves a generated task by acting on what the tools really print.

:class:`ExpertPolicy` is a :class:`~srl_swe.agent.policies.Policy` for :func:`srl_swe.agent.run_agent`. It knows
the task's gold patch (it is the project's expert, not a model), but every step is chosen and every thought
written from the real observation of the step before: it runs a failing test and quotes pytest's error line,
finds the code through the traceback's frames or ``grep`` (line numbers read from grep's output), views the
lines, replaces them with ``str_replace_editor`` (``old_str`` taken from the gold hunk with as much context as
makes it unique in the file read from the sandbox), re-runs the tests, reads the pass counts and submits. A
step whose output does not say what the plan needs (no ``FAILED`` line for a FAIL_TO_PASS test, a grep that
does not find the definition, a re-run that still fails) raises :class:`ExpertError` naming the instance, so no
trajectory is kept whose thoughts would not match its observations. A seeded RNG varies the path: an optional
look around, one test / the listed tests / the test module, viewing the traceback's frame or grepping first,
grepping the file or the package, an optional look at the test, view sizes, the re-run, the wording.
"""

from __future__ import annotations

import random
import re
import shlex
from collections.abc import Callable, Generator, Sequence
from pathlib import PurePosixPath
from typing import Any

from srl_swe.actions import render
from srl_swe.errors import ActionParseError
from srl_swe.schema import ToolCall
from srl_swe.taskgen.expert_patch import (
    FAMILY_NOTES,
    ExpertError,
    Hunk,
    enclosing,
    failing_counts,
    find_edit,
    fix_thought,
    frames,
    normalise,
    parse_patch,
    quote,
    summary_counts,
    test_failed,
    viewed_lines,
)

REPO = "/testbed"
MAX_TESTS_RUN = 5  # node ids in one pytest command
Step = tuple[str, ToolCall]
Script = Generator[Step, str, None]


class ExpertPolicy:
    """One task's expert. ``read_file(path)`` (set it before the episode) reads a file of the sandbox: the expert
    checks there that its ``old_str`` occurs once. ``path`` lists the choices made, for the record."""

    def __init__(self, instance: Any, seed: int = 0, read_file: Callable[[str], str] | None = None,
                 syntax: str = "xml"):
        self.instance, self.read_file, self.seed, self.syntax = instance, read_file, seed, syntax
        self.iid = str(instance.instance_id)
        self.hunks = parse_patch(instance.patch, self.iid)
        self.f2p = [t for t in instance.FAIL_TO_PASS]
        if not self.f2p or len(self.f2p) > 10_000 or any(not isinstance(t, str) or "::" not in t or "\n" in t
                                                          or len(t) > 500 for t in self.f2p):
            raise ExpertError(f"{self.iid}: FAIL_TO_PASS must list pytest node ids (file::test), at most 10000 of "
                              "at most 500 characters each")
        self.test_files = sorted({t.split("::", 1)[0] for t in self.f2p})
        # Ids pytest can select: a log parser that splits on white space cuts `test_x[a b]` to `test_x[a`, which
        # grades fine (the harness parses the same way) but names no test on the command line.
        self.runnable = [t for t in self.f2p if not re.search(r"\s", t) and ("[" not in t or t.endswith("]"))]
        raw = getattr(instance, "raw", None) or {}
        self.mutation = raw.get("mutation") if isinstance(raw.get("mutation"), dict) else {}
        spec = raw.get("env_spec") if isinstance(raw.get("env_spec"), dict) else {}
        # The test command's own options (not -r: the summary of every pass), and only plain ones: the record is
        # input from a file, and these go into a shell command.
        opts = str(spec.get("test_cmd") or "pytest").split()[1:]
        plain = [o for o in opts if re.fullmatch(r"--?[A-Za-z][\w=.,:-]*", o) and not o.startswith("-r")]
        self.pytest = " ".join(["python -m pytest", *plain])
        self.name = "srl-swe-expert"
        self.reset()

    def reset(self) -> None:
        self.rng = random.Random(f"{self.seed}:{self.iid}")
        self.path: list[str] = []
        self._script: Script | None = None
        self._last: ToolCall | None = None

    def act(self, messages: list[dict[str, str]]) -> str:
        if self._script is None:
            self._script = self.script()
            thought, call = next(self._script)
        else:
            last = messages[-1]["content"] if messages and messages[-1].get("role") == "user" else ""
            last = last.removeprefix("OBSERVATION:\n")
            try:  # pytest's output as the record will hold it: the thoughts quote that text
                thought, call = self._script.send(normalise(last) if self._last.name == "bash" else last)
            except StopIteration:
                raise ExpertError(f"{self.iid}: the expert's script ended without submitting") from None
        self._last = call
        try:
            action = render(call, self.syntax)
        except ActionParseError as e:
            raise ExpertError(f"{self.iid}: the expert's {call.name} action cannot be written in {self.syntax}: "
                              f"{e}") from None
        return f"<think>\n{thought}\n</think>\n{action}"

    # -- the script ------------------------------------------------------------------------------------
    def _pick(self, label: str, options: Sequence[Any]) -> Any:
        choice = self.rng.choice(list(options))
        self.path.append(f"{label}:{choice}")
        return choice

    def _say(self, *options: str) -> str:
        return self.rng.choice(options)

    def _run(self, targets: Sequence[str], tb: str = "short", extra: str = "") -> ToolCall:
        args = " ".join(shlex.quote(t) for t in targets)
        return ToolCall.bash(f"cd {REPO} && {self.pytest} -q --tb={tb}{extra} {args}")

    def script(self) -> Script:
        lead = ""
        if self.rng.random() < 0.3:
            self.path.append("explore")
            folder = str(PurePosixPath(self.hunks[0].path).parent)
            obs = yield (self._say("Let me first look at how the repository is laid out.",
                                   "Before running anything, let me see the layout of the repository."),
                         ToolCall.make("str_replace_editor", command="view", path=REPO))
            tests = str(PurePosixPath(self.test_files[0]).parent)
            listing = set(obs.splitlines())
            if folder != "." and tests != "." and {f"{REPO}/{folder}", f"{REPO}/{tests}"} <= listing:
                lead = f"The code is under {folder}/ and the tests under {tests}/. "
        trace, test = yield from self.reproduce(lead)
        found = frames(trace)
        error = next((quote(line[1:]) for line in trace.splitlines() if line.startswith("E ")), "")
        yield from self.locate(test, found, error, trace)
        yield from self.fix(error)
        counts = yield from self.rerun(test)
        changed = sorted({h.path for h in self.hunks})
        yield (f"The re-run reports {counts}. {self._say('The fix is', 'The change is')} in {', '.join(changed)}, "
               f"so I submit it.", ToolCall("submit"))

    def reproduce(self, lead: str) -> Generator[Step, str, tuple[str, str]]:
        f2p, files = self.f2p, " ".join(self.test_files)
        listed = [t for t in f2p if t in self.instance.problem_statement]  # the issue names these
        simple = [t for t in self.runnable if re.fullmatch(r"[\w/.:-]+", t)] or self.runnable
        plain = [t for t in simple if t in listed] or simple
        if not plain:
            raise ExpertError(f"{self.iid}: no FAIL_TO_PASS id is a pytest node id that can be run alone")
        modes = ["one", "module"] + (["listed"] if 1 < len(f2p) <= MAX_TESTS_RUN and len(listed) == len(f2p)
                                     and len(self.runnable) == len(f2p) else [])
        mode = self._pick("reproduce", modes)
        if len(listed) == 1:
            says = f"The issue says `{listed[0]}` fails."
        elif listed:
            says = f"The issue lists {len(f2p)} failing tests in {files}."
        else:
            says = f"Tests in {files} are expected to fail."
        if mode == "module":
            obs = yield (f"{lead}{says} Let me run {'that module' if len(self.test_files) == 1 else 'those modules'} "
                         "to see what fails.", self._run(self.test_files, tb="no"))
            failing = [t for t in f2p if test_failed(obs, t)]
            if not failing:
                raise ExpertError(f"{self.iid}: running {files} printed no FAILED line for a FAIL_TO_PASS test")
            test = next((t for t in plain if t in failing), None) or next((t for t in self.runnable if t in failing),
                                                                             "")
            if not test:
                raise ExpertError(f"{self.iid}: no failing FAIL_TO_PASS test of {files} can be run alone")
            n = len(failing)
            obs = yield (f"pytest reports {summary_counts(obs)}"
                         + (f"; `{test}` is the failing one." if n == 1 else f"; `{test}` is one of the failures.")
                         + " Let me run it alone to see its traceback.", self._run([test]))
        elif mode == "listed":
            obs = yield (f"{lead}{says} Let me run them and stop at the first failure, to read its traceback.",
                         self._run(f2p, extra=" -x"))
            test = next((t for t in f2p if test_failed(obs, t)), "")
        else:
            test = self.rng.choice(plain[:MAX_TESTS_RUN])
            first = f"{says} Let me reproduce it." if len(listed) == 1 else f"{says} Let me reproduce with `{test}`."
            again = f"Let me start by running the failing test `{test}`."
            obs = yield lead + self._say(first, again), self._run([test])
        if not test or not test_failed(obs, test):
            raise ExpertError(f"{self.iid}: the reproduction printed no FAILED line for {test or 'a listed test'}")
        return obs, test

    def locate(self, test: str, found: list[tuple[str, int, str]], error: str, trace: str = ""
               ) -> Generator[Step, str, None]:
        hunk = self.hunks[0]
        first, last = hunk.changed_lines()
        n = len(self.read_file(hunk.path).split("\n"))
        lib = [f for f in found if f[0] == hunk.path]
        scope = enclosing(self.read_file(hunk.path).split("\n"), first - 1)
        inside = [f for f in lib if scope and f[2] == scope[0][1]]  # frames of the function holding the change
        anchor = inside[-1] if inside else lib[-1] if lib else None
        near = anchor if anchor and abs(anchor[1] - first) <= 40 else None
        said = f", with `{error}`" if error else ""
        test_file = test.split("::", 1)[0]
        if lib:
            raised = f"{lib[-1][0]}:{lib[-1][1]}, in `{lib[-1][2]}`"
            why = f"The traceback {'ends in' if lib[-1] == found[-1] else 'goes through'} {raised}{said}."
            if anchor is not None and anchor != lib[-1]:
                why += f" It gets there from `{anchor[2]}`, at line {anchor[1]}."
        else:
            where = next((f"{f[0]}:{f[1]}" for f in found if f[0] == test_file), f"`{test}`")
            why = (f"The test fails at {where}{said}; the traceback has no frame in the library, so the wrong "
                   "result comes from library code the test calls.")
        in_test = next((f for f in found if f[0] == test_file), None)
        if in_test and self.rng.random() < 0.35:
            self.path.append("look:test")
            lo = max(1, in_test[1] - self.rng.randint(6, 14))
            obs = yield f"{why} Let me read the test first.", self._view(in_test[0], lo, in_test[1] + 2)
            shown = viewed_lines(obs).get(in_test[1])
            if shown is None:
                raise ExpertError(f"{self.iid}: viewing {in_test[0]} did not show line {in_test[1]}")
            why = f"Line {in_test[1]} of the test is `{quote(shown)}`." + (
                f" The error comes from below it, {raised}." if lib else "")
        strategy = self._pick("locate", ["view", "grep"] if near and scope else ["view"] if near else ["grep"])
        if strategy == "view":
            assert near is not None
            lo = max(1, min(near[1], first) - self.rng.randint(4, 14))
            hi = min(n, max(near[1], last) + self.rng.randint(3, 10))
            seen = yield (f"{why} Let me read the code around line {near[1]} of {hunk.path}.",
                          self._view(hunk.path, lo, hi))
        elif not scope:
            raise ExpertError(f"{self.iid}: no def or class encloses {hunk.path}:{first} and the traceback names no "
                              "frame near it: nothing to search for")
        else:
            said_grep, start = yield from self._grep(hunk, scope, why, trace)
            seen = yield from self._read_down(hunk, said_grep, start, last, n)
        self._viewed = viewed_lines(seen)
        missing = [k for k in range(first, last + 1) if k not in self._viewed]
        if missing:
            raise ExpertError(f"{self.iid}: the view did not show {hunk.path} lines {missing[:3]}")

    def _view(self, path: str, lo: int, hi: int) -> ToolCall:
        return ToolCall.make("str_replace_editor", command="view", path=f"{REPO}/{path}", view_range=[lo, hi])

    def _grep(self, hunk: Hunk, scope: list[tuple[str, str, int]], why: str, trace: str
              ) -> Generator[Step, str, tuple[str, int]]:
        kind, name, line = scope[0]
        outer = next((s for s in scope[1:] if s[0] == "class"), None)
        words = [f"(async )?def {name}" if kind == "def" else f"class {name}"]
        words += [f"class {outer[1]}"] if outer else []
        pattern = "^[[:space:]]*(" + "|".join(words) + r")\b"
        folder = str(PurePosixPath(hunk.path).parent)
        where = self._pick("grep", ["file", "package"] if folder != "." else ["file"])
        target = f"{REPO}/{hunk.path}" if where == "file" else f"{REPO}/{folder}"
        what = f"`{kind} {name}`" + (f" of `class {outer[1]}`" if outer else "")
        named = [n for n in ([outer[1]] if outer else []) + [name] if re.search(rf"\b{re.escape(n)}\b", trace)]
        if named and not any(f[2] == name for f in frames(trace)):
            why += f" The failure output mentions `{named[0]}`."
        obs = yield (f"{why} Let me find {what} in {target.removeprefix(REPO + '/')}.",
                     ToolCall.bash(f"grep {'-n' if where == 'file' else '-rn'} -E {shlex.quote(pattern)} "
                                   f"{shlex.quote(target)}"))
        prefix = "" if where == "file" else re.escape(f"{REPO}/{hunk.path}:")
        hits = {int(m.group(1)) for m in re.finditer(rf"^{prefix}(\d+):", obs, re.M)}
        if line not in hits or (outer and outer[2] not in hits):
            raise ExpertError(f"{self.iid}: grep did not show {kind} {name} at {hunk.path}:{line}")
        found = f"`{kind} {name}` is at line {line} of {hunk.path}"
        if outer:
            found = (f"`class {outer[1]}` starts at line {outer[2]} of {hunk.path}, and its `{kind} {name}` at "
                     f"line {line}")
        return found, line

    def _read_down(self, hunk: Hunk, found: str, start: int, last: int, n: int) -> Generator[Step, str, str]:
        """View from the definition down past the changed lines, in chunks of at most 60 lines."""
        lo, end, seen = max(1, start - self.rng.randint(0, 2)), min(n, last + self.rng.randint(3, 10)), ""
        text = f"grep shows that {found}. Let me read it."
        for _ in range(6):
            hi = min(end, lo + 59)
            seen += yield text, self._view(hunk.path, lo, hi)
            if hi >= end:
                return seen
            lo, text = hi + 1, f"The code continues below line {hi}; let me read on."
        raise ExpertError(f"{self.iid}: {hunk.path}:{last} is more than 360 lines below its definition")

    def fix(self, error: str) -> Generator[Step, str, None]:
        contents: dict[str, str] = {}
        family = self.mutation.get("family") if len(self.hunks) == 1 else None
        note = FAMILY_NOTES.get(str(family), "")
        for k, hunk in enumerate(reversed(self.hunks)):  # bottom up: earlier line numbers stay valid
            content = contents.setdefault(hunk.path, self.read_file(hunk.path))
            old, new = find_edit(content, hunk, self.rng, self.iid)
            first, last = hunk.changed_lines()
            if any(n not in self._viewed for n in range(first, last + 1)):
                self._viewed = viewed_lines((yield (f"The fix also needs {hunk.path} lines {first}-{last}; let me "
                                                    "view them.", self._view(hunk.path, max(1, first - 4), last + 4))))
            shown = [self._viewed.get(n) for n in range(first, last + 1)]
            if any(s is None for s in shown):
                raise ExpertError(f"{self.iid}: the view did not show {hunk.path} lines {first}-{last}")
            text = fix_thought(hunk, shown, self._viewed, note, error if not k else "")  # type: ignore[arg-type]
            obs = yield (text.strip(), ToolCall.make("str_replace_editor", command="str_replace",
                                                      path=f"{REPO}/{hunk.path}", old_str=old, new_str=new))
            if "has been edited" not in obs:
                raise ExpertError(f"{self.iid}: str_replace on {hunk.path} failed: {quote(obs)}")
            contents[hunk.path] = content.replace(old, new, 1)
            self.path.append("fix")

    def rerun(self, test: str) -> Generator[Step, str, str]:
        mode = self._pick("rerun", ["same", "listed", "module"])
        tests = self.runnable[:MAX_TESTS_RUN]
        which = ("the failing test from the issue" if len(self.f2p) == 1 else "the failing tests from the issue"
                 if len(tests) == len(self.f2p) else f"{len(tests)} of the {len(self.f2p)} failing tests")
        if mode == "same":
            obs = yield self._say(f"Now `{test}` should pass.", f"Let me run `{test}` again."), self._run([test])
        elif mode == "listed":
            obs = yield f"Let me run {which} again.", self._run(tests)
        else:
            obs = yield (f"Let me run {' '.join(self.test_files)} again, to check the fix and that nothing else "
                         "broke.", self._run(self.test_files, tb="line"))
            counts = summary_counts(obs)
            failed = [line.split(" ", 2)[1] for line in obs.splitlines() if line.startswith(("FAILED ", "ERROR "))]
            graded = set(self.f2p) | set(self.instance.PASS_TO_PASS)
            if failing_counts(counts) and failed and not any(t.startswith(g) for t in failed for g in graded):
                # failures the task does not grade (tests that fail on the clean source too): check the issue's
                obs = yield (f"pytest reports `{counts}`, but the failures ({', '.join(f'`{t}`' for t in failed[:3])}"
                             f"{', ...' if len(failed) > 3 else ''}) are none of the tests the issue lists. Let me "
                             f"run {which} alone.", self._run(tests))
        counts = summary_counts(obs)
        if failing_counts(counts) or "passed" not in counts:
            raise ExpertError(f"{self.iid}: the re-run after the fix does not pass ({counts or quote(obs[-300:])})")
        return f"`{counts}`"
