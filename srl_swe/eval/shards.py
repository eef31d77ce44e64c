"""Sharded SWE-bench evaluation: ``srl-swe eval swebench ... --shard I/N`` on N machines (or N processes), then
``srl-swe eval merge SHARD_DIR... -o OUT`` for the one report a single run would have written.

What a shard takes: every key the whole run's report could hold (the dataset's instance ids after
``--instances`` / ``--limit``, the keys of its unreadable records, and with ``--predictions`` the file's ids and
unreadable lines) is sorted, and shard I of N takes every N-th key starting at the I-th. So the shards are
disjoint and together are the whole run, their sizes differ by one at most, and the split does not depend on
the order of the dataset file. A shard is an ordinary run in its own ``--out``: resumable like any run (rerun
the same command), graded under its own harness run id; its ``results.json`` adds a ``shard`` record after the
run's settings: I, N, how many keys the whole run has and a digest of them, and the settings that decide a
verdict (:func:`settings`: all of :class:`~srl_swe.eval.swebench.SWEBenchOptions` but where the output goes
and how parallel the run is).

:func:`merge` refuses shards that are not one run split N ways (a folder without a finished shard's
``results.json``, different N, settings or key lists, a shard given twice or missing) and otherwise writes
``results.json`` exactly as a single run writes it (same JSON text: the same keys in the same order, totals
recomputed from the instances by the same code), with ``run_id`` that of a run into the merge's folder (or
``--run-id``); ``predictions.jsonl`` with each shard's lines in shard order; the agent's ``trajs/``; and
``merge.json``, the provenance (which folder was which shard, and under which harness run id).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError

#: Options that say where a run writes or how parallel it is, never what it reports: shards may differ in them.
NOT_SETTINGS = ("out", "run_id", "workers", "batch_size", "quiet", "shard")
MERGE_RECORD = "merge.json"


class ShardError(SRLError):
    """A shard specification that is not I/N, or shards that do not make one run."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (isinstance(self.count, int) and isinstance(self.index, int) and 1 <= self.index <= self.count):
            raise ShardError(f"shard {self.index}/{self.count}: write I/N with 1 <= I <= N (e.g. 1/4 ... 4/4)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` -> :class:`Shard`; anything else raises :class:`ShardError` saying what to write."""
    index, sep, count = str(text).strip().partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ShardError(f"shard {text!r}: write I/N, the I-th of N shards (1 <= I <= N), e.g. 2/4")
    return Shard(int(index), int(count))


def shard_keys(keys: Iterable[str], shard: Shard) -> set[str]:
    """The keys of ``shard``: of the sorted distinct ``keys``, every ``count``-th from the ``index``-th."""
    return set(sorted(set(keys))[shard.index - 1 :: shard.count])


def keys_digest(keys: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(keys))).encode("utf-8", "surrogateescape")).hexdigest()


