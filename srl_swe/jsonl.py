"""Append-only JSONL logs that a crash at any point leaves readable: the one discipline of every resumable job
(``srl-swe eval swebench``'s predictions, task generation's candidates).

Each record is one fsynced line, appended under a lock. Lines are split on ``\\n`` only: ``ensure_ascii=False``
writes U+2028, U+2029 and U+0085 raw, and ``str.splitlines`` would cut a record there. A line that does not
parse (a kill mid-write) is skipped by :meth:`JsonlLog.read_report`, so a resumed job redoes that record.
Before appending, a torn last line is cut off (or, if it is a whole record that lost only its newline,
terminated), so the next record does not land glued to it and become unreadable too.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: ``check(record) -> why it is unusable, or None``: a log's own rule for a parsed line.
Check = Callable[[dict[str, Any]], "str | None"]


class JsonlLog:
    """Records keyed by the string field ``key`` (a later line wins)."""

    def __init__(self, path: Path, key: str):
        self.path, self.key, self._lock = Path(path), key, threading.Lock()

    def check(self, record: dict[str, Any]) -> str | None:
        """Why a parsed line is not a usable record (None: it is). Subclasses add their own rules."""
        value = record.get(self.key)
        return None if isinstance(value, str) and value else f"not an object with a non-empty string {self.key}"

    def read(self) -> dict[str, dict[str, Any]]:
        return self.read_report()[0]

    def read_report(self) -> tuple[dict[str, dict[str, Any]], list[tuple[int, str]]]:
        """Records by key and ``(line number, why)`` for every unreadable line."""
        done: dict[str, dict[str, Any]] = {}
        bad: list[tuple[int, str]] = []
        for n, raw in self._lines():
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                bad.append((n, f"not a JSON line ({exc})"))
                continue
            why = self.check(rec) if isinstance(rec, dict) else f"not an object with a non-empty string {self.key}"
            if why:
                bad.append((n, why))
            else:
                done[rec[self.key]] = rec
        return done, bad

    def append(self, record: dict[str, Any]) -> None:
        # backslashreplace: a lone surrogate (only possible inside a JSON string) becomes its \\uXXXX escape,
        # which json.loads reads back as the same character, instead of failing the write.
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
        with self._lock, self.path.open("a+b") as f:
            repair_tail(f)
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def repair(self) -> None:
        """Cut off a torn last line now (a job that reads the log before its first append)."""
        if self.path.is_file():
            with self._lock, self.path.open("r+b") as f:
                repair_tail(f)

    def keep_only(self, keys: Iterable[str]) -> int:
        """Rewrite the log (atomically) without the records whose key is not in ``keys``; how many went."""
        keys = set(keys)
        lines = [raw for _, raw in self._lines()]
        kept = [raw for raw in lines if _key_of(raw, self.key) in keys]
        if len(kept) != len(lines):
            write_atomic(self.path, b"".join(raw + b"\n" for raw in kept))
        return len(lines) - len(kept)

    def _lines(self) -> list[tuple[int, bytes]]:
        if not self.path.is_file():
            return []
        return [(n, raw) for n, raw in enumerate(self.path.read_bytes().split(b"\n"), start=1) if raw.strip()]


def _key_of(raw: bytes, key: str) -> str | None:
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return rec.get(key) if isinstance(rec, dict) else None


def repair_tail(f: Any) -> None:
    """Make a file opened ``a+b`` / ``r+b`` end with a complete line: a torn last line is truncated away, a last
    line that parses but lost its newline gets one."""
    size = f.seek(0, os.SEEK_END)
    if not size:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    start = size
    while start > 0:  # back to the last newline, a block at a time
        block = max(0, start - 65536)
        f.seek(block)
        cut = f.read(start - block).rfind(b"\n")
        if cut >= 0:
            start = block + cut + 1
            break
        start = block
    f.seek(start)
    try:
        whole = isinstance(json.loads(f.read(size - start).decode("utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        whole = False
    if whole:
        f.seek(size)
        f.write(b"\n")
    else:
        f.truncate(start)
    f.flush()
    os.fsync(f.fileno())


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a reader sees the old file or the new one, never half of either."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
