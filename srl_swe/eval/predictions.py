"""``predictions.jsonl`` of ``srl-swe eval swebench`` (and its runtime-grade cache): an append-only JSONL log
that a crash at any point leaves readable, so a rerun resumes without losing or garbling a record. Records are
plain JSON objects here; :func:`srl_swe.swebench.prediction.read_prediction` makes a prediction line a
``Prediction``."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


class PredictionLog:
    """``predictions.jsonl``, appended under a lock, one fsynced line per record.

    Lines are split on ``\\n`` only: ``ensure_ascii=False`` writes U+2028, U+2029 and U+0085 raw, and
    ``str.splitlines`` would cut a record there. A line that does not parse (a crash mid-write) is skipped by
    :meth:`read`, so a resumed run redoes that instance; :meth:`read_report` also says which lines those were.
    Before appending, a torn last line is cut off (or, if it is a whole record that lost only its newline,
    terminated), so the next record does not land glued to it and become unreadable too."""

    def __init__(self, path: Path):
        self.path, self._lock = path, threading.Lock()

    def read(self) -> dict[str, dict[str, Any]]:
        return self.read_report()[0]

    def read_report(self) -> tuple[dict[str, dict[str, Any]], list[tuple[int, str]]]:
        """Records by instance id (a later line wins) and ``(line number, why)`` for every unreadable line."""
        done: dict[str, dict[str, Any]] = {}
        bad: list[tuple[int, str]] = []
        if not self.path.is_file():
            return done, bad
        for n, raw in enumerate(self.path.read_bytes().split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                bad.append((n, f"not a JSON line ({exc})"))
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("instance_id"), str) or not rec["instance_id"]:
                bad.append((n, "not an object with a non-empty string instance_id"))
            elif not isinstance(rec.get("model_patch", ""), (str, type(None))):
                bad.append((n, f"model_patch of {rec['instance_id']} is not a string"))
            else:
                done[rec["instance_id"]] = rec
        return done, bad

    def append(self, record: dict[str, Any]) -> None:
        # backslashreplace: a lone surrogate (only possible inside a JSON string) becomes its \\uXXXX escape,
        # which json.loads reads back as the same character, instead of failing the write.
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
        with self._lock, self.path.open("a+b") as f:
            _repair_tail(f)
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def _repair_tail(f: Any) -> None:
    """Make a file opened ``a+b`` end with a complete line: a torn last line is truncated away, a last line
    that parses but lost its newline gets one."""
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
        f.write(b"\n")
    else:
        f.truncate(start)
    f.flush()
    os.fsync(f.fileno())
