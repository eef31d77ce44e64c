"""Trajectory loaders: one module per source format, registered in :data:`FORMATS`.

:func:`load_trajectories` takes a file or a directory, detects each file's format from its content,
attaches SWE-bench outcomes from report files it finds, and keeps (by default) only resolved
trajectories, as the SRL paper trained only on trajectories checked to produce correct patches.
A bad file or record inside a directory is reported in ``LoadResult.skipped`` and the scan goes on;
a bad single file raises :class:`~srl_swe.errors.TrajectoryFormatError`. That includes files that are not
regular (a FIFO, a device, a dangling link: refused by type, never opened) and files over
``io.MAX_FILE_BYTES`` (1 GiB); every read is bounded (see :mod:`srl_swe.trajectories.io`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from srl_swe.errors import TrajectoryFormatError
from srl_swe.registry import Registry
from srl_swe.schema import Trajectory
from srl_swe.trajectories.io import iter_jsonl, read_json
from srl_swe.trajectories.reports import is_report_path, read_report, reports_near

__all__ = ["FORMATS", "KEEP_CHOICES", "SUFFIXES", "LoadResult", "Skipped", "TrajectoryFormat", "load_file",
           "load_trajectories"]

Keep = Literal["resolved", "resolved_or_unknown", "all"]
KEEP_CHOICES = ("resolved", "resolved_or_unknown", "all")
SUFFIXES = (".json", ".jsonl", ".traj")


class TrajectoryFormat(Protocol):
    """What a format module defines (:mod:`~srl_swe.trajectories.chat`, ``math``, ``sweagent``, ...)."""

    RECORDS: bool  # True: one record of a JSONL file or JSON list (or a whole JSON file); False: a whole file only
    EXPECTED: str  # what the format looks like, for the error when no format matches

    def detect(self, obj: Any) -> bool: ...

    def load(self, obj: Any, source: str, record: str | int | None, default_id: str) -> Trajectory: ...


#: The trajectory formats in detection order: a file (or record) is read by the first whose ``detect`` accepts
#: it, so a format that is a special case of another comes first (a mini-swe-agent file holds "messages", as a
#: chat record does). A new format is one module with the four names of TrajectoryFormat plus one line here.
FORMATS: Registry[TrajectoryFormat] = Registry("trajectory format", {
    "mini-swe-agent": "srl_swe.trajectories.minisweagent",
    "swe-agent": "srl_swe.trajectories.sweagent",
    "chat": "srl_swe.trajectories.chat",
    "math": "srl_swe.trajectories.math",
})


@dataclass(frozen=True)
class Skipped:
    """A file or record left out, and why. ``category`` groups reasons for the statistics."""

    source: str
    record: str | None
    reason: str
    category: str = "malformed"
    source_format: str = "unreadable"


@dataclass
class LoadResult:
    trajectories: list[Trajectory] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per source format: trajectories kept, steps, outcomes, and skipped records by reason."""
        out: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"trajectories": 0, "steps": 0, "resolved": 0, "unresolved": 0, "unknown": 0,
                     "skipped": Counter()}
        )
        for t in self.trajectories:
            row = out[t.source_format]
            row["trajectories"] += 1
            row["steps"] += len(t.steps)
            row[{True: "resolved", False: "unresolved", None: "unknown"}[t.resolved]] += 1
        for s in self.skipped:
            out[s.source_format]["skipped"][s.category] += 1
        return {k: {**v, "skipped": dict(v["skipped"])} for k, v in sorted(out.items())}


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".traj.json", ".traj", ".jsonl", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _fields(obj: Any) -> str:
    return f"fields {sorted(obj)[:8]}" if isinstance(obj, dict) else type(obj).__name__


def _load_record(obj: Any, source: str, index: str | int, default_id: str,
                 formats: Sequence[TrajectoryFormat]) -> Trajectory:
    fmt = next((f for f in formats if f.detect(obj)), None)
    if fmt is None:
        raise TrajectoryFormatError(source, " or ".join(f.EXPECTED for f in formats), index, got=_fields(obj))
    return fmt.load(obj, source, index, default_id)


