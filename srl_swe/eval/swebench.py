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
a crash is repaired before the next append, see :mod:`srl_swe.eval.predictions`). A rerun skips the instances
whose last line is final and predicts again those whose prediction failed for infrastructure reasons
(:func:`infra_failure`; the new line supersedes the old); grading reuses every final verdict of an unchanged
prediction and grades changed predictions and infrastructure failures again (the harness's log folders under the
same run id: :mod:`srl_swe.swebench.verdicts`), so a rerun of a finished run yields the same report. Everything
lands in ``--out``: ``predictions.jsonl``, ``trajs/ID.json`` (agent messages), ``logs/`` (the harness's),
``results.json`` (resolved rate and per-instance status, :mod:`srl_swe.eval.report`). ``--shard I/N``
runs a deterministic part of the run and ``srl-swe eval merge`` joins the parts (:mod:`srl_swe.eval.shards`);
``--modal`` grades with the harness's Modal backend (:mod:`srl_swe.swebench.modal_backend`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError
from srl_swe.eval.predictions import PredictionLog
from srl_swe.eval.predictors import BatchAgentPredictor, Predictor, make_predictor
from srl_swe.eval.report import agent_stats as agent_stats  # re-exported: the report's functions lived here
from srl_swe.eval.report import summarize
from srl_swe.eval.report import table as table
from srl_swe.eval.shards import Shard, select, settings
from srl_swe.swebench.grading import default_grader
from srl_swe.swebench.instance import SWEInstance
from srl_swe.swebench.prediction import KEYS, Prediction, make_prediction, read_prediction
from srl_swe.swebench.verdicts import INFRA_ERROR, from_exception, infra_error, is_infra

MODES = ("agent", "oracle-file")
PREDICTIONS = "predictions.jsonl"


@dataclass(frozen=True)
class SWEBenchOptions:
    """One ``srl-swe eval swebench`` run (the CLI's flags, typed; defaults are the CLI's).

    Exactly one of ``model`` (a model spec for ``backend``, ``"gold"`` or ``"replay:PATH"``: generate, then
    grade) and ``predictions`` (a predictions JSONL to grade) is given. ``grader`` defaults to
    :func:`~srl_swe.swebench.grading.default_grader` of ``runtime``; ``out`` to ``runs/eval/swebench/MODEL``;
    ``run_id`` (the harness's) to the name of ``out``; ``limit`` keeps the first instances. ``max_steps``,
    ``max_seconds``, ``syntax``, ``window`` (``None`` or -1: the whole history), ``max_observation_chars`` and
    ``require_think`` / ``think_prefill`` (every reply starts with ``<think>\n``) are the agent mode's limits
    and prompt/format settings (those of the training config, for a trained model); ``timeout`` is the harness's
    test-run timeout per instance. ``shard``: only that part of the run (:mod:`srl_swe.eval.shards`);
    ``modal``: the harness grades on Modal instead of Docker (:mod:`srl_swe.swebench.modal_backend`)."""

    dataset: str | Path
    model: str | None = None
    predictions: Path | None = None
    split: str = "test"
    instances: Sequence[str] | None = None
    limit: int | None = None
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
    window: int | None = 2
    max_observation_chars: int = 4000
    require_think: bool = True
    think_prefill: bool = False
    timeout: int = 1800
    harness_timeout: float | None = None  # the whole harness run; None: grading.harness_deadline
    quiet: bool = False
    shard: Shard | None = None
    modal: bool = False


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text.strip("/")) or "model"


def run_id_for(out: Path) -> str:
    """The harness run id of a run into ``out`` when none is given: the folder's name."""
    return _slug(Path(out).resolve().name)


#: The field of a ``predictions.jsonl`` line whose predictor raised: the prediction failed for infrastructure
#: reasons (a sandbox or image that could not be made, a generator that crashed), not for the model's answer.
INFRA_FIELD = "infra_error"


