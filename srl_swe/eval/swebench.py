"""``srl-swe eval swebench``: predictions for SWE-bench instances, graded by the real swebench harness.

Two settings:

* ``agent``: the policy works in a sandbox (``--runtime docker|local``) with bash / str_replace_editor /
  submit until it submits or hits a limit (:func:`srl_swe.agent.loop.run_agent`); the patch is ``git diff``.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError
from srl_swe.eval.predictions import PredictionLog
from srl_swe.swebench.instance import SWEInstance

MODES = ("agent", "oracle-file")
PREDICTIONS = "predictions.jsonl"


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text.strip("/")) or "model"


def _replay_predictor(path: str, mode: str, runtime: str, limits: dict[str, Any]) -> Callable[..., dict]:
    from srl_swe.agent.loop import run_agent
    from srl_swe.agent.policies import ReplayPolicy
    from srl_swe.runtime import make_runtime
    from srl_swe.trajectories import load_trajectories

    if mode != "agent":
        raise SRLError("--model replay:PATH replays agent trajectories; use it with --mode agent")
    by_task = {t.task.instance_id: t for t in load_trajectories(path, keep="all").trajectories if t.kind == "swe"}

    def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
        traj = by_task.get(inst.instance_id)
        if traj is None:
            return {"model_patch": "", "error": f"no trajectory for {inst.instance_id} in {path}"}
        with make_runtime(runtime, inst) as rt:
            res = run_agent(ReplayPolicy(traj), inst, rt, model_name=f"replay:{path}", **limits)
        _save_messages(out, inst.instance_id, res.messages)
        return {"model_patch": res.prediction["model_patch"], "exit_status": res.exit_status}

    return predict


def _model_predictor(args: Any, mode: str, runtime: str, limits: dict[str, Any]) -> Callable[..., dict]:
    from srl_swe.eval.generation import make_generator
    from srl_swe.runtime import make_runtime

    generator = make_generator(args.backend, args.model, batch_size=args.batch_size, dtype=args.dtype)
    gen_lock = threading.Lock()  # one model, several sandboxes: workers overlap execution, not generation

    class Locked:
        def generate(self, *a: Any, **k: Any) -> Any:
            with gen_lock:
                return generator.generate(*a, **k)

    if mode == "oracle-file":
        from srl_swe.eval.oracle import oracle_predict

        def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
            with make_runtime(runtime, inst) as rt:
                return oracle_predict(inst, Locked(), read_file=rt.read_file, temperature=args.temperature,
                                      max_new_tokens=args.max_new_tokens, model_name=args.model)
        return predict

    from srl_swe.agent.loop import run_agent
    from srl_swe.agent.policies import ModelPolicy

    def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
        policy = ModelPolicy(Locked(), temperature=args.temperature, max_new_tokens=args.max_new_tokens)
        with make_runtime(runtime, inst) as rt:
            res = run_agent(policy, inst, rt, model_name=args.model, syntax=args.syntax, **limits)
        _save_messages(out, inst.instance_id, res.messages)
        return {"model_patch": res.prediction["model_patch"], "exit_status": res.exit_status}

    return predict


def _save_messages(out: Path, instance_id: str, messages: list[dict[str, str]]) -> None:
    (out / "trajs").mkdir(parents=True, exist_ok=True)
    (out / "trajs" / f"{instance_id}.json").write_text(json.dumps(messages, indent=1, ensure_ascii=False))


def make_predictor(args: Any) -> Callable[[SWEInstance, Path], dict[str, Any]]:
    limits = {"max_steps": args.max_steps, "max_seconds": args.max_seconds}
    if args.model == "gold":
        return lambda inst, out: {"model_patch": inst.patch}
    if args.model.startswith("replay:"):
        return _replay_predictor(args.model[len("replay:"):], args.mode, args.runtime, limits)
    return _model_predictor(args, args.mode, args.runtime, limits)


def predict_all(instances: list[SWEInstance], predictor: Callable[[SWEInstance, Path], dict[str, Any]],
                out: Path, model_name: str, workers: int = 1, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Predictions for every instance not already in ``out/predictions.jsonl``; one failing instance is
    recorded with an empty patch and its error, never the end of the run."""
    from tqdm.auto import tqdm

    log = PredictionLog(out / PREDICTIONS)
    done = log.read()
    todo = [i for i in instances if i.instance_id not in done]

    def one(inst: SWEInstance) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            extra = predictor(inst, out)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one instance's failure is data for the report
            extra = {"model_patch": "", "error": f"{type(exc).__name__}: {exc}"}
        rec = {"instance_id": inst.instance_id, "model_name_or_path": model_name, **extra,
               "seconds": round(time.perf_counter() - start, 3)}
        rec["model_patch"] = rec.get("model_patch") or ""
        log.append(rec)
        return rec

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(one, inst) for inst in todo]
        for fut in tqdm(as_completed(futures), total=len(futures), desc="predict", disable=not progress):
            rec = fut.result()
            done[rec["instance_id"]] = rec
    return done