def load_file(path: str | Path) -> tuple[list[Trajectory], list[Skipped]]:
    """Every trajectory in one file; record-level problems of a multi-record file are returned as skipped.

    A JSONL file or a JSON list holds records (chat, math); a JSON object is one trajectory in any format."""
    path = Path(path)
    source, stem = str(path), _stem(path)
    formats = [fmt for _, fmt in FORMATS.items()]
    record_formats = [f for f in formats if f.RECORDS]
    trajs: list[Trajectory] = []
    skipped: list[Skipped] = []
    if path.suffix == ".jsonl":
        records: Iterable[tuple[Any, Any]] = iter_jsonl(path)
    else:
        obj = read_json(path)
        if isinstance(obj, dict):
            fmt = next((f for f in formats if f.detect(obj)), None)
            if fmt is None:
                whole = " or ".join(f.EXPECTED for f in formats if not f.RECORDS)
                expected = " or ".join(f.EXPECTED for f in record_formats) + f", or as a whole file {whole}"
                raise TrajectoryFormatError(source, expected, "0", got=_fields(obj))
            # A record format names the file's one record "0", as in a one-element list; a whole file has none.
            return [fmt.load(obj, source, "0" if fmt.RECORDS else None, stem)], []
        if not isinstance(obj, list):
            raise TrajectoryFormatError(source, "a JSON object or list of records", got=type(obj).__name__)
        records = enumerate(obj)
    for index, obj in records:
        label = f"line {index}" if path.suffix == ".jsonl" else str(index)
        try:
            if isinstance(obj, TrajectoryFormatError):
                raise obj
            trajs.append(_load_record(obj, source, label, f"{stem}-{index}", record_formats))
        except TrajectoryFormatError as e:
            skipped.append(Skipped(source, label, str(e)))
    if not trajs and skipped:
        raise TrajectoryFormatError(source, "at least one readable record", got=skipped[0].reason)
    return trajs, skipped


def _candidate_files(root: Path) -> list[Path]:
    # Not only regular files: a FIFO, a device or a dangling link with a trajectory suffix is "read" too, which
    # refuses it by its type without opening it (io.read_bytes), so that the scan reports it with the reason.
    return sorted(
        p for p in root.rglob("*")
        if p.name.endswith(SUFFIXES) and not any(part.startswith(".") for part in p.parts[-2:]) and not p.is_dir()
    )


def load_trajectories(
    path: str | Path, keep: Keep = "resolved", reports: dict[str, bool] | None = None
) -> LoadResult:
    """Load a trajectory file or every trajectory under a directory.

    ``keep``: ``"resolved"`` (default: only trajectories known to be resolved), ``"resolved_or_unknown"``
    or ``"all"``. ``reports`` maps instance ids to resolved flags and overrides what files say.
    """
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep={keep!r}: choose one of {KEEP_CHOICES}")
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory (give a trajectory file or a folder of them)")
    result = LoadResult()
    outcomes: dict[str, bool] = {}
    files = _candidate_files(root) if root.is_dir() else [root]
    loaded: list[tuple[Path, Trajectory]] = []
    for f in files:
        try:
            if is_report_path(f):
                outcomes.update(read_report(f))
                continue
            trajs, skipped = load_file(f)
        except TrajectoryFormatError as e:
            if not root.is_dir():
                raise
            result.skipped.append(Skipped(str(f), None, str(e)))
            continue
        result.skipped.extend(skipped)
        loaded.extend((f, t) for t in trajs)
    outcomes.update(reports or {})
    for f, t in loaded:
        resolved = _outcome(t, f, outcomes)
        t = t.with_outcome(resolved) if resolved is not t.resolved else t
        if keep == "all" or t.resolved is True or (keep == "resolved_or_unknown" and t.resolved is None):
            result.trajectories.append(t)
        else:
            state = "unresolved" if t.resolved is False else "unknown"
            result.skipped.append(Skipped(t.source, t.id, f"outcome {state}; pass keep='all' to include it",
                                          f"outcome {state}", t.source_format))
    return result


def _outcome(t: Trajectory, source: Path, outcomes: dict[str, bool]) -> bool | None:
    if t.id in outcomes:
        return outcomes[t.id]
    for report in reports_near(source, t.id):
        try:
            found = read_report(report)
        except TrajectoryFormatError:
            continue
        if t.id in found:
            return found[t.id]
    return t.resolved
