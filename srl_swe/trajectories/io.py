"""Reading JSON / JSONL with errors that name the file and record.

Every loader goes through these helpers so that truncated JSON, non-UTF-8 bytes and wrong types all
surface as :class:`TrajectoryFormatError` rather than as a ``UnicodeDecodeError`` deep in a stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from srl_swe.errors import TrajectoryFormatError


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TrajectoryFormatError(str(path), "UTF-8 text", got=f"undecodable byte at offset {e.start}") from None
    except OSError as e:
        raise TrajectoryFormatError(str(path), "a readable file", got=e.strerror or str(e)) from None


def loads(text: str, source: str, record: str | int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TrajectoryFormatError(
            source, "valid JSON", record, got=f"{e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except RecursionError:
        raise TrajectoryFormatError(source, "valid JSON", record, got="nesting too deep") from None
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
                raise TrajectoryFormatError(source, "message content parts with text", record, got=repr(part)[:80])
        return "".join(parts)
    raise TrajectoryFormatError(source, "message content as a string or list of parts", record,
                                got=type(content).__name__)


_PROBLEM_PATTERNS = (
    re.compile(r"<pr_description>\s*(?:Consider the following PR description:\s*)?(.*?)\s*</pr_description>", re.S),
    re.compile(r"ISSUE:\s*\n(.*?)\n\s*INSTRUCTIONS:", re.S),
)


def problem_from_task_message(text: str) -> str:
    """The issue text inside an agent's task message (SWE-agent / mini-swe-agent / SWE-smith templates)."""
    for pattern in _PROBLEM_PATTERNS:
        m = pattern.search(text)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return text.strip()
