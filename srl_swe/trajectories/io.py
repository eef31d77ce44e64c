"""Reading JSON / JSONL with errors that name the file and record.

Every loader goes through these helpers so that truncated JSON, non-UTF-8 bytes and wrong types all
surface as :class:`TrajectoryFormatError` rather than as a ``UnicodeDecodeError`` deep in a stack.

Reads are bounded: only regular files are opened (a FIFO, a device, a socket or a dangling link is refused
by its type, from ``os.stat``, before any ``open`` that could block), files over :data:`MAX_FILE_BYTES` are
refused, and the read itself stops there (``/proc``-like files report a size of 0). JSON nested deeper than
``srl_swe.schema.MAX_JSON_DEPTH`` is refused.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from srl_swe.errors import TrajectoryFormatError
from srl_swe.schema import MAX_JSON_DEPTH, JSONTooDeepError, load_json

MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above any trajectory file we know of (the largest shared one is 2 MB)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_NON_SPACE = re.compile(r"\S")


def _not_regular(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``; anything else is a TrajectoryFormatError."""
    source = str(path)
    try:
        st = os.stat(path)
    except OSError as e:
        got = "a symbolic link to a missing file" if os.path.islink(path) else (e.strerror or str(e))
        raise TrajectoryFormatError(source, "a readable file", got=got) from None
    if not stat.S_ISREG(st.st_mode):
        raise TrajectoryFormatError(source, "a regular file", got=_not_regular(st.st_mode))
    too_big = f"a file of at most {MAX_FILE_BYTES} bytes (srl_swe.trajectories.io.MAX_FILE_BYTES)"
    if st.st_size > MAX_FILE_BYTES:
        raise TrajectoryFormatError(source, too_big, got=f"{st.st_size} bytes")
    try:
        # O_NONBLOCK: should the path have become a FIFO since the stat, opening it must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise TrajectoryFormatError(source, "a regular file", got=_not_regular(mode))
            data = f.read(MAX_FILE_BYTES + 1)  # the size in the stat can lie (/proc) or change: cap the read
    except OSError as e:
        raise TrajectoryFormatError(source, "a readable file", got=e.strerror or str(e)) from None
    if len(data) > MAX_FILE_BYTES:
        raise TrajectoryFormatError(source, too_big, got=f"more, though its size said {st.st_size} bytes")
    return data


def read_text(path: Path) -> str:
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise TrajectoryFormatError(str(path), "UTF-8 text", got=f"undecodable byte at offset {e.start}") from None
    # Universal newlines, as text-mode reading gave: "\r\n" and "\r" become "\n".
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def loads(text: str, source: str, record: str | int | None = None) -> Any:
    # The depth check (srl_swe.schema.load_json) is made here once for every loader: what they do with a value
    # (str() of an id, json.dumps of a tool argument) recurses, and would raise RecursionError on a value that
    # json.loads accepted.
    try:
        return load_json(text)
    except JSONTooDeepError:
        raise TrajectoryFormatError(source, "valid JSON", record,
                                    got=f"nesting deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as e:
        raise TrajectoryFormatError(
            source, "valid JSON", record, got=f"{e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except ValueError as e:  # not a JSONDecodeError: e.g. an integer longer than Python's 4300-digit limit
        raise TrajectoryFormatError(source, "valid JSON", record, got=str(e)[:120]) from None


def read_json(path: Path) -> Any:
    return loads(read_text(path), str(path))


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any | TrajectoryFormatError]]:
    """Yield ``(line_number, object)`` per non-empty line; a bad line yields the error instead of raising.

    Yielding the error lets a scan report the record and go on with the next one.
    """
    # Split on "\n" only: str.splitlines() also breaks at U+2028/U+2029/NEL, which json.dumps(ensure_ascii=False)
    # leaves raw inside strings. (read_text's universal newlines already turned "\r\n" and "\r" into "\n".)
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, loads(line, str(path), f"line {lineno}")
        except TrajectoryFormatError as e:
            yield lineno, e


def require(obj: Any, key: str, typ: type | tuple[type, ...], source: str, record: str | int | None) -> Any:
    """``obj[key]`` checked to be of ``typ``; otherwise a TrajectoryFormatError naming what was expected."""
    if not isinstance(obj, dict):
        raise TrajectoryFormatError(source, "a JSON object", record, got=type(obj).__name__)
    if key not in obj:
        raise TrajectoryFormatError(source, f'a field "{key}"', record, got=f"fields {sorted(obj)[:8]}")
    value = obj[key]
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise TrajectoryFormatError(source, f'"{key}" to be {names}', record, got=type(value).__name__)
    return value


def message_text(content: Any, source: str, record: str | int | None) -> str:
    """Chat message content as text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text", ""), str):
                parts.append(part.get("text", ""))
            else:
                raise TrajectoryFormatError(source, "message content parts with text", record, got=reprlib.repr(part))
        return "".join(parts)
    raise TrajectoryFormatError(source, "message content as a string or list of parts", record,
                                got=type(content).__name__)


def problem_from_task_message(text: str) -> str:
    """The issue text inside an agent's task message (SWE-agent / mini-swe-agent / SWE-smith templates).

    What the regexes ``<pr_description>\\s*(?:Consider the following PR description:\\s*)?(.*?)\\s*</pr_description>``
    and ``ISSUE:\\s*\\n(.*?)\\n\\s*INSTRUCTIONS:`` (re.S) find, stripped, the first that finds a non-empty
    text; else the whole message. Read with ``str.find`` in linear time: the regexes rescan the rest of the
    text from every unclosed tag and backtrack through white space (16k unclosed tags took 35 s).
    """
    for found in (_pr_description(text), _issue_section(text)):
        if found:
            return found
    return text.strip()


def _pr_description(text: str) -> str:
    start = text.find("<pr_description>")
    end = text.find("</pr_description>", start + 16) if start >= 0 else -1
    if end < 0:  # a later opener has no closer after it either
        return ""
    body = text[start + 16 : end].strip()
    return body.removeprefix("Consider the following PR description:").strip()


def _issue_section(text: str) -> str:
    # The regex's match: the first "ISSUE:" whose white space holds a newline, the last such newline, and the
    # first later newline that white space and "INSTRUCTIONS:" follow. Without one, every other match the
    # regex could find holds only white space: the same empty answer.
    pos = 0
    while (start := text.find("ISSUE:", pos)) >= 0:
        pos = start + 6
        m = _NON_SPACE.search(text, pos)  # the end of the white space after "ISSUE:"
        newline = text.rfind("\n", pos, m.start() if m else len(text))
        if newline >= 0:
            found = _instructions_after(text, newline + 1)
            return "" if found is None else text[newline + 1 : found].strip()
    return ""


def _instructions_after(text: str, pos: int) -> int | None:
    """The first position >= pos holding a newline that white space and then "INSTRUCTIONS:" follow."""
    while (at := text.find("INSTRUCTIONS:", pos)) >= 0:
        lead = text[pos:at]
        ws = lead[len(lead.rstrip()) :]  # the white space right before the closer
        first_newline = ws.find("\n")
        if first_newline >= 0:
            return at - len(ws) + first_newline
        pos = at + 13
    return None
