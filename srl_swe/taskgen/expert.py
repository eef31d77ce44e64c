"""Scripted expert trajectories for generated tasks (issue 12), executed on a real runtime and kept only if resolved.

    result = run_expert(instance, runtime="local", seed=0)   # one task: ExpertResult (record, grade, path)
    write_experts("DIR")                                     # every train task of a `srl-swe tasks make` folder

:func:`run_expert` runs :class:`~srl_swe.taskgen.expert_policy.ExpertPolicy` through the agent loop
(:func:`srl_swe.agent.run_agent`) in a fresh sandbox of the task's buggy base, so every observation is the real
output of the real tool, then grades the submitted patch in another fresh sandbox of the same runtime kind
(:func:`srl_swe.swebench.grading.grade_in_runtime`: FAIL_TO_PASS and PASS_TO_PASS). In the record, pytest's
wall-clock durations (``in 0.25s``) become ``in 0.00s`` and object addresses (``at 0x7f3a...``) ``at 0x0``, and
the expert reads its observations that way too, so a rerun with the same seed writes the same bytes; a record
whose observations name a host path (the sandbox copy, the cache, the home folder) is not kept.

:func:`write_experts` writes, into ``DIR/experts`` (``out_dir``):

- ``train/trajectories.jsonl`` and ``heldout/trajectories.jsonl``: one SWE-smith XML chat record per resolved
  task of that split (what :func:`srl_swe.trajectories.load_trajectories`, ``srl-swe data build`` and
  ``gym.make("SRL-SWE-v0", data=...)`` read), with ``split``, ``seed`` and the ``expert_path`` taken;
- ``SPLIT/<instance_id>.report.json``: the grading report, which the loader attaches as the outcome;
- ``attempts.jsonl``: every task tried, with its status and the reason when it was not kept;
- ``summary.json``: tried / resolved / kept, failures with reasons, counts per split, seconds.

Every task by default (``split="train"``/``"heldout"``: only that split's), each split in its own folder: the
``train`` trajectories are training data (``srl-swe data build DIR/experts/train``), the ``heldout`` ones show that
the heldout tasks are solvable and serve held-out step evaluation, and a heldout function must never be trained on.
Resumable like task generation (:class:`srl_swe.jsonl.JsonlLog`): the report is written first,
then the trajectory line, then the attempt line, each fsynced; a rerun skips every task with a trajectory or an
attempt line (``retry_failed=True`` retries the failed ones), so a kill at any point loses or duplicates nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srl_swe.agent import run_agent
from srl_swe.jsonl import JsonlLog, write_atomic
from srl_swe.paths import cache_dir
from srl_swe.swebench.datasets import GENERATED_SPLITS, load_instances
from srl_swe.swebench.grading import InstanceResult, grade_in_runtime
from srl_swe.swebench.runtimes import task_runtime
from srl_swe.taskgen.expert_patch import ExpertError, normalise
from srl_swe.taskgen.expert_policy import ExpertPolicy

EXPERTS, TRAJECTORIES, ATTEMPTS, SUMMARY = "experts", "trajectories.jsonl", "attempts.jsonl", "summary.json"
MAX_STEPS = 40  # the longest script: 8 hunks, each viewed and edited, plus ~15 other steps
MODEL_NAME = "srl-swe-expert"
SPLITS = (*GENERATED_SPLITS, "all")


@dataclass
class ExpertResult:
    """One task's expert run. ``status``: ``resolved`` (``record`` is the chat record to keep), ``unresolved``
    (graded, not resolved) or ``failed`` (no gradable patch; ``reason`` says why)."""

    instance_id: str
    status: str
    reason: str | None = None
    record: dict[str, Any] | None = None
    grade: InstanceResult | None = None
    path: tuple[str, ...] = ()
    steps: int = 0
    seconds: float = 0.0  # the whole run: sandbox, episode and grading
    episode_seconds: float = 0.0  # the agent loop alone
    split: str | None = None
    actions: list[str] = field(default_factory=list, repr=False)

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    def attempt(self) -> dict[str, Any]:
        """The ``attempts.jsonl`` line."""
        return {"instance_id": self.instance_id, "status": self.status, "reason": self.reason, "split": self.split,
                "steps": self.steps, "path": list(self.path), "seconds": round(self.seconds, 3),
                "episode_seconds": round(self.episode_seconds, 3)}


def _leaks(text: str) -> str | None:
    for needle in ("srl-swe-local-", str(cache_dir()), str(Path.home()).rstrip("/") + "/"):
        if needle and needle != "/" and needle in text:
            return needle
    return None


def run_expert(instance: Any, runtime: str = "local", seed: int = 0, *, grade: bool = True,
               max_steps: int = MAX_STEPS, **runtime_kwargs: Any) -> ExpertResult:
    """Run the scripted expert on one task in a fresh ``runtime`` sandbox (``runtime_kwargs`` go to
    :func:`~srl_swe.swebench.runtimes.task_runtime` and the grader, e.g. ``client=`` for docker) and grade its
    patch (``grade=False``: status ``unresolved`` without a grade). Never raises for the task's problems: they
    are a ``failed`` result whose reason names the instance."""
    start = time.monotonic()
    iid = str(getattr(instance, "instance_id", "?"))
    split = getattr(instance, "raw", {}).get("split") if isinstance(getattr(instance, "raw", None), dict) else None

    def done(status: str, reason: str | None = None, **kw: Any) -> ExpertResult:
        return ExpertResult(iid, status, reason, split=split, seconds=time.monotonic() - start, **kw)

    policy: ExpertPolicy | None = None
    try:
        policy = ExpertPolicy(instance, seed=seed)
        with task_runtime(runtime, instance, **runtime_kwargs) as rt:
            policy.read_file = rt.read_file
            result = run_agent(policy, instance, rt, max_steps=max_steps, window=None,
                               max_observation_chars=200_000, model_name=MODEL_NAME)
    except ExpertError as e:
        return done("failed", str(e), path=tuple(policy.path) if policy else ())
    except Exception as e:  # a sandbox that cannot start, a bug: this task's failure, not the batch's
        return done("failed", f"{iid}: {type(e).__name__}: {e}")
    path, steps = tuple(policy.path), len(result.steps)
    kw0 = {"path": path, "steps": steps, "episode_seconds": result.seconds}
    if result.exit_status != "submitted":
        return done("failed", f"{iid}: the episode ended with {result.exit_status} after {steps} steps"
                    + (f" ({result.error})" if result.error else ""), **kw0)
    record = result.to_chat_record(repo=instance.repo, base_commit=instance.base_commit,
                                   problem_statement=instance.problem_statement)
    for k, step in enumerate(result.steps):
        if step.action is not None and step.action.name == "bash":
            msg = record["messages"][3 + 2 * k]
            msg["content"] = normalise(msg["content"])
    for msg in record["messages"][2:]:
        if (needle := _leaks(msg["content"])) is not None:
            return done("failed", f"{iid}: a host path ({needle}) leaked into an observation", **kw0)
    record.update(split=split, seed=seed, expert_path=list(path))
    actions = [m["content"] for m in record["messages"][2::2]]
    if not grade:
        return done("unresolved", "not graded", record=record, actions=actions, **kw0)
    try:
        verdict = grade_in_runtime(instance, result.patch, runtime=runtime, **runtime_kwargs)
    except Exception as e:
        return done("failed", f"{iid}: grading failed: {type(e).__name__}: {e}", **kw0)
    record["resolved"] = verdict.resolved
    status = "resolved" if verdict.resolved else "unresolved"
    reason = None if verdict.resolved else f"{iid}: the expert's patch is {verdict.status}" + (
        f" ({verdict.error})" if verdict.error else "")
    return done(status, reason, record=record, grade=verdict, actions=actions, **kw0)


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
                 .encode("utf-8", "backslashreplace"))


def trajectories_path(out: Path, split: str) -> Path:
    """Where a split's kept trajectories go: one folder per split, so ``srl-swe data build DIR/experts/train``
    (or ``gym.make(..., data=...)``) reads training data that holds no heldout function."""
    return out / split / TRAJECTORIES


def _split_of(split: Any) -> str:
    return split if split in GENERATED_SPLITS else "train"  # a record without a split counts as training data


def _report_name(iid: str) -> str | None:
    """The report's file name, or None for an id that cannot be one (a path separator, too long)."""
    ok = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}", iid) and ".." not in iid
    return f"{iid}.report.json" if ok else None