def settings(opts: Any, grader: str) -> dict[str, Any]:
    """The options of a run that decide its verdicts, as JSON values (``grader`` resolved): every field of
    ``opts`` but :data:`NOT_SETTINGS`. Paths are compared as written: give every shard the same ones."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(opts):
        if field.name in NOT_SETTINGS:
            continue
        value = getattr(opts, field.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (list, tuple)):  # --instances: a set, whatever order it was written in
            value = sorted(str(v) for v in value)
        out[field.name] = value
    out["grader"] = grader
    return out


def select(shard: Shard, instances: list, load_errors: dict[str, str], predictions: dict[str, Any] | None,
           run_settings: dict[str, Any]) -> tuple[list, dict[str, str], dict[str, Any] | None, dict[str, Any]]:
    """The shard's part of a run: its instances, load errors and (with ``--predictions``) given predictions,
    and the ``shard`` record its ``results.json`` carries."""
    keys = {i.instance_id for i in instances} | set(load_errors) | set(predictions or ())
    mine = shard_keys(keys, shard)
    record = {"index": shard.index, "count": shard.count, "keys": len(keys), "keys_sha256": keys_digest(keys),
              "settings": run_settings}
    return ([i for i in instances if i.instance_id in mine], {k: v for k, v in load_errors.items() if k in mine},
            None if predictions is None else {k: v for k, v in predictions.items() if k in mine}, record)


def _read_shard(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    if not path.is_file():
        raise ShardError(f"{folder}: no results.json, so this shard has not finished; rerun its `srl-swe eval "
                         "swebench ... --shard I/N` command (it resumes where it stopped), then merge")
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: not a readable results.json ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("shard"), dict):
        raise ShardError(f"{path}: not the results of a shard (a run of `srl-swe eval swebench` with --shard I/N)")
    return summary


def _check(shards: list[tuple[Path, dict[str, Any]]]) -> int:
    """Raise :class:`ShardError` unless ``shards`` are one run split N ways, each shard once; returns N."""
    first_dir, first = shards[0][0], shards[0][1]["shard"]
    for folder, summary in shards[1:]:
        rec = summary["shard"]
        if rec["count"] != first["count"]:
            raise ShardError(f"{folder} is shard {rec['index']}/{rec['count']} but {first_dir} is "
                             f"{first['index']}/{first['count']}: all shards of a run split it the same N ways")
        differ = sorted(k for k in set(rec["settings"]) | set(first["settings"])
                        if rec["settings"].get(k) != first["settings"].get(k))
        if differ:
            what = "; ".join(f"{k}: {first['settings'].get(k)!r} vs {rec['settings'].get(k)!r}" for k in differ)
            raise ShardError(f"{first_dir} and {folder} were run with different settings ({what}); shards of one "
                             "run must use the same ones")
        if (rec["keys"], rec["keys_sha256"]) != (first["keys"], first["keys_sha256"]):
            raise ShardError(f"{first_dir} and {folder} split different sets of instances ({first['keys']} vs "
                             f"{rec['keys']} keys; the dataset or the predictions file changed between them)")
    count, seen = first["count"], {}
    for folder, summary in shards:
        index = summary["shard"]["index"]
        if index in seen:
            raise ShardError(f"shard {index}/{count} is given twice: {seen[index]} and {folder}")
        seen[index] = folder
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise ShardError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: merge needs every "
                         f"shard 1/{count} ... {count}/{count} once")
    owner: dict[str, Path] = {}
    for folder, summary in shards:
        for key in summary["instances"]:
            if key in owner:
                raise ShardError(f"{key} is in two shards, {owner[key]} and {folder}")
            owner[key] = folder
    return count


def merge(shard_dirs: Sequence[str | Path], out: str | Path, run_id: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Merge the folders of the N shards of one run into ``out`` (see the module docstring); returns ``out`` and
    the summary (:func:`srl_swe.eval.swebench.table` prints it). Raises :class:`ShardError` for shards that do
    not make one run, and for an ``out`` that is a shard or holds a run that is not an earlier merge."""
    from srl_swe.eval.predictions import PredictionLog
    from srl_swe.eval.report import totals
    from srl_swe.eval.swebench import PREDICTIONS, run_id_for

    if not shard_dirs:
        raise ShardError("no shard folders to merge")
    out = Path(out)
    folders = [Path(d) for d in shard_dirs]
    if any(f.resolve() == out.resolve() for f in folders):
        raise ShardError(f"{out} is one of the shards: merge into a folder of its own")
    if (out / "results.json").exists() and not (out / MERGE_RECORD).exists():
        raise ShardError(f"{out} already holds a run's results.json: merge into a new folder")
    shards = sorted(((f, _read_shard(f)) for f in folders), key=lambda fs: fs[1]["shard"]["index"])
    _check(shards)
    run_id = run_id or run_id_for(out)
    head = shards[0][1]
    meta: dict[str, Any] = {}
    for key, value in head.items():  # the run's settings: what precedes the totals, but the shard record
        if key == "total":
            break
        if key != "shard":
            meta[key] = run_id if key == "run_id" else value
    per: dict[str, Any] = {}
    for _, summary in shards:
        per.update(summary["instances"])
    merged = totals(meta, per)
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for folder, summary in shards:
        records = PredictionLog(folder / PREDICTIONS).read() if (folder / PREDICTIONS).is_file() else {}
        lines += [json.dumps(r, ensure_ascii=False) + "\n" for iid, r in records.items() if iid in summary["instances"]]
        for iid in summary["instances"]:
            traj = folder / "trajs" / f"{iid}.json"
            if "/" not in iid and traj.is_file():  # (keys of unreadable lines are paths, never trajectories)
                (out / "trajs").mkdir(exist_ok=True)
                shutil.copyfile(traj, out / "trajs" / traj.name)
    _write(out / PREDICTIONS, "".join(lines))
    _write(out / "results.json", json.dumps(merged, indent=2))
    provenance = {"run_id": run_id, "count": len(shards), "keys": head["shard"]["keys"],
                  "keys_sha256": head["shard"]["keys_sha256"], "settings": head["shard"]["settings"],
                  "shards": [{"index": s["shard"]["index"], "dir": str(f.resolve()), "run_id": s.get("run_id")}
                             for f, s in shards]}
    _write(out / MERGE_RECORD, json.dumps(provenance, indent=2))
    return out, merged


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8", "backslashreplace"))
    os.replace(tmp, path)
