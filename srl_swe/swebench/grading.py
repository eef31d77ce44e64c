"""Grade patches: through the real swebench harness (Docker), or in any runtime with the harness's own logic.

:func:`grade_with_harness` runs the swebench harness (``swebench.harness.run_evaluation``'s own code) in a
subprocess, on a dataset file that :func:`~srl_swe.swebench.specs.harness_record` wrote, and reads the
harness's ``report.json`` files. The harness runs with its evaluation containers made by srl-swe
(:mod:`srl_swe.swebench.harness_sandbox`: no capabilities, non-root where the image allows, no network,
resource and disk limits; :data:`GRADING_LIMITS`), because the patch it grades is model-written code and
the harness's own containers have ``CAP_SYS_ADMIN``. Problems with single predictions never stop the run:
they become per-instance results (:mod:`srl_swe.swebench.verdicts`: ``error`` when the prediction or its record
is at fault, ``infra_error`` when the environment is) while the others are graded. That includes what would
make the harness itself abort the whole run (a prediction id that is not in the dataset) or stop an instance
without a report (a patch that does not apply: the reason comes from its ``run_instance.log``).

Resuming: a rerun with the same ``run_id`` and ``workdir`` reuses every final verdict whose log folder graded
the very same patch on the very same instance record (:func:`~srl_swe.swebench.verdicts.earlier_verdict`) without
starting the harness for it, and grades the rest afresh: new instances, changed predictions or instance records
(their stale log folder is removed first, since the harness skips any instance with a report) and infrastructure
failures.

:func:`grade_in_runtime` grades one patch in a fresh sandbox of any runtime (``local`` needs no Docker):
the harness's patch-apply fallbacks, the harness's eval script, and swebench's own ``make_test_spec`` +
``get_eval_report`` on the log, so the verdict follows the harness's rules. :func:`grade_patch` is one
prediction by either grader (:func:`default_grader`: the harness on Docker), as the environments' rewards use.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError
from srl_swe.runtime.sandbox import SandboxLimits
from srl_swe.swebench.prediction import Prediction, PredictionError, make_prediction, read_prediction
from srl_swe.swebench.specs import harness_record
from srl_swe.swebench.verdicts import (
    APPLY_FAIL_WHY,
    InstanceResult,
    earlier_verdict,
    from_exception,
    infra_error,
    mark_graded,
    record_digest,
    tail,
    verdict,
    why_no_report,
)
from srl_swe.swebench.verdicts import STATUSES as STATUSES  # re-exported: the verdicts lived here
from srl_swe.swebench.verdicts import error as _error

#: ``harness``: swebench's run_evaluation on Docker; ``runtime``: a fresh sandbox of the agent's runtime.
GRADERS = ("harness", "runtime")
RUN_LOGS = Path("logs") / "run_evaluation"  # the harness's RUN_EVALUATION_LOG_DIR, relative to its cwd
PATCH_PATH = "/testbed/.git/srl_swe_patch.diff"  # inside .git: invisible to git status/clean, gone with the sandbox
#: The sandbox every graded patch runs in (tests need more room than an agent's commands).
GRADING_LIMITS = SandboxLimits(memory="4g", cpus=2.0, pids=1024, disk="4g")
#: Backend -> what :func:`grade_in_runtime` gives its sandbox on top of the task (docker: the same room to
#: run tests in as the harness's sandboxed containers).
GRADING_RUNTIME_KWARGS: dict[str, dict[str, Any]] = {"docker": {"limits": GRADING_LIMITS}}


def default_grader(runtime: str) -> str:
    """The grader for a runtime when none is chosen: the real harness on Docker, else grading in the runtime."""
    return "harness" if runtime == "docker" else "runtime"


def _stop_stale_harness(pidfile: Path) -> None:
    """Kill the process group of a harness that an earlier, killed run of this run id left running, so two
    harnesses never grade under the same run id at once."""
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if b"srl_swe.swebench.harness_sandbox" in cmdline and os.getpgid(pid) == pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# The harness's --timeout bounds each test run only; container creation, patch application and the report come on
# top. The whole run is bounded too (harness_deadline), so that a harness that hangs (a daemon that stops
# answering, a wedged container) cannot hold an evaluation forever.
HARNESS_SETUP_SECONDS = 600


def harness_deadline(instances: int, max_workers: int, timeout: int) -> float:
    """Seconds a harness run over ``instances`` may take: ``timeout`` plus :data:`HARNESS_SETUP_SECONDS` for each
    round of ``max_workers`` instances, plus one more allowance for the harness's own start."""
    return math.ceil(instances / max(1, max_workers)) * (timeout + HARNESS_SETUP_SECONDS) + HARNESS_SETUP_SECONDS