def write_experts(tasks_dir: str | Path, out_dir: str | Path | None = None, *, runtime: str = "local",
                  workers: int = 2, seed: int = 0, tries: int = 2, split: str = "all", retry_failed: bool = False,
                  progress: bool = True, **runtime_kwargs: Any) -> dict[str, Any]:
    """Run the expert on every ``split`` task of ``tasks_dir/tasks.jsonl`` (``"all"``: every task) with
    ``workers`` in parallel, keep the resolved ones in ``out_dir`` (default ``tasks_dir/experts``; module
    docstring) and return the summary (also ``summary.json``). Resumes what an earlier run left there. A task
    whose run ``failed`` (e.g. a traceback that printed a host path) is tried again with the next seed, up to
    ``tries`` seeds in all: another path may avoid what stopped the first."""
    from tqdm import tqdm

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if workers < 1 or tries < 1:
        raise ValueError(f"workers and tries must be at least 1, got {workers} and {tries}")
    start = time.monotonic()
    tasks_dir = Path(tasks_dir)
    out = Path(out_dir) if out_dir is not None else tasks_dir / EXPERTS
    for name in GENERATED_SPLITS:
        (out / name).mkdir(parents=True, exist_ok=True)
    kept_logs = {s: JsonlLog(trajectories_path(out, s), "instance_id") for s in GENERATED_SPLITS}
    attempts_log = JsonlLog(out / ATTEMPTS, "instance_id")
    for log in (*kept_logs.values(), attempts_log):
        log.repair()
    instances, bad = load_instances(tasks_dir, strict=False)
    kept = {k: r for log in kept_logs.values() for k, r in log.read().items()}
    attempts = attempts_log.read()
    for iid in kept.keys() - attempts.keys():  # killed between the trajectory line and the attempt line
        attempts[iid] = {"instance_id": iid, "status": "resolved", "reason": None, "split": kept[iid].get("split")}
        attempts_log.append(attempts[iid])
    chosen = [i for i in instances if split == "all" or i.raw.get("split") == split]
    skip = set(kept) | {k for k, a in attempts.items() if not retry_failed or a.get("status") == "resolved"}
    todo = [i for i in chosen if i.instance_id not in skip]

    def on_result(res: ExpertResult) -> None:
        name, where = _report_name(res.instance_id), _split_of(res.split)
        if res.resolved and res.record is not None and res.grade is not None and name:
            _write_json(out / where / name, res.grade.report or {res.instance_id: {"resolved": True}})
            kept_logs[where].append(res.record)
            kept[res.instance_id] = res.record
        elif res.resolved:
            res.status, res.reason = "failed", f"{res.instance_id}: the instance id cannot name a report file"
        attempts[res.instance_id] = res.attempt()
        attempts_log.append(attempts[res.instance_id])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="srl-swe-expert") as pool, \
            tqdm(total=len(todo), desc=f"experts {tasks_dir.name}", unit="task", disable=not progress) as bar:
        futures = [pool.submit(_run_tries, inst, runtime, seed, tries, runtime_kwargs) for inst in todo]
        try:
            for future in as_completed(futures):
                on_result(future.result())
                bar.update(1)
                bar.set_postfix(kept=len(kept))
        except BaseException:  # Ctrl-C: start no queued task; what finished is already recorded
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    summary = _summary(chosen, bad, kept, attempts, split, runtime, seed, time.monotonic() - start)
    _write_json(out / SUMMARY, summary)
    return summary