# -- grading ----------------------------------------------------------------------------------------
def grade(predictions: dict[str, dict[str, Any]], instances: list[SWEInstance], out: Path, *, grader: str,
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
        iid = pred["instance_id"]
        hit = cache.get(iid)
        if hit is not None and hit.get("model_patch") == pred["model_patch"]:
            results[iid] = grading.InstanceResult(**hit["result"])
            continue
        if iid not in by_id:
            res = grading.InstanceResult(iid, "error", False, "unknown instance id: not in the dataset", None)
        else:
            res = grading.grade_in_runtime(by_id[iid], pred["model_patch"], runtime=runtime)
        results[iid] = res
        log.append({"instance_id": iid, "model_patch": pred["model_patch"], "result": res.to_dict()})
    return results


def summarize(results: dict[str, Any], predictions: dict[str, dict[str, Any]],
              load_errors: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    for iid, err in load_errors.items():
        per[iid] = {"status": "error", "resolved": False, "error": err}
    for iid, res in results.items():
        r = res.to_dict()
        pred = predictions.get(iid, {})
        per[iid] = {"status": r["status"], "resolved": bool(r["resolved"]), "error": r.get("error"),
                    "exit_status": pred.get("exit_status"), "prediction_error": pred.get("error")}
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


# -- CLI --------------------------------------------------------------------------------------------
def add_cli_arguments(parser: Any) -> None:
    """Options of ``srl-swe eval swebench`` (argparse)."""
    parser.add_argument("--model", default=None,
                        help="model spec, or 'gold' (gold patches), or 'replay:PATH' (expert trajectories)")
    parser.add_argument("--predictions", type=Path, default=None,
                        help="grade this predictions JSONL instead of generating (no --model needed)")
    parser.add_argument("--dataset", required=True,
                        help="SWE-bench JSONL/JSON file, a local_tasks folder, or a Hugging Face dataset name")
    parser.add_argument("--split", default="test", help="split of a Hugging Face dataset")
    parser.add_argument("--instances", nargs="*", default=None, help="only these instance ids")
    parser.add_argument("--mode", choices=MODES, default="agent")
    parser.add_argument("--runtime", choices=["docker", "local"], default="docker")
    parser.add_argument("--grader", choices=["harness", "runtime"], default=None,
                        help="default: harness with --runtime docker, runtime with --runtime local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default: runs/eval/swebench/MODEL")
    parser.add_argument("--run-id", default=None, help="harness run id (default: derived from --out)")
    parser.add_argument("--backend", default="transformers", help="generation backend (transformers, vllm)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--max-steps", type=int, default=50, help="agent mode: tool calls per instance")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="agent mode: wall time per instance")
    parser.add_argument("--syntax", default="xml", help="agent mode: action syntax (xml, qwen, bash)")
    parser.add_argument("--timeout", type=int, default=1800, help="harness: test run timeout per instance")
    parser.add_argument("--quiet", action="store_true")


def main_from_args(args: Any) -> int:
    from srl_swe.swebench.datasets import load_instances

    if (args.model is None) == (args.predictions is None):
        raise SRLError("pass exactly one of --model (generate and grade) or --predictions (grade a file)")
    grader = args.grader or ("harness" if args.runtime == "docker" else "runtime")
    from srl_swe.runtime.local import cleanup_stale_copies

    cleanup_stale_copies()  # repository copies of local runtimes that were SIGKILLed
    if grader == "harness" or args.runtime == "docker":
        from srl_swe.runtime.images import cleanup_stale, docker_client

        client = docker_client()  # one clear message (how to start Docker, or --runtime local) before any work
        cleanup_stale(client)  # containers left by runs that were SIGKILLed
    name = args.model or args.predictions.stem
    out = args.out or Path("runs/eval/swebench") / _slug(name)
    out.mkdir(parents=True, exist_ok=True)
    run_id = args.run_id or _slug(out.resolve().name)
    instances, load_errors = load_instances(args.dataset, instance_ids=args.instances, strict=False,
                                            split=args.split)
    if args.predictions is not None:
        predictions, unreadable = PredictionLog(args.predictions).read_report()
        # Every unreadable line is a record that was meant to be graded: an error in the denominator.
        for n, why in unreadable:
            load_errors[f"{args.predictions}:{n}"] = f"{args.predictions} line {n}: unreadable prediction, {why}"
        for rec in predictions.values():  # SWE-bench files may leave it out or null: graded as an empty patch
            rec["model_patch"] = rec.get("model_patch") or ""
        if args.instances:
            predictions = {k: v for k, v in predictions.items() if k in set(args.instances)}
    else:
        predictions = predict_all(instances, make_predictor(args), out, model_name=args.model,
                                  workers=args.workers, progress=not args.quiet)
        wanted = {i.instance_id for i in instances}
        predictions = {k: v for k, v in predictions.items() if k in wanted}
    results = grade(predictions, instances, out, grader=grader, runtime=args.runtime, run_id=run_id,
                    workers=args.workers, timeout=args.timeout)
    meta = {"model": name, "dataset": str(args.dataset), "mode": args.mode, "runtime": args.runtime,
            "grader": grader, "run_id": run_id}
    summary = summarize(results, predictions, load_errors, meta)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(table(summary), end="")
    print(f"wrote {out}/results.json, {PREDICTIONS}")
    return 0