def _run_harness(dataset: Path, preds: Path, run_id: str, workdir: Path, max_workers: int, timeout: int,
                 expected: list[Path], limits: SandboxLimits, modal: bool = False,
                 deadline: float | None = None) -> tuple[int, Path, bool]:
    """Run the sandboxed harness in a subprocess (its own process group, dying with this process); a
    progress bar counts the report.json files as they appear. Past ``deadline`` seconds the process group is
    killed (returned as True: the instances without a report are infrastructure failures, retried on resume)."""
    from tqdm import tqdm

    log_path, pidfile = workdir / f"{run_id}.harness.log", workdir / f"{run_id}.harness.pid"
    _stop_stale_harness(pidfile)
    cmd = [sys.executable, "-m", "srl_swe.swebench.harness_sandbox", "-d", str(dataset), "-s", "test", "-p",
           str(preds), "-id", run_id, "--max_workers", str(max_workers), "--timeout", str(timeout), "--report_dir", ".",
           *(["--modal"] if modal else [])]
    env = {**os.environ, "SRL_SWE_SANDBOX": limits.to_json(), "SRL_SWE_PARENT_PID": str(os.getpid())}
    with open(log_path, "w") as log, tqdm(total=len(expected), desc=f"harness {run_id}", unit="inst") as bar:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        pidfile.write_text(f"{proc.pid}\n")
        start, stopped = time.monotonic(), False
        try:
            while True:
                try:
                    proc.wait(timeout=0.25)  # returns as soon as the harness exits: no polling delay on the result
                    break
                except subprocess.TimeoutExpired:
                    bar.update(sum(p.is_file() for p in expected) - bar.n)
                if deadline is not None and time.monotonic() - start > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    stopped = True
                    log.write(f"\nsrl-swe: the harness ran past its overall limit of {deadline:.0f} s and was "
                              "stopped\n")
                    break
        except BaseException:  # Ctrl-C (the harness is in its own session and does not get it) or an error
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            pidfile.unlink(missing_ok=True)
        bar.update(sum(p.is_file() for p in expected) - bar.n)
    return proc.returncode, log_path, stopped