def _run_tries(instance: Any, runtime: str, seed: int, tries: int, runtime_kwargs: dict[str, Any]) -> ExpertResult:
    for k in range(tries):
        result = run_expert(instance, runtime, seed + k, **runtime_kwargs)
        if result.status != "failed":
            break
    return result


def _summary(chosen: list[Any], bad: dict[str, str], kept: dict[str, Any], attempts: dict[str, dict[str, Any]],
             split: str, runtime: str, seed: int, wall: float) -> dict[str, Any]:
    ids = {i.instance_id for i in chosen}
    mine = [a for k, a in attempts.items() if k in ids]
    failures = {a["instance_id"]: a.get("reason") or a.get("status") for a in mine if a.get("status") != "resolved"}
    failures.update({f"record {k}": why for k, why in bad.items()})
    per_split: dict[str, dict[str, int]] = {}
    for inst in chosen:
        row = per_split.setdefault(str(inst.raw.get("split")), {"tasks": 0, "tried": 0, "kept": 0})
        row["tasks"] += 1
        row["tried"] += inst.instance_id in attempts
        row["kept"] += inst.instance_id in kept
    seconds = [a["seconds"] for a in mine if isinstance(a.get("seconds"), (int, float))]
    episodes = [a["episode_seconds"] for a in mine if isinstance(a.get("episode_seconds"), (int, float))]
    return {"split": split, "runtime": runtime, "seed": seed, "tasks": len(chosen), "tried": len(mine),
            "resolved": sum(a.get("status") == "resolved" for a in mine), "kept": len(ids & kept.keys()),
            "bad_records": len(bad), "statuses": dict(Counter(a.get("status") for a in mine)),
            "failures": dict(sorted(failures.items())), "splits": per_split,
            "expert_seconds": round(sum(seconds), 3),
            "seconds_per_task": round(sum(seconds) / len(seconds), 3) if seconds else None,
            "episode_seconds_per_task": round(sum(episodes) / len(episodes), 3) if episodes else None,
            "wall_seconds": round(wall, 3)}
