"""SWE-bench harness reports: which instances were resolved.

Three shapes are read: a per-instance ``report.json`` as the harness writes it (``{id: {"resolved":
bool, ...}}``), the flat per-instance form several agent repos ship as ``ID.report.json``
(``{"resolved": bool, ...}``, the id taken from the file name), and a run summary with
``resolved_ids`` / ``unresolved_ids``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srl_swe.errors import TrajectoryFormatError
from srl_swe.trajectories.io import read_json


def is_report_path(path: Path) -> bool:
    return path.name == "report.json" or path.name.endswith(".report.json")


def outcomes_from_report(obj: Any, path: Path) -> dict[str, bool]:
    if not isinstance(obj, dict):
        raise TrajectoryFormatError(str(path), "a JSON object (SWE-bench report)", got=type(obj).__name__)
    if isinstance(obj.get("resolved"), bool):
        stem = path.name.removesuffix(".report.json") if path.name != "report.json" else path.parent.name
        return {stem: obj["resolved"]}
    if "resolved_ids" in obj:
        for key in ("resolved_ids", "unresolved_ids", "error_ids"):
            if not isinstance(obj.get(key, []), list):
                raise TrajectoryFormatError(str(path), f'"{key}" to be a list of instance ids',
                                            got=type(obj[key]).__name__)
        out = {str(i): False for i in obj.get("unresolved_ids", []) + obj.get("error_ids", [])}
        out.update({str(i): True for i in obj["resolved_ids"]})
        return out
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict) and isinstance(value.get("resolved"), bool):
            out[str(key)] = value["resolved"]
    if not out:
        raise TrajectoryFormatError(str(path), 'a "resolved" flag (SWE-bench report.json)')
    return out


def read_report(path: Path) -> dict[str, bool]:
    return outcomes_from_report(read_json(path), path)


def reports_near(source: Path, instance_id: str) -> list[Path]:
    """Where agent repos put the report of one trajectory file, nearest first."""
    d = source.parent
    candidates = [
        d / f"{instance_id}.report.json",
        d / "reports" / f"{instance_id}.report.json",
        d.parent / "reports" / f"{instance_id}.report.json",
        d / instance_id / "report.json",
        d.parent / "reports" / instance_id / "report.json",
    ]
    return [p for p in candidates if _is_file(p)]


def _is_file(path: Path) -> bool:
    # Instance ids come from the data: one too long for a file name (ENAMETOOLONG) is simply not found.
    try:
        return path.is_file()
    except OSError:
        return False
