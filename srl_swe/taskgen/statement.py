"""A generated task's problem statement, written from its failing tests and their real output, without a model.

SWE-smith writes issue texts with a language model; here the text is mechanical: the names of the tests that
now fail (FAIL_TO_PASS) and an excerpt of what pytest printed for them in validation (the ``FAILURES`` section:
the traceback pytest shows, with the file and line of the failing test and, as pytest prints it, of the
library code below it). Nothing is invented and nothing is hidden that a user running the suite would see.
Several phrasings, picked by the task's key, keep the texts from being one template.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

MAX_BLOCKS, MAX_BLOCK_LINES, MAX_EXCERPT = 3, 40, 4000
MAX_NAMES = 10
_SECTION = re.compile(r"^=+ (FAILURES|ERRORS) =+$")
_END = re.compile(r"^=+ .* =+$")
_BLOCK = re.compile(r"^_+ \S.*? _+$")
# A local runtime's copy of the repository (``/tmp/srl-swe-local-HOST-PID-XXXX``) is ``/testbed`` to the task.
_COPY = re.compile(r"/[^\s:'\"]*?/srl-swe-local-[^/\s]+")


def _clip(lines: list[str], limit: int) -> list[str]:
    if len(lines) <= limit:
        return lines
    head, tail = limit // 2, limit - limit // 2 - 1
    return [*lines[:head], f"[... {len(lines) - head - tail} lines ...]", *lines[-tail:]]


def failure_excerpt(output: str) -> str:
    """The first :data:`MAX_BLOCKS` blocks of pytest's FAILURES (or ERRORS) section, each clipped to
    :data:`MAX_BLOCK_LINES` lines, at most :data:`MAX_EXCERPT` characters; "" when the output has none."""
    blocks: list[list[str]] = []
    inside = False
    for line in _COPY.sub("/testbed", output).splitlines():
        if _SECTION.match(line):
            inside = True
            continue
        if not inside:
            continue
        if _END.match(line):
            inside = False
            continue
        if _BLOCK.match(line):
            if len(blocks) == MAX_BLOCKS:
                break
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    text = "\n".join(line for block in blocks for line in _clip(block, MAX_BLOCK_LINES)).strip()
    return text if len(text) <= MAX_EXCERPT else text[:MAX_EXCERPT].rsplit("\n", 1)[0] + "\n[... cut ...]"


_OPENINGS = (
    "Some tests of {what} fail",
    "{what}: {n} test(s) started failing",
    "Test failures in {what}",
    "Regression in {what}: tests fail",
)
_INTROS = (
    "Running the test suite of {what}, these tests fail although they are expected to pass:",
    "The following test(s) of {what} fail on the current code:",
    "After the latest change, the suite of {what} reports failures in:",
)
_OUTROS = (
    "Please fix the library code so that these tests pass again, without changing the tests, and without "
    "breaking the other tests.",
    "The tests are right; the bug is in the library. Fix it so the whole suite passes.",
    "Make these tests pass again by fixing the source (the tests themselves must stay as they are).",
)


def problem_statement(what: str, failing: Sequence[str], excerpt: str, key: str) -> str:
    """The task's issue text: ``what`` (e.g. "marshmallow 3.13.0"), the failing test names (first
    :data:`MAX_NAMES`), ``excerpt`` (:func:`failure_excerpt`), in a phrasing chosen by ``key``."""
    pick = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    n = len(failing)
    names = [f"- `{name}`" for name in failing[:MAX_NAMES]]
    if n > MAX_NAMES:
        names.append(f"- ... and {n - MAX_NAMES} more")
    parts = [_OPENINGS[pick % len(_OPENINGS)].format(what=what, n=n), "",
             _INTROS[(pick // 7) % len(_INTROS)].format(what=what), "", *names]
    if excerpt:
        parts += ["", "What pytest prints for them:", "", "```", excerpt, "```"]
    parts += ["", _OUTROS[(pick // 31) % len(_OUTROS)]]
    return "\n".join(parts) + "\n"
