"""Load SWE-bench instances from a JSONL/JSON file, a ``local_tasks`` folder or a Hugging Face dataset.

* ``*.jsonl``: one record per line (the harness's local dataset format); ``*.json``: a list of records
  (or an object mapping ids to records).
* a ``srl-swe tasks make`` folder (it holds ``tasks.jsonl``): its tasks, or with split ``train``/``heldout``
  only that split's;
* a folder of task folders, or one task folder: ``instance.json`` + ``gold.patch`` + ``test.patch``; the
  ``.patch`` files supply ``patch`` / ``test_patch`` when the record lacks them.
* anything else is a Hugging Face dataset name (``datasets.load_dataset(name, split=...)``, needs the
  network; ``lite`` / ``verified`` / ``full`` are shorthands).

:func:`load_instances` raises on the first bad record; with ``strict=False`` it returns the good instances
and ``{record: message}`` for the bad ones (:func:`load_instances_with_errors` gives the error objects), so
an evaluation can report bad records per instance instead of stopping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from srl_swe.errors import TrajectoryFormatError
from srl_swe.swebench.instance import SWEInstance

HF_ALIASES = {
    "lite": "SWE-bench/SWE-bench_Lite", "verified": "SWE-bench/SWE-bench_Verified", "full": "SWE-bench/SWE-bench",
    "swe-bench": "SWE-bench/SWE-bench", "swe-bench_lite": "SWE-bench/SWE-bench_Lite",
    "swe-bench_verified": "SWE-bench/SWE-bench_Verified",
}

#: What ``srl-swe tasks make`` writes into its folder (srl_swe.taskgen.instances.TASKS), and the splits it marks;
#: any other split name (the default "test") selects every task.
GENERATED, GENERATED_SPLITS = "tasks.jsonl", ("train", "heldout")

# (where, record or the error met reading it); `where` names the line / index / folder for messages.
_Raw = tuple[str, "Mapping[str, Any] | TrajectoryFormatError"]


def _jsonl(path: Path) -> Iterator[_Raw]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield f"line {lineno}", json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"line {lineno}", TrajectoryFormatError(path, "one JSON object per line", f"line {lineno}",
                                                              got=str(exc))


def _json(path: Path) -> Iterator[_Raw]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrajectoryFormatError(path, "a JSON list of SWE-bench records", got=str(exc)) from None
    if isinstance(data, Mapping):
        data = list(data.values())
    if not isinstance(data, list):
        raise TrajectoryFormatError(path, "a JSON list of SWE-bench records", got=type(data).__name__)
    for index, record in enumerate(data):
        yield f"index {index}", record


def _task_dirs(path: Path) -> Iterator[_Raw]:
    dirs = [path] if (path / "instance.json").is_file() else sorted(p for p in path.iterdir() if p.is_dir())
    if not dirs:
        raise TrajectoryFormatError(path, "task folders holding instance.json (+ gold.patch, test.patch)")
    for folder in dirs:
        meta = folder / "instance.json"
        if not meta.is_file():
            yield folder.name, TrajectoryFormatError(folder, "instance.json in the task folder", folder.name)
            continue
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            yield folder.name, TrajectoryFormatError(meta, "a JSON object", folder.name, got=str(exc))
            continue
        if isinstance(record, dict):
            for key, name in (("patch", "gold.patch"), ("test_patch", "test.patch")):
                if not record.get(key) and (folder / name).is_file():
                    record[key] = (folder / name).read_text(encoding="utf-8")
        yield folder.name, record


def _hub(name: str, split: str) -> Iterator[_Raw]:
    try:
        from datasets import load_dataset
    except ImportError:
        raise TrajectoryFormatError(name, "a .jsonl/.json file or a local_tasks folder (no such path); loading a "
                                    "Hugging Face dataset needs `pip install 'srl-swe[data]'`") from None
    name = HF_ALIASES.get(name.lower(), name)
    try:
        dataset = load_dataset(name, split=split)
    except Exception as exc:  # offline, unknown name, bad split: all mean "cannot read this source"
        raise TrajectoryFormatError(name, f"an existing file/folder or a Hugging Face dataset with split {split!r}",
                                    got=f"{type(exc).__name__}: {exc}") from None
    for index, record in enumerate(dataset):
        yield f"index {index}", record


def _generated(path: Path, split: str) -> Iterator[_Raw]:
    """A ``srl-swe tasks make`` folder's ``tasks.jsonl``: all records, or one split's (``train``/``heldout``)."""
    for where, raw in _jsonl(path):
        if split in GENERATED_SPLITS and isinstance(raw, Mapping) and raw.get("split") != split:
            continue
        yield where, raw


def _records(source: str | Path, split: str) -> tuple[str, Iterable[_Raw]]:
    path = Path(source).expanduser()
    if path.is_dir() and (path / GENERATED).is_file():
        return str(path / GENERATED), _generated(path / GENERATED, split)
    if path.is_dir():
        return str(path), _task_dirs(path)
    if path.is_file():
        if path.suffix == ".jsonl":
            return str(path), _jsonl(path)
        if path.suffix == ".json":
            return str(path), _json(path)
        raise TrajectoryFormatError(path, "a .jsonl or .json file of SWE-bench records", got=path.suffix or "no suffix")
    if path.suffix in (".jsonl", ".json") or path.is_absolute() or str(source).startswith("."):
        raise FileNotFoundError(f"{path}: no such dataset file or folder")
    return str(source), _hub(str(source), split)


def load_instances_with_errors(
    source: str | Path, instance_ids: Iterable[str] | None = None, *, split: str = "test"
) -> tuple[list[SWEInstance], list[TrajectoryFormatError]]:
    """The good instances (in source order) and one error per bad record, duplicate id, or requested id
    that is not in the source. With ``instance_ids``, records with other ids are skipped unread."""
    wanted = list(dict.fromkeys(instance_ids)) if instance_ids else None
    name, raws = _records(source, split)
    instances: dict[str, SWEInstance] = {}
    errors: list[TrajectoryFormatError] = []
    for where, raw in raws:
        rid = raw.get("instance_id") if isinstance(raw, Mapping) else None
        if wanted is not None and rid not in wanted:
            continue
        if isinstance(raw, TrajectoryFormatError):
            errors.append(raw)
            continue
        try:
            instance = SWEInstance.from_record(raw, source=f"{name} ({where})")
        except TrajectoryFormatError as exc:
            errors.append(exc)
            continue
        if instance.instance_id in instances:
            errors.append(TrajectoryFormatError(f"{name} ({where})", "unique instance ids", instance.instance_id,
                                                got="a second record with this id (the first one is kept)"))
            continue
        instances[instance.instance_id] = instance
    for missing in [i for i in wanted or () if i not in instances and not any(e.record == i for e in errors)]:
        errors.append(TrajectoryFormatError(name, "a record with this instance id", missing, got="no such record"))
    return list(instances.values()), errors


def load_instances(
    source: str | Path, instance_ids: Iterable[str] | None = None, *, split: str = "test", strict: bool = True
) -> list[SWEInstance] | tuple[list[SWEInstance], dict[str, str]]:
    """Every instance of ``source`` (or only ``instance_ids``, in source order).

    ``strict=True``: the first bad record or unknown requested id raises :class:`TrajectoryFormatError`
    naming the file and the record. ``strict=False``: ``(good instances, {record: error message})`` where
    the key is the instance id when the record has one (else its line/index), so an evaluation can report
    bad records per instance."""
    instances, errors = load_instances_with_errors(source, instance_ids, split=split)
    if not strict:
        good = {inst.instance_id for inst in instances}
        by_key: dict[str, str] = {}
        for err in errors:
            key = str(err.record) if err.record is not None else err.source
            if key in good or key in by_key:  # a duplicate of a kept record: keep both visible
                key = f"{key} ({err.source})"
            by_key[key] = str(err)
        return instances, by_key
    if errors:
        first = errors[0]
        if len(errors) > 1:
            raise TrajectoryFormatError(first.source, first.expected, first.record,
                                        got=f"{first.got or 'something else'} (and {len(errors) - 1} more bad records)")
        raise first
    return instances