def infra_failure(pred: Prediction) -> str | None:
    """Why ``pred``'s prediction step failed for infrastructure reasons (it is retried on the next run and
    reported as ``infra_error``), or None for a final prediction (whatever the model answered, empty or not).
    Infrastructure: the predictor raised (:data:`INFRA_FIELD`), or the agent's sandbox failed during the episode
    (``exit_status`` ``runtime_error``)."""
    if pred.extra.get(INFRA_FIELD):
        return f"the prediction failed: {pred.error or 'no reason recorded'}"
    if pred.exit_status == "runtime_error":
        return f"the sandbox failed during the agent episode: {pred.error or 'no reason recorded'}"
    return None


def predict_all(instances: list[SWEInstance], predictor: Predictor | BatchAgentPredictor, out: Path,
                model_name: str, workers: int = 1, progress: bool = True) -> dict[str, Prediction]:
    """Predictions for every instance not already final in ``out/predictions.jsonl`` (absent, or its last line an
    :func:`infra_failure`), each appended as soon as it is made; one failing instance is recorded with an empty
    patch and its error, never the end of the run. A :class:`BatchAgentPredictor` runs its episodes in lockstep;
    a plain predictor runs in ``workers`` threads."""
    from tqdm.auto import tqdm

    log = PredictionLog(out / PREDICTIONS)
    done = {iid: read_prediction(rec) for iid, rec in log.read().items()}
    todo = [i for i in instances if i.instance_id not in done or infra_failure(done[i.instance_id])]
    bar = tqdm(total=len(todo), desc="predict", disable=not progress)
    lock, start, recorded = threading.Lock(), time.perf_counter(), set()

    def record(inst: SWEInstance, fields: Mapping[str, Any] | BaseException, began: float) -> Prediction:
        if isinstance(fields, BaseException):  # one instance's failure is data for the report
            fields = {"model_patch": "", "error": f"{type(fields).__name__}: {fields}", INFRA_FIELD: True}
        extra = {k: v for k, v in fields.items() if k not in KEYS and k != "seconds"}
        seconds = fields.get("seconds", round(time.perf_counter() - began, 3))
        pred = make_prediction(inst.instance_id, fields.get("model_patch"), model_name, **{**extra, "seconds": seconds})
        with lock:  # episodes of a batch end from several threads
            log.append(pred.to_dict())
            done[pred.instance_id] = pred
            recorded.add(pred.instance_id)
            bar.update(1)
        return pred

    if isinstance(predictor, BatchAgentPredictor):
        try:
            predictor.predict_batch(todo, out, lambda inst, fields: record(inst, fields, start))
        except Exception as exc:  # the generator failed: every episode still running ends with its error
            for inst in todo:
                if inst.instance_id not in recorded:
                    record(inst, exc, start)
        bar.close()
        return done

    def one(inst: SWEInstance) -> Prediction:
        began = time.perf_counter()
        try:
            fields: Mapping[str, Any] | BaseException = dict(predictor(inst, out))
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            fields = exc
        return record(inst, fields, began)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for fut in as_completed([pool.submit(one, inst) for inst in todo]):
            fut.result()
    bar.close()
    return done


