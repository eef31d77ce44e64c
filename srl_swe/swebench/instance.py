"""Typed SWE-bench task instances (the harness's dataset record, as a frozen dataclass).

Records come from a SWE-bench JSONL file, a Hugging Face dataset name, or a ``local_tasks`` folder
(``instance.json`` + ``gold.patch`` + ``test.patch`` per task). The harness-only fields (``image``,
``eval_script``, ``log_parser``, ``eval_type``: what swebench >= 5 needs to grade a record) are optional
here; :mod:`srl_swe.swebench.specs` fills them for repositories the project knows how to build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from srl_swe.errors import TrajectoryFormatError

REQUIRED = ("instance_id", "repo", "base_commit", "problem_statement")


def _tests(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class SWEInstance:
    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    version: str = ""
    patch: str = ""  # the gold patch
    test_patch: str = ""
    hints_text: str = ""
    FAIL_TO_PASS: tuple[str, ...] = ()
    PASS_TO_PASS: tuple[str, ...] = ()
    image: str | None = None
    eval_script: str | None = None
    log_parser: str | None = None
    eval_type: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], source: str = "<record>") -> SWEInstance:
        """Build from a SWE-bench record; a missing field raises :class:`TrajectoryFormatError` naming it."""
        if not isinstance(record, Mapping):
            raise TrajectoryFormatError(source, "a JSON object (a SWE-bench instance)", got=type(record).__name__)
        rid = record.get("instance_id", "?")
        missing = [k for k in REQUIRED if not isinstance(record.get(k), str) or not record.get(k)]
        if missing:
            raise TrajectoryFormatError(source, f"SWE-bench fields {', '.join(missing)}", record=rid)
        try:
            f2p, p2p = _tests(record.get("FAIL_TO_PASS")), _tests(record.get("PASS_TO_PASS"))
        except (ValueError, TypeError) as exc:
            raise TrajectoryFormatError(source, "FAIL_TO_PASS/PASS_TO_PASS as JSON lists", record=rid,
                                        got=str(exc)) from None

        def opt(key: str) -> str | None:
            value = record.get(key)
            return str(value) if value not in (None, "") else None

        return cls(
            instance_id=record["instance_id"], repo=record["repo"], base_commit=record["base_commit"],
            problem_statement=record["problem_statement"], version=str(record.get("version") or ""),
            patch=str(record.get("patch") or ""), test_patch=str(record.get("test_patch") or ""),
            hints_text=str(record.get("hints_text") or ""), FAIL_TO_PASS=f2p, PASS_TO_PASS=p2p,
            image=opt("image"), eval_script=opt("eval_script"), log_parser=opt("log_parser"),
            eval_type=opt("eval_type"), raw=dict(record),
        )

    def to_record(self) -> dict[str, Any]:
        """The harness's dataset record (test lists as JSON strings, like the HF datasets)."""
        out = {k: v for k, v in self.raw.items() if not k.startswith("_")}
        out.update(
            instance_id=self.instance_id, repo=self.repo, base_commit=self.base_commit,
            problem_statement=self.problem_statement, version=self.version, patch=self.patch,
            test_patch=self.test_patch, hints_text=self.hints_text,
            FAIL_TO_PASS=json.dumps(list(self.FAIL_TO_PASS)), PASS_TO_PASS=json.dumps(list(self.PASS_TO_PASS)),
        )
        for key in ("image", "eval_script", "log_parser", "eval_type"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out