def grade_with_harness(predictions: Iterable[Prediction | Mapping[str, Any]], instances: list, *, run_id: str,
                       workdir: Path, max_workers: int = 1, timeout: int = 1800, client=None,
                       limits: SandboxLimits = GRADING_LIMITS, modal: bool = False,
                       overall_timeout: float | None = None) -> dict[str, InstanceResult]:
    """Grade ``predictions`` (:class:`~srl_swe.swebench.prediction.Prediction` or records as SWE-bench
    writes them, read by :func:`~srl_swe.swebench.prediction.read_prediction`) against ``instances`` with
    the real harness in ``workdir`` (its logs go to ``workdir/logs/run_evaluation/RUN_ID/``). Returns one
    result per prediction, keyed by instance id, and writes them to ``workdir/RUN_ID.results.json``.
    Only a missing Docker daemon raises (:class:`~srl_swe.runtime.base.DockerUnavailableError`). ``modal``: the
    harness grades on Modal (:mod:`srl_swe.swebench.modal_backend`; no Docker, no local images, Modal's sandbox).
    ``overall_timeout``: seconds the harness run may take in all (default :func:`harness_deadline`); past it the
    harness is stopped, its containers removed, and the instances it had not graded are ``infra_error``."""
    from srl_swe.runtime.images import cleanup_stale, docker_client
    from srl_swe.swebench.images import ensure_image

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", run_id):
        raise ValueError(f"run_id {run_id!r}: use letters, digits, '_', '.', '-' (it is part of container names)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    by_id = {inst.instance_id: inst for inst in instances}
    results: dict[str, InstanceResult] = {}
    preds: dict[str, Prediction] = {}
    order: dict[str, None] = {}  # result keys in prediction order
    unknown = (f"unknown instance id: not in the dataset ({len(by_id)} instances); left out of the harness run, "
               "which would abort on it")
    for n, record in enumerate(predictions):
        try:
            pred = read_prediction(record)
        except PredictionError as exc:
            iid = exc.instance_id or f"<prediction {n}>"
            results[iid] = _error(iid, unknown if exc.instance_id and iid not in by_id else str(exc))
            preds.pop(iid, None)
        else:
            iid = pred.instance_id
            if iid not in by_id:
                results[iid] = _error(iid, unknown)
            else:
                preds[iid] = pred
                results.pop(iid, None)  # a later prediction for the same id replaces an earlier one, as in the harness
        order[iid] = None

    if modal:
        from srl_swe.swebench.modal_backend import require_modal

        require_modal()
    else:  # one clear error when there is no daemon, rather than one per instance
        client = client or docker_client()
    import docker.errors

    _stop_stale_harness(workdir / f"{run_id}.harness.pid")  # it could still be writing the log folders read here
    records: dict[str, dict] = {}
    digests: dict[str, str] = {}  # record_digest of each record: checked against a log folder, then written to it
    log_dirs = {i: workdir / RUN_LOGS / run_id / p.model_name_or_path.replace("/", "__") / i for i, p in preds.items()}
    for iid, pred in preds.items():
        if not pred.model_patch.strip():
            results[iid] = InstanceResult(iid, "empty_patch")
            continue
        try:
            record = harness_record(by_id[iid])
            digests[iid] = record_digest(record)
            earlier = earlier_verdict(iid, pred.model_patch, log_dirs[iid], timeout, digests[iid])
            if earlier is not None:  # graded before, this very patch: the harness is not started for it
                results[iid] = earlier
                continue
            if not modal:  # on Modal, swebench builds the environment itself
                ensure_image(by_id[iid], client=client)
        except (SRLError, OSError, docker.errors.DockerException) as exc:
            results[iid] = from_exception(iid, exc)
        else:
            records[iid] = record
    if records:
        dataset, preds_file = workdir / f"{run_id}.dataset.jsonl", workdir / f"{run_id}.predictions.jsonl"
        dataset.write_text("".join(json.dumps(records[i]) + "\n" for i in records))
        preds_file.write_text("".join(json.dumps(preds[i].to_dict(extra=False)) + "\n" for i in records))
        deadline = overall_timeout if overall_timeout is not None else harness_deadline(len(records), max_workers,
                                                                                          timeout)
        code, harness_log, stopped = _run_harness(dataset, preds_file, run_id, workdir, max_workers, timeout,
                                                  [log_dirs[i] / "report.json" for i in records], limits, modal,
                                                  deadline)
        if stopped and client is not None:  # its containers outlive it: their owner (the harness) is gone now
            cleanup_stale(client)
        for iid in records:
            mark_graded(log_dirs[iid], digests[iid])
            report = log_dirs[iid] / "report.json"
            if report.is_file():
                results[iid] = verdict(iid, json.loads(report.read_text())[iid])
            else:
                results[iid] = why_no_report(iid, log_dirs[iid], harness_log, code)
                if stopped and results[iid].infra:
                    results[iid] = infra_error(iid, f"the harness ran past its overall limit of {deadline:.0f} s "
                                                    f"({len(records)} instance(s), {max_workers} worker(s), test "
                                                    f"timeout {timeout} s) and was stopped before grading this "
                                                    f"instance; see {harness_log}")
    ordered = {k: results[k] for k in order}
    (workdir / f"{run_id}.results.json").write_text(json.dumps({k: r.to_dict() for k, r in ordered.items()}, indent=1))
    return ordered


def _apply_patch(runtime) -> tuple[bool, str]:
    """Apply PATCH_PATH exactly as the harness does: its fallback chain from a clean tree each time, then
    the check that the patch is already fully applied."""
    from swebench.harness.run_evaluation import GIT_APPLY_CMDS

    out = ""
    for attempt, cmd in enumerate(GIT_APPLY_CMDS):
        if attempt:
            runtime.execute("git checkout -- . ; git clean -fd")
        res = runtime.execute(f"{cmd} {PATCH_PATH}")
        if res.ok:
            return True, res.output
        out = res.output
    if runtime.execute(f"git apply --check --reverse {PATCH_PATH}").ok:
        return True, "verified already applied"
    return False, out


def grade_in_runtime(instance, patch: str | None, runtime: str = "local", *, timeout: float = 1800,
                     **runtime_kwargs) -> InstanceResult:
    """Grade one patch in a fresh sandbox of ``runtime`` (see :func:`srl_swe.swebench.runtimes.task_runtime`),
    with the harness's eval script and swebench's ``get_eval_report``. Per-instance problems become an
    ``error`` (or, without a way to make the environment, ``infra_error``) result; only a runtime that cannot be
    created at all raises."""
    from swebench.harness.grading import get_eval_report
    from swebench.harness.utils import make_test_spec

    from srl_swe.swebench.runtimes import task_runtime

    iid = instance.instance_id
    if not (patch or "").strip():
        return InstanceResult(iid, "empty_patch")
    runtime_kwargs = {**GRADING_RUNTIME_KWARGS.get(runtime, {}), **runtime_kwargs}
    try:
        test_spec = make_test_spec(harness_record(instance))
    except SRLError as exc:
        return from_exception(iid, exc)
    with task_runtime(runtime, instance, **runtime_kwargs) as rt:
        rt.write_file(PATCH_PATH, patch if patch.endswith("\n") else patch + "\n")
        applied, apply_log = _apply_patch(rt)
        if not applied:
            return _error(iid, f"{APPLY_FAIL_WHY}: {tail(apply_log, 6)}")
        res = rt.execute(test_spec.eval_script, timeout=timeout)
    if res.timed_out:
        return _error(iid, f"Test timed out after {timeout:g} seconds")
    with tempfile.TemporaryDirectory(prefix="srl-swe-grade-") as tmp:
        log = Path(tmp) / "test_output.txt"
        log.write_text(res.output)
        pred = make_prediction(iid, patch, "srl-swe").to_dict(extra=False)
        report = get_eval_report(test_spec=test_spec, prediction=pred, test_log_path=str(log),
                                 include_tests_status=True)
    return verdict(iid, report[iid])


def grade_patch(instance, prediction: Prediction, *, runtime: str = "docker", grader: str | None = None,
                workdir: str | Path | None = None, run_prefix: str = "grade") -> InstanceResult:
    """One prediction's verdict, as an environment's reward needs it: by ``grader`` (default
    :func:`default_grader` of ``runtime``). ``runtime``: :func:`grade_in_runtime` in a fresh sandbox of
    ``runtime``. ``harness``: :func:`grade_with_harness` in ``workdir`` (default a new temporary folder
    ``srl-swe-RUN_PREFIX-*``, kept for its logs) under a fresh run id ``RUN_PREFIX-<12 hex>``, since the
    harness skips predictions whose run already has a report."""
    grader = grader or default_grader(runtime)
    if grader == "runtime":
        return grade_in_runtime(instance, prediction.model_patch, runtime=runtime)
    if grader != "harness":
        raise ValueError(f"grader={grader!r}: choose 'harness' (swebench on Docker) or 'runtime'")
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"srl-swe-{run_prefix}-"))
    results = grade_with_harness([prediction], [instance], run_id=f"{run_prefix}-{uuid.uuid4().hex[:12]}",
                                 workdir=workdir)
    return results[instance.instance_id]
