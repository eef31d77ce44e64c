"""Verdicts of graded predictions, what tells an infrastructure failure from the model's, and what an earlier
harness run's log folder still says about a prediction.

Statuses (:data:`STATUSES`): ``resolved``, ``unresolved`` (graded, the tests say no), ``empty_patch``, ``error``
(the prediction or its record could not be graded for a reason of its own: a patch that does not apply, a test
run that timed out, an unknown id, a bad dataset record) and ``infra_error`` (:data:`INFRA_ERROR`: the
environment failed, not the patch: no way to make the instance's image, an image build or Docker failure, a
container that could not be created or run, the harness stopping without a report, or a ``report.json`` that
swebench 5 itself flags ``infra_failure`` from its log signatures of the "environment" tier). Only
``infra_error`` is worth retrying: every other status is final for the patch it graded.

Resuming a harness run (:func:`earlier_verdict`): the harness skips every instance with a ``report.json``, whatever
patch it graded. Its log folder also holds the patch it graded (``patch.diff``, written before it applies it), and
srl-swe adds the digest of the instance record it was graded against (:func:`mark_graded`: the test patch, the
FAIL_TO_PASS/PASS_TO_PASS lists, the environment), so a final verdict is reused only for that very patch on that
very record; a folder that graded another patch or another version of the instance, or that holds an
infrastructure failure or an unfinished grading, is removed so that the harness grades the prediction afresh.
"""

from __future__ import annotations

import hashlib
import json
import locale
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from srl_swe.runtime.base import SandboxError
from srl_swe.swebench.specs import NoEnvironmentError

INFRA_ERROR = "infra_error"
STATUSES = ("resolved", "unresolved", "empty_patch", "error", INFRA_ERROR)
APPLY_FAIL = ">>>>> Patch Apply Failed"
APPLY_FAIL_WHY = "patch does not apply (git apply, --3way, --reject and patch --fuzz=5 all failed)"
TIMED_OUT = re.compile(r"Test timed out after (\d+) seconds")
REPORT, INSTANCE_LOG, GRADED_PATCH = "report.json", "run_instance.log", "patch.diff"  # the harness's file names
GRADED_RECORD = "srl_swe_record.sha256"  # srl-swe's: the digest of the harness record a log folder graded


@dataclass(frozen=True)
class InstanceResult:
    """One prediction's verdict. ``report`` is the harness's per-instance report (None when not graded)."""

    instance_id: str
    status: str
    resolved: bool = False
    error: str | None = None
    report: dict[str, Any] | None = None

    @property
    def infra(self) -> bool:
        """An infrastructure failure: no verdict on the patch, worth retrying."""
        return self.status == INFRA_ERROR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error(iid: str, why: str) -> InstanceResult:
    return InstanceResult(iid, "error", error=why)


def infra_error(iid: str, why: str) -> InstanceResult:
    return InstanceResult(iid, INFRA_ERROR, error=f"infrastructure failure: {why}")


def is_infra(exc: BaseException) -> bool:
    """Whether an exception raised while making or running an instance's environment is the environment's fault:
    a sandbox or image build failure, no build spec and no image, a Docker API or OS error."""
    import docker.errors

    return isinstance(exc, (SandboxError, NoEnvironmentError, OSError, docker.errors.DockerException))


def from_exception(iid: str, exc: Exception) -> InstanceResult:
    """``infra_error`` for :func:`is_infra` exceptions, else ``error`` (a record that cannot be graded)."""
    return infra_error(iid, str(exc)) if is_infra(exc) else error(iid, str(exc))


def verdict(iid: str, report: dict[str, Any]) -> InstanceResult:
    """The verdict of a harness report (``report.json``'s entry, or ``get_eval_report``'s)."""
    if report.get("infra_failure"):  # swebench 5: no parseable test output and an environment-tier log signature
        return InstanceResult(iid, INFRA_ERROR, error=f"infrastructure failure: {report.get('infra_failure_reason')}",
                              report=report)
    resolved = bool(report.get("resolved"))
    return InstanceResult(iid, "resolved" if resolved else "unresolved", resolved=resolved, report=report)


def tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def why_no_report(iid: str, log_dir: Path, harness_log: Path | None = None,
                  exit_code: int | None = None) -> InstanceResult:
    """The verdict of an instance the harness left without a report.json, from its run_instance.log (else the
    harness's own log): a patch that does not apply and a test run that timed out are the patch's (``error``);
    anything else (the container could not be created or run, the harness crashed or never reached it) is
    ``infra_error``."""
    log = log_dir / INSTANCE_LOG
    if log.is_file():
        text = log.read_text(errors="replace")
        if APPLY_FAIL in text:
            detail = text.rsplit(APPLY_FAIL, 1)[1].split("\n\n", 1)[0].strip(": \n")
            return error(iid, f"{APPLY_FAIL_WHY}: {tail(detail, 6)}")
        timed_out = TIMED_OUT.findall(text)
        if timed_out:
            return error(iid, f"Test timed out after {timed_out[-1]} seconds")
        return infra_error(iid, f"the harness stopped this instance without a report; see {log}:\n{tail(text)}")
    text = harness_log.read_text(errors="replace") if harness_log is not None and harness_log.is_file() else ""
    return infra_error(iid, f"the harness (exit {exit_code}) did not run this instance; see {harness_log}:\n"
                            f"{tail(text)}")


def graded_patch_is(log_dir: Path, patch: str) -> bool:
    """Whether the harness's log folder graded exactly ``patch`` (its ``patch.diff``, written by the harness in the
    locale's encoding before it applies the patch)."""
    try:
        return (log_dir / GRADED_PATCH).read_bytes() == patch.encode(locale.getpreferredencoding(False))
    except (OSError, UnicodeEncodeError):
        return False


def record_digest(record: dict[str, Any]) -> str:
    """The sha256 of a harness dataset record (keys sorted): what a verdict depends on besides the patch."""
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def mark_graded(log_dir: Path, digest: str) -> None:
    """Record, in a log folder the harness has just written, the digest of the record it graded against."""
    if log_dir.is_dir():
        (log_dir / GRADED_RECORD).write_text(digest + "\n")


def graded_record_is(log_dir: Path, digest: str) -> bool:
    try:
        return (log_dir / GRADED_RECORD).read_text().strip() == digest
    except OSError:  # none: graded before records were marked, or cut off before the mark; grade again
        return False


def earlier_verdict(iid: str, patch: str, log_dir: Path, timeout: int, digest: str) -> InstanceResult | None:
    """The final verdict an earlier harness run left in ``log_dir`` for exactly ``patch`` graded against the record
    of digest ``digest`` (:func:`record_digest`): its report, a patch that did not apply, or a test run that timed
    out under the same ``timeout``. Otherwise None, after removing ``log_dir`` (it graded another patch or another
    version of the instance, failed for infrastructure reasons, or was cut off), so that the harness, which skips
    any instance with a report, grades the prediction afresh."""
    if not log_dir.exists():
        return None
    found = None
    if graded_patch_is(log_dir, patch) and graded_record_is(log_dir, digest):
        report = log_dir / REPORT
        if report.is_file():
            try:
                found = verdict(iid, json.loads(report.read_text())[iid])
            except (OSError, ValueError, KeyError, TypeError, AttributeError):  # torn or foreign: grade again
                found = None
        elif (log_dir / INSTANCE_LOG).is_file():
            found = why_no_report(iid, log_dir)
            timed_out = TIMED_OUT.search(found.error or "")
            if timed_out and int(timed_out.group(1)) != timeout:  # another limit: its verdict may differ
                found = None
    if found is not None and not found.infra:
        return found
    clear(log_dir)
    return None


def clear(log_dir: Path) -> None:
    """Remove a harness log folder; its report first, so that a kill part-way leaves a folder the harness grades."""
    (log_dir / REPORT).unlink(missing_ok=True)
    shutil.rmtree(log_dir, ignore_errors=True)
