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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from srl_swe.errors import TrajectoryFormatError
from srl_swe.registry import Registry
from srl_swe.schema import Trajectory
from srl_swe.trajectories.io import iter_jsonl, read_json
from srl_swe.trajectories.reports import is_report_path, read_report, reports_near
from srl_swe.trajectories.tabular import TABULAR_SUFFIXES, is_hub, is_tabular, iter_hub, iter_table

__all__ = ["FORMATS", "KEEP_CHOICES", "SUFFIXES", "FileLoad", "Keep", "LoadResult", "Skipped", "TrajectoryFormat",
           "iter_files", "load_file", "load_trajectories", "summarize"]

Keep = Literal["resolved", "resolved_or_unknown", "all"]
KEEP_CHOICES = ("resolved", "resolved_or_unknown", "all")
SUFFIXES = (".json", ".jsonl", ".traj", *TABULAR_SUFFIXES)


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
        return summarize(((t.source_format, len(t.steps), t.resolved) for t in self.trajectories), self.skipped)


def summarize(counts: Iterable[tuple[str, int, bool | None]], skipped: Iterable[Skipped]) -> dict[str, dict[str, Any]]:
    """:meth:`LoadResult.summary` from (source format, steps, resolved) per kept trajectory."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"trajectories": 0, "steps": 0, "resolved": 0, "unresolved": 0, "unknown": 0, "skipped": Counter()}
    )
    for fmt, steps, resolved in counts:
        row = out[fmt]
        row["trajectories"] += 1
        row["steps"] += steps
        row[{True: "resolved", False: "unresolved", None: "unknown"}[resolved]] += 1
    for s in skipped:
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
    if is_tabular(path):
        for batch in iter_table(path):
            got, bad = _load_records(batch, source, stem, record_formats, "row")
            trajs.extend(got)
            skipped.extend(bad)
        if not trajs and skipped:
            raise TrajectoryFormatError(source, "at least one readable row", got=skipped[0].reason)
        return trajs, skipped
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
    trajs, skipped = _load_records(records, source, stem, record_formats, "line" if path.suffix == ".jsonl" else "")
    if not trajs and skipped:
        raise TrajectoryFormatError(source, "at least one readable record", got=skipped[0].reason)
    return trajs, skipped


def _load_records(records: Iterable[tuple[Any, Any]], source: str, stem: str, formats: Sequence[TrajectoryFormat],
                  unit: str) -> tuple[list[Trajectory], list[Skipped]]:
    """The trajectories of (index, record) pairs; a bad record (or a read error in its place) is skipped."""
    trajs: list[Trajectory] = []
    skipped: list[Skipped] = []
    for index, obj in records:
        label = f"{unit} {index}" if unit else str(index)
        try:
            if isinstance(obj, TrajectoryFormatError):
                raise obj
            trajs.append(_load_record(obj, source, label, f"{stem}-{index}", formats))
        except TrajectoryFormatError as e:
            skipped.append(Skipped(source, label, str(e)))
    return trajs, skipped


def _candidate_files(root: Path) -> list[Path]:
    # Not only regular files: a FIFO, a device or a dangling link with a trajectory suffix is "read" too, which
    # refuses it by its type without opening it (io.read_bytes), so that the scan reports it with the reason.
    return sorted(
        p for p in root.rglob("*")
        if p.name.endswith(SUFFIXES) and not any(part.startswith(".") for part in p.parts[-2:]) and not p.is_dir()
    )


@dataclass
class FileLoad:
    """What one file gave: its trajectories kept by ``keep``, its records skipped as malformed (or the whole
    file, as one entry), and the trajectories left out by their outcome."""

    path: Path
    trajectories: list[Trajectory]
    skipped: list[Skipped]
    outcome_skipped: list[Skipped]


def iter_files(path: str | Path, keep: Keep = "resolved", reports: dict[str, bool] | None = None) -> Iterator[FileLoad]:
    """:func:`load_trajectories` one file at a time, in the same order, holding one file's trajectories in
    memory: what a streaming build reads (``srl-swe data build`` at the paper's 100k+ steps). The report files
    under the folder are read first, so a trajectory's outcome is known when its file is."""
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep={keep!r}: choose one of {KEEP_CHOICES}")
    if is_hub(path):  # a Hugging Face dataset: its rows, in batches; outcomes come from its own columns
        yield from _table_loads(str(path), None, iter_hub(str(path)), dict(reports or {}), keep, whole=True)
        return
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory (give a trajectory file or a folder of them, "
                                "or hf:NAME[:CONFIG]:SPLIT for a Hugging Face dataset)")
    files = _candidate_files(root) if root.is_dir() else [root]
    outcomes: dict[str, bool] = {}
    report_errors: dict[Path, TrajectoryFormatError] = {}
    for f in files:
        if is_report_path(f):
            try:
                outcomes.update(read_report(f))
            except TrajectoryFormatError as e:
                if not root.is_dir():
                    raise
                report_errors[f] = e
    outcomes.update(reports or {})
    for f in files:
        if is_report_path(f):
            if f in report_errors:
                yield FileLoad(f, [], [Skipped(str(f), None, str(report_errors[f]))], [])
            continue
        try:
            if is_tabular(f):  # one batch of rows at a time, however large the table
                yield from _table_loads(str(f), f, iter_table(f), outcomes, keep, whole=not root.is_dir())
                continue
            trajs, skipped = load_file(f)
        except TrajectoryFormatError as e:
            if not root.is_dir():
                raise
            yield FileLoad(f, [], [Skipped(str(f), None, str(e))], [])
            continue
        kept, left = _keep(trajs, f, outcomes, keep)
        yield FileLoad(f, kept, skipped, left)


def _table_loads(source: str, f: Path | None, batches: Iterable[Any], outcomes: dict[str, bool], keep: Keep,
                 whole: bool) -> Iterator[FileLoad]:
    """A table's FileLoads, one per batch of rows; ``whole``: the table is the whole source, and one with no
    readable row is an error (as a single file with no readable record is)."""
    formats = [fmt for _, fmt in FORMATS.items() if fmt.RECORDS]
    stem, read, first = (_stem(f) if f else source.removeprefix("hf:").replace("/", "__")), 0, None
    for batch in batches:
        trajs, skipped = _load_records(batch, source, stem, formats, "row")
        read += len(trajs)
        first = first or (skipped[0].reason if skipped else None)
        kept, left = _keep(trajs, f, outcomes, keep)
        yield FileLoad(f or Path(source), kept, skipped, left)
    if whole and not read:
        raise TrajectoryFormatError(source, "at least one readable row", got=first or "no rows")


def _keep(trajs: list[Trajectory], f: Path | None, outcomes: dict[str, bool],
          keep: Keep) -> tuple[list[Trajectory], list[Skipped]]:
    """``trajs`` with their outcomes (reports first), split into those ``keep`` takes and those it leaves."""
    kept, left = [], []
    for t in trajs:
        resolved = _outcome(t, f, outcomes)
        t = t.with_outcome(resolved) if resolved is not t.resolved else t
        if keep == "all" or t.resolved is True or (keep == "resolved_or_unknown" and t.resolved is None):
            kept.append(t)
        else:
            state = "unresolved" if t.resolved is False else "unknown"
            left.append(Skipped(t.source, t.id, f"outcome {state}; pass keep='all' to include it",
                                f"outcome {state}", t.source_format))
    return kept, left


def load_trajectories(
    path: str | Path, keep: Keep = "resolved", reports: dict[str, bool] | None = None
) -> LoadResult:
    """Load a trajectory file, every trajectory under a directory (JSON, JSONL, ``.traj``, and tables: Parquet
    and Arrow files whose rows are trajectories), or a Hugging Face dataset ``hf:NAME[:CONFIG]:SPLIT``
    (:mod:`srl_swe.trajectories.tabular`). :func:`iter_files` gives the same, one file or batch at a time.

    ``keep``: ``"resolved"`` (default: only trajectories known to be resolved), ``"resolved_or_unknown"``
    or ``"all"``. ``reports`` maps instance ids to resolved flags and overrides what files say.
    """
    result = LoadResult()
    left_out: list[Skipped] = []
    for got in iter_files(path, keep, reports):
        result.trajectories.extend(got.trajectories)
        result.skipped.extend(got.skipped)
        left_out.extend(got.outcome_skipped)
    result.skipped.extend(left_out)  # after every file's own problems, as the outcomes are known last
    return result


def _outcome(t: Trajectory, source: Path | None, outcomes: dict[str, bool]) -> bool | None:
    if t.id in outcomes:
        return outcomes[t.id]
    for report in reports_near(source, t.id) if source is not None else ():
        try:
            found = read_report(report)
        except TrajectoryFormatError:
            continue
        if t.id in found:
            return found[t.id]
    return t.resolved
