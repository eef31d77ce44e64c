"""``srl-swe eval swebench``: predictions for SWE-bench instances, graded by the real swebench harness.

Two settings:

* ``agent``: the policy works in a sandbox (``--runtime``: a backend of :data:`srl_swe.runtime.RUNTIMES`) with
  bash / str_replace_editor / submit until it submits or hits a limit (:func:`srl_swe.agent.loop.run_agent`);
  the patch is ``git diff``.
* ``oracle-file``: the paper's main SWE setting. The model sees the issue and the full content of the files
  the gold patch touches and answers with search/replace edits, turned into a patch
  (:mod:`srl_swe.eval.oracle`).

``--model`` is a model spec (hub id, local folder, ``.gguf``, alias) for the ``--backend``; two special specs
need no model: ``gold`` (the gold patches: checks the images and the harness, like swebench's ``-p gold``)
and ``replay:PATH`` (agent mode: replay the expert trajectories in PATH whose task id matches).

Runs are resumable: ``predictions.jsonl`` is appended one line per finished instance (fsynced; a line torn by
a crash is repaired before the next append, see :mod:`srl_swe.eval.predictions`), a rerun skips the instances
already in it, and the harness skips instances it has already graded for the same run id, so a
rerun yields the same report. Everything lands in ``--out``: ``predictions.jsonl``, ``trajs/ID.json`` (agent
messages), ``logs/`` (the harness's), ``results.json`` (resolved rate and per-instance status).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError
from srl_swe.eval.predictions import PredictionLog
from srl_swe.swebench.grading import default_grader
from srl_swe.swebench.instance import SWEInstance
from srl_swe.swebench.prediction import KEYS, Prediction, make_prediction, read_prediction

MODES = ("agent", "oracle-file")
PREDICTIONS = "predictions.jsonl"
#: What a predictor returns for one instance: the prediction's fields (``model_patch`` and extra fields such
#: as ``exit_status`` or ``error``); :func:`predict_all` adds the id, the model name and the time taken.
Predictor = Callable[[SWEInstance, Path], Mapping[str, Any]]


@dataclass(frozen=True)
class SWEBenchOptions:
    """One ``srl-swe eval swebench`` run (the CLI's flags, typed; defaults are the CLI's).

    Exactly one of ``model`` (a model spec for ``backend``, ``"gold"`` or ``"replay:PATH"``: generate, then
    grade) and ``predictions`` (a predictions JSONL to grade) is given. ``grader`` defaults to
    :func:`~srl_swe.swebench.grading.default_grader` of ``runtime``; ``out`` to ``runs/eval/swebench/MODEL``;
    ``run_id`` (the harness's) to the name of ``out``. ``max_steps``, ``max_seconds`` and ``syntax`` are the
    agent mode's limits and action syntax; ``timeout`` is the harness's test-run timeout per instance."""

    dataset: str | Path
    model: str | None = None
    predictions: Path | None = None
    split: str = "test"
    instances: Sequence[str] | None = None
    mode: str = "agent"
    runtime: str = "docker"
    grader: str | None = None
    workers: int = 1
    out: Path | None = None
    run_id: str | None = None
    backend: str = "transformers"
    batch_size: int = 1
    dtype: str = "auto"
    temperature: float = 0.0
    max_new_tokens: int = 1024
    max_steps: int = 50
    max_seconds: float | None = 1800.0
    syntax: str = "xml"
    timeout: int = 1800
    quiet: bool = False


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text.strip("/")) or "model"


def _replay_predictor(path: str, mode: str, runtime: str, limits: dict[str, Any]) -> Predictor:
    from srl_swe.agent.loop import run_agent
    from srl_swe.agent.policies import ReplayPolicy
    from srl_swe.swebench.runtimes import task_runtime
    from srl_swe.trajectories import load_trajectories

    if mode != "agent":
        raise SRLError("--model replay:PATH replays agent trajectories; use it with --mode agent")
    by_task = {t.task.instance_id: t for t in load_trajectories(path, keep="all").trajectories if t.kind == "swe"}

    def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
        traj = by_task.get(inst.instance_id)
        if traj is None:
            return {"model_patch": "", "error": f"no trajectory for {inst.instance_id} in {path}"}
        with task_runtime(runtime, inst) as rt:
            res = run_agent(ReplayPolicy(traj), inst, rt, model_name=f"replay:{path}", **limits)
        _save_messages(out, inst.instance_id, res.messages)
        return {"model_patch": res.patch, "exit_status": res.exit_status}

    return predict


def _model_predictor(opts: SWEBenchOptions, limits: dict[str, Any]) -> Predictor:
    from srl_swe.models import make_generator
    from srl_swe.swebench.runtimes import task_runtime

    model, runtime = str(opts.model), opts.runtime
    generator = make_generator(opts.backend, model, batch_size=opts.batch_size, dtype=opts.dtype)
    gen_lock = threading.Lock()  # one model, several sandboxes: workers overlap execution, not generation

    class Locked:
        def generate(self, *a: Any, **k: Any) -> Any:
            with gen_lock:
                return generator.generate(*a, **k)

    if opts.mode == "oracle-file":
        from srl_swe.eval.oracle import oracle_predict

        def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
            with task_runtime(runtime, inst) as rt:
                return oracle_predict(inst, Locked(), read_file=rt.read_file, temperature=opts.temperature,
                                      max_new_tokens=opts.max_new_tokens, model_name=model).to_dict()
        return predict

    from srl_swe.agent.loop import run_agent
    from srl_swe.agent.policies import ModelPolicy

    def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
        policy = ModelPolicy(Locked(), temperature=opts.temperature, max_new_tokens=opts.max_new_tokens)
        with task_runtime(runtime, inst) as rt:
            res = run_agent(policy, inst, rt, model_name=model, syntax=opts.syntax, **limits)
        _save_messages(out, inst.instance_id, res.messages)
        return {"model_patch": res.patch, "exit_status": res.exit_status}

    return predict


def _save_messages(out: Path, instance_id: str, messages: list[dict[str, str]]) -> None:
    (out / "trajs").mkdir(parents=True, exist_ok=True)
    (out / "trajs" / f"{instance_id}.json").write_text(json.dumps(messages, indent=1, ensure_ascii=False))


def make_predictor(opts: SWEBenchOptions) -> Predictor:
    """The predictor for ``opts.model``: the gold patches, a replay of expert trajectories, or a model."""
    if opts.model is None:
        raise SRLError("no --model to predict with")
    limits = {"max_steps": opts.max_steps, "max_seconds": opts.max_seconds}
    if opts.model == "gold":
        return lambda inst, out: {"model_patch": inst.patch}
    if opts.model.startswith("replay:"):
        return _replay_predictor(opts.model[len("replay:"):], opts.mode, opts.runtime, limits)
    return _model_predictor(opts, limits)


def predict_all(instances: list[SWEInstance], predictor: Predictor, out: Path, model_name: str, workers: int = 1,
                progress: bool = True) -> dict[str, Prediction]:
    """Predictions for every instance not already in ``out/predictions.jsonl``; one failing instance is
    recorded with an empty patch and its error, never the end of the run."""
    from tqdm.auto import tqdm

    log = PredictionLog(out / PREDICTIONS)
    done = {iid: read_prediction(rec) for iid, rec in log.read().items()}
    todo = [i for i in instances if i.instance_id not in done]

    def one(inst: SWEInstance) -> Prediction:
        start = time.perf_counter()
        try:
            fields = dict(predictor(inst, out))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one instance's failure is data for the report
            fields = {"model_patch": "", "error": f"{type(exc).__name__}: {exc}"}
        extra = {k: v for k, v in fields.items() if k not in KEYS}
        pred = make_prediction(inst.instance_id, fields.get("model_patch"), model_name,
                               **{**extra, "seconds": round(time.perf_counter() - start, 3)})
        log.append(pred.to_dict())
        return pred

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(one, inst) for inst in todo]
        for fut in tqdm(as_completed(futures), total=len(futures), desc="predict", disable=not progress):
            pred = fut.result()
            done[pred.instance_id] = pred
    return done


# -- grading ----------------------------------------------------------------------------------------
def grade(predictions: dict[str, Prediction], instances: list[SWEInstance], out: Path, *, grader: str,
          runtime: str, run_id: str, workers: int = 1, timeout: int = 1800) -> dict[str, Any]:
    """Verdicts for every prediction: ``harness`` runs swebench's ``run_evaluation`` on Docker, ``runtime``
    grades in a fresh sandbox of ``runtime`` with the harness's own log parser and grading code."""
    from srl_swe.swebench import grading

    preds = list(predictions.values())
    if grader == "harness":
        return grading.grade_with_harness(preds, instances, run_id=run_id, workdir=out, max_workers=workers,
                                          timeout=timeout)
    if grader != "runtime":
        raise SRLError(f"--grader {grader!r}: choose harness or runtime")
    # Runtime grading is resumed from its own log: a verdict is kept while the patch it graded is unchanged.
    cache_path = out / f"runtime_grades.{run_id}.jsonl"
    log = PredictionLog(cache_path)
    cache = log.read()
    by_id = {i.instance_id: i for i in instances}
    results: dict[str, Any] = {}
    for pred in preds:
        iid = pred.instance_id
        hit = cache.get(iid)
        if hit is not None and hit.get("model_patch") == pred.model_patch:
            results[iid] = grading.InstanceResult(**hit["result"])
            continue
        if iid not in by_id:
            res = grading.InstanceResult(iid, "error", False, "unknown instance id: not in the dataset", None)
        else:
            res = grading.grade_in_runtime(by_id[iid], pred.model_patch, runtime=runtime)
        results[iid] = res
        log.append({"instance_id": iid, "model_patch": pred.model_patch, "result": res.to_dict()})
    return results


def summarize(results: dict[str, Any], predictions: dict[str, Prediction],
              load_errors: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    for iid, err in load_errors.items():
        per[iid] = {"status": "error", "resolved": False, "error": err}
    for iid, res in results.items():
        r = res.to_dict()
        pred = predictions.get(iid)
        per[iid] = {"status": r["status"], "resolved": bool(r["resolved"]), "error": r.get("error"),
                    "exit_status": pred.exit_status if pred is not None else None,
                    "prediction_error": pred.error if pred is not None else None}
    total = len(per)
    resolved = sum(v["resolved"] for v in per.values())
    counts: dict[str, int] = {}
    for v in per.values():
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    return {**meta, "total": total, "resolved": resolved, "resolved_rate": resolved / total if total else 0.0,
            "status_counts": dict(sorted(counts.items())), "instances": dict(sorted(per.items()))}


def table(summary: dict[str, Any]) -> str:
    lines = [f"{'instance':<48} {'status':<12} note", "-" * 80]
    for iid, v in summary["instances"].items():
        note = v.get("error") or v.get("prediction_error") or v.get("exit_status") or ""
        lines.append(f"{iid:<48} {v['status']:<12} {str(note).splitlines()[0][:60] if note else ''}")
    lines.append(f"resolved {summary['resolved']}/{summary['total']} = {100 * summary['resolved_rate']:.1f}%")
    return "\n".join(lines) + "\n"


# -- the run ----------------------------------------------------------------------------------------
def _read_predictions(path: Path, load_errors: dict[str, str]) -> dict[str, Prediction]:
    """A predictions file to grade, as SWE-bench files come (``model_patch`` left out or null: an empty
    patch); every unreadable line is a record that was meant to be graded: an error in the denominator."""
    records, unreadable = PredictionLog(path).read_report()
    for n, why in unreadable:
        load_errors[f"{path}:{n}"] = f"{path} line {n}: unreadable prediction, {why}"
    return {iid: read_prediction(rec) for iid, rec in records.items()}


def evaluate(opts: SWEBenchOptions) -> tuple[Path, dict[str, Any]]:
    """Predict (unless ``opts.predictions``), grade, and write ``results.json`` into the run folder; returns
    the folder and the summary (:func:`table` prints it)."""
    from srl_swe.swebench.datasets import load_instances

    if (opts.model is None) == (opts.predictions is None):
        raise SRLError("pass exactly one of --model (generate and grade) or --predictions (grade a file)")
    grader = opts.grader or default_grader(opts.runtime)
    from srl_swe.runtime.local import cleanup_stale_copies

    cleanup_stale_copies()  # repository copies of local runtimes that were SIGKILLed
    if grader == "harness" or opts.runtime == "docker":
        from srl_swe.runtime.images import cleanup_stale, docker_client

        client = docker_client()  # one clear message (how to start Docker, or --runtime local) before any work
        cleanup_stale(client)  # containers left by runs that were SIGKILLed
    name = opts.model if opts.model is not None else Path(str(opts.predictions)).stem
    out = opts.out or Path("runs/eval/swebench") / _slug(name)
    out.mkdir(parents=True, exist_ok=True)
    run_id = opts.run_id or _slug(out.resolve().name)
    wanted_ids = list(opts.instances) if opts.instances else None
    instances, load_errors = load_instances(opts.dataset, instance_ids=wanted_ids, strict=False, split=opts.split)
    if opts.predictions is not None:
        predictions = _read_predictions(Path(opts.predictions), load_errors)
        if wanted_ids:
            predictions = {k: v for k, v in predictions.items() if k in set(wanted_ids)}
    else:
        predictions = predict_all(instances, make_predictor(opts), out, model_name=name, workers=opts.workers,
                                  progress=not opts.quiet)
        wanted = {i.instance_id for i in instances}
        predictions = {k: v for k, v in predictions.items() if k in wanted}
    results = grade(predictions, instances, out, grader=grader, runtime=opts.runtime, run_id=run_id,
                    workers=opts.workers, timeout=opts.timeout)
    meta = {"model": name, "dataset": str(opts.dataset), "mode": opts.mode, "runtime": opts.runtime,
            "grader": grader, "run_id": run_id}
    summary = summarize(results, predictions, load_errors, meta)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return out, summary