# -- grading ----------------------------------------------------------------------------------------
def grade(predictions: dict[str, Prediction], instances: list[SWEInstance], out: Path, *, grader: str,
          runtime: str, run_id: str, workers: int = 1, timeout: int = 1800, modal: bool = False,
          harness_timeout: float | None = None) -> dict[str, Any]:
    """Verdicts for every prediction: ``harness`` runs swebench's ``run_evaluation`` on Docker (on Modal with
    ``modal``), ``runtime`` grades in a fresh sandbox of ``runtime`` with the harness's log parser and grading code."""
    from srl_swe.swebench import grading

    preds = list(predictions.values())
    if grader == "harness":
        return grading.grade_with_harness(preds, instances, run_id=run_id, workdir=out, max_workers=workers,
                                          timeout=timeout, modal=modal, overall_timeout=harness_timeout)
    if grader != "runtime":
        raise SRLError(f"--grader {grader!r}: choose harness or runtime")
    # Runtime grading is resumed from its own log: a final verdict is kept while the patch it graded is unchanged.
    cache_path = out / f"runtime_grades.{run_id}.jsonl"
    log = PredictionLog(cache_path)
    cache = log.read()
    by_id = {i.instance_id: i for i in instances}
    results: dict[str, Any] = {}
    for pred in preds:
        iid = pred.instance_id
        hit = cache.get(iid)
        if hit is not None and hit.get("model_patch") == pred.model_patch and hit["result"]["status"] != INFRA_ERROR:
            results[iid] = grading.InstanceResult(**hit["result"])
            continue
        if iid not in by_id:
            res = grading.InstanceResult(iid, "error", False, "unknown instance id: not in the dataset", None)
        else:
            try:
                res = grading.grade_in_runtime(by_id[iid], pred.model_patch, runtime=runtime)
            except Exception as exc:
                if not is_infra(exc):
                    raise
                res = from_exception(iid, exc)  # its sandbox could not be made: the others are still graded
        results[iid] = res
        log.append({"instance_id": iid, "model_patch": pred.model_patch, "result": res.to_dict()})
    return results


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
    if opts.modal:
        from srl_swe.swebench.modal_backend import require_modal

        if grader != "harness":
            raise SRLError("--modal grades through the harness: with --runtime local, add --grader harness")
        require_modal()  # every reason it cannot run here, before any work
    from srl_swe.runtime.local import cleanup_stale_copies

    cleanup_stale_copies()  # repository copies of local runtimes that were SIGKILLed
    if opts.runtime == "docker" or (grader == "harness" and not opts.modal):
        from srl_swe.runtime.images import cleanup_stale, docker_client

        client = docker_client()  # one clear message (how to start Docker, or --runtime local) before any work
        cleanup_stale(client)  # containers left by runs that were SIGKILLed
    name = opts.model if opts.model is not None else Path(str(opts.predictions)).stem
    out = opts.out or Path("runs/eval/swebench") / _slug(name)
    out.mkdir(parents=True, exist_ok=True)
    run_id = opts.run_id or run_id_for(out)
    meta: dict[str, Any] = {"model": name, "dataset": str(opts.dataset), "mode": opts.mode, "runtime": opts.runtime,
                            "grader": grader, "run_id": run_id}
    wanted_ids = list(opts.instances) if opts.instances else None
    instances, load_errors = load_instances(opts.dataset, instance_ids=wanted_ids, strict=False, split=opts.split)
    if opts.limit is not None:
        instances = instances[: max(opts.limit, 0)]
    given = None
    if opts.predictions is not None:
        given = _read_predictions(Path(opts.predictions), load_errors)
        if wanted_ids:
            given = {k: v for k, v in given.items() if k in set(wanted_ids)}
    if opts.shard is not None:  # this shard's part of everything the report could hold
        instances, load_errors, given, meta["shard"] = select(opts.shard, instances, load_errors, given,
                                                              settings(opts, grader))
    if given is not None:
        predictions = given
    else:
        predictions = predict_all(instances, make_predictor(opts), out, model_name=name, workers=opts.workers,
                                  progress=not opts.quiet)
        wanted = {i.instance_id for i in instances}
        predictions = {k: v for k, v in predictions.items() if k in wanted}
    failed = {iid: infra_error(iid, why) for iid, p in predictions.items()
              if (why := infra_failure(p))}  # nothing to grade: reported as such, predicted again next run
    results = grade({k: v for k, v in predictions.items() if k not in failed}, instances, out, grader=grader,
                    runtime=opts.runtime, run_id=run_id, workers=opts.workers, timeout=opts.timeout, modal=opts.modal,
                    harness_timeout=opts.harness_timeout)
    results.update(failed)
    summary = summarize(results, predictions, load_errors, meta)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return out, summary
