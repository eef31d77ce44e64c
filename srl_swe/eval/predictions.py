"""``predictions.jsonl`` of ``srl-swe eval swebench`` (and its runtime-grade cache): an append-only JSONL log
that a crash at any point leaves readable, so a rerun resumes without losing or garbling a record
(:class:`srl_swe.jsonl.JsonlLog`). Records are plain JSON objects here, keyed by ``instance_id``;
:func:`srl_swe.swebench.prediction.read_prediction` makes a prediction line a ``Prediction``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srl_swe.jsonl import JsonlLog


class PredictionLog(JsonlLog):
    """``predictions.jsonl``: records by instance id; :meth:`read_report` also says which lines were unreadable
    (each is a record that was meant to be graded)."""

    def __init__(self, path: Path):
        super().__init__(path, "instance_id")

    def check(self, record: dict[str, Any]) -> str | None:
        why = super().check(record)
        if why is None and not isinstance(record.get("model_patch", ""), (str, type(None))):
            why = f"model_patch of {record['instance_id']} is not a string"
        return why
