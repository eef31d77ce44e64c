"""What a rerun of ``srl-swe eval swebench`` redoes (swebench 5 semantics), on the two real marshmallow tasks:
infrastructure failures are labelled ``infra_error`` apart from the model's failures and retried, finished
instances are not redone, and a changed prediction under the same harness run id is graded again (the real
harness on Docker), not answered with the stale report."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from srl_swe.cli import main
from srl_swe.eval.predictions import PredictionLog
from srl_swe.runtime.sandbox import SandboxLimits
from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.grading import GRADING_LIMITS, grade_with_harness

pytestmark = pytest.mark.shared_data
ID_1359, ID_1867 = "marshmallow-code__marshmallow-1359", "marshmallow-code__marshmallow-1867"
# Applies (a new file) and fixes nothing: the tests say unresolved.
NEW_FILE = ("diff --git a/NOTES.txt b/NOTES.txt\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES.txt\n"
            "@@ -0,0 +1 @@\n+this fixes nothing\n")
# Removes a line that is in no file: every apply fallback fails (the model's failure, not the environment's).
BAD_PATCH = ("diff --git a/src/marshmallow/fields.py b/src/marshmallow/fields.py\n--- a/src/marshmallow/fields.py\n"
             "+++ b/src/marshmallow/fields.py\n@@ -1,3 +1,3 @@\n-this line is not in the file\n+nor is this one\n"
             " context that is not there either\n")


def _eval(out: Path, dataset: Path, *argv: str) -> dict:
    assert main(["eval", "swebench", "--dataset", str(dataset), "--out", str(out), "--quiet", *argv]) == 0
    return json.loads((out / "results.json").read_text())


def _grade_file(out: Path, local_tasks: Path, patches: dict[str, str], *argv: str) -> dict:
    preds = out.parent / f"{out.name}-preds.jsonl"
    preds.write_text("".join(json.dumps({"instance_id": i, "model_name_or_path": "m", "model_patch": p}) + "\n"
                             for i, p in patches.items()))
    return _eval(out, local_tasks, "--predictions", str(preds), "--runtime", "docker", "--workers", "2",
                 "--run-id", "r", *argv)


@pytest.mark.slow
def test_changed_prediction_is_graded_again_under_the_same_run_id(local_tasks: Path, docker_client, tmp_path: Path):
    gold = {i.instance_id: i.patch for i in load_instances(local_tasks)}
    out, logs = tmp_path / "run", tmp_path / "run" / "logs" / "run_evaluation" / "r" / "m"
    first = _grade_file(out, local_tasks, {ID_1867: gold[ID_1867], ID_1359: BAD_PATCH})["instances"]
    assert (first[ID_1867]["status"], first[ID_1359]["status"]) == ("resolved", "error")
    assert first[ID_1359]["error"].startswith("patch does not apply")  # the model's failure: final
    bad_log = logs / ID_1359 / "run_instance.log"
    bad_mtime = bad_log.stat().st_mtime_ns
    # The same run id, 1867's patch changed: graded again, not the stale "resolved" of its old report.json.
    res = _grade_file(out, local_tasks, {ID_1867: NEW_FILE, ID_1359: BAD_PATCH})
    per = res["instances"]
    assert (per[ID_1867]["status"], per[ID_1867]["resolved"], res["resolved"]) == ("unresolved", False, 0)
    report = json.loads((logs / ID_1867 / "report.json").read_text())[ID_1867]
    assert report["resolved"] is False and report["tests_status"]["FAIL_TO_PASS"]["success"] == []
    assert (logs / ID_1867 / "patch.diff").read_text() == NEW_FILE  # the log folder is the new grading's
    # 1359 is finished (its patch does not apply) and unchanged: the same verdict, its grading not redone.
    assert per[ID_1359] == first[ID_1359] and bad_log.stat().st_mtime_ns == bad_mtime
    sent = [json.loads(line)["instance_id"] for line in (out / "r.predictions.jsonl").read_text().splitlines()]
    assert sent == [ID_1867]  # all the harness was given this time

    # The same patches, 1867's record changed (one more FAIL_TO_PASS test): its verdict depended on the old list,
    # so it is graded again against the new one; 1359's record is unchanged and its verdict reused once more.
    changed = tmp_path / "tasks"
    shutil.copytree(local_tasks, changed)
    record = json.loads((changed / ID_1867 / "instance.json").read_text())
    f2p = [*json.loads(record["FAIL_TO_PASS"]), json.loads(record["PASS_TO_PASS"])[0]]
    record["FAIL_TO_PASS"] = json.dumps(f2p)
    (changed / ID_1867 / "instance.json").write_text(json.dumps(record))
    again = _grade_file(out, changed, {ID_1867: NEW_FILE, ID_1359: BAD_PATCH})["instances"]
    report = json.loads((logs / ID_1867 / "report.json").read_text())[ID_1867]["tests_status"]["FAIL_TO_PASS"]
    assert sorted(report["success"] + report["failure"]) == sorted(f2p)
    assert again[ID_1867]["status"] == "unresolved" and again[ID_1359] == first[ID_1359]
    assert bad_log.stat().st_mtime_ns == bad_mtime
    sent = [json.loads(line)["instance_id"] for line in (out / "r.predictions.jsonl").read_text().splitlines()]
    assert sent == [ID_1867]


@pytest.mark.slow
def test_infrastructure_failure_in_the_harness_is_labelled_and_retried(local_tasks: Path, docker_client,
                                                                       tmp_path: Path):
    """A real Docker error: the daemon refuses to create a container with 1 MiB of memory, so the harness
    stops the instance without a report. The rerun grades it again; the finished instance is not redone."""
    tasks = load_instances(local_tasks)
    gold = {i.instance_id: i.patch for i in tasks}
    pred = lambda iid, patch: {"instance_id": iid, "model_name_or_path": "m", "model_patch": patch}  # noqa: E731
    preds = [pred(ID_1359, BAD_PATCH), pred(ID_1867, gold[ID_1867])]
    first = grade_with_harness(preds[:1], tasks, run_id="r", workdir=tmp_path)
    assert first[ID_1359].status == "error"
    bad_log = tmp_path / "logs/run_evaluation/r/m" / ID_1359 / "run_instance.log"
    bad_mtime = bad_log.stat().st_mtime_ns
    broken = grade_with_harness(preds, tasks, run_id="r", workdir=tmp_path, limits=SandboxLimits(memory="1m"))
    infra = broken[ID_1867]
    assert (infra.status, infra.resolved, infra.infra) == ("infra_error", False, True)
    assert "could not create the sandbox container" in infra.error and "Minimum memory limit" in infra.error
    assert broken[ID_1359] == first[ID_1359]  # finished: reused, not graded again
    again = grade_with_harness(preds, tasks, run_id="r", workdir=tmp_path, limits=GRADING_LIMITS)
    assert (again[ID_1867].status, again[ID_1867].resolved) == ("resolved", True)
    assert again[ID_1359] == first[ID_1359] and bad_log.stat().st_mtime_ns == bad_mtime


# Its tests never end: pytest imports the new conftest.py, which sleeps.
HANG = ("diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n"
        "@@ -0,0 +1,2 @@\n+import time\n+time.sleep(600)\n")


@pytest.mark.slow
def test_a_harness_past_its_overall_limit_is_stopped_and_retried(local_tasks: Path, docker_client, tmp_path: Path):
    """The harness's own timeout is per test run; the whole run has a limit too (--harness-timeout). Past it the
    harness is killed with its containers, the instance is an infrastructure failure, and a rerun grades it."""
    out, name = tmp_path / "run", f"sweb.eval.{ID_1867.lower()}.r"
    seen, done = [], threading.Event()

    def watch() -> None:  # the test container must have been running when the limit struck
        while not done.is_set() and not seen:
            seen.extend(c.name for c in docker_client.containers.list(filters={"name": name}))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.monotonic()
    try:
        res = _grade_file(out, local_tasks, {ID_1867: HANG}, "--harness-timeout", "12", "--workers", "1")
    finally:
        done.set()
        watcher.join()
    assert time.monotonic() - start < 60 and seen == [name]  # it appears within about 3 s
    stopped = res["instances"][ID_1867]
    assert (stopped["status"], res["infra_errors"]) == ("infra_error", 1)
    assert "ran past its overall limit of 12 s (1 instance(s), 1 worker(s), test timeout 1800 s)" in stopped["error"]
    assert "was stopped" in (out / "r.harness.log").read_text()
    assert docker_client.containers.list(all=True, filters={"name": name}) == []  # removed, not left running
    assert not (out / "r.harness.pid").exists()
    # Not final: the rerun grades the same prediction again (here under a 5 s test timeout, the patch's fault).
    again = _grade_file(out, local_tasks, {ID_1867: HANG}, "--timeout", "5", "--workers", "1")
    assert (again["instances"][ID_1867]["status"], again["instances"][ID_1867]["error"], again["infra_errors"]) == (
        "error", "Test timed out after 5 seconds", 0)


@pytest.mark.slow
def test_prediction_infrastructure_failure_is_retried_and_superseded(local_tasks: Path, tmp_path: Path, capsys):
    """Agent mode (the project's 1867 expert replayed, local runtime). A record naming a version without a build
    spec: its sandbox cannot be made, so the prediction fails for infrastructure reasons. Each rerun predicts it
    again and appends a line that supersedes the old one; 1359 (no trajectory: an empty patch, the model's) is
    predicted once. Once the environment exists (the real record), 1867 resolves."""
    records = [i.to_record() for i in load_instances(local_tasks)]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(json.dumps({**r, "version": "0.0.0"} if r["instance_id"] == ID_1867 else r) + "\n"
                              for r in records))
    out, replay = tmp_path / "agent", Path(__file__).resolve().parents[1] / "trajectories" / "swe-exec"
    argv = ("--model", f"replay:{replay}", "--runtime", "local")
    for attempt in (1, 2):
        res = _eval(out, broken, *argv)
        per = res["instances"]
        assert (per[ID_1867]["status"], per[ID_1359]["status"]) == ("infra_error", "empty_patch")
        assert "no build spec for marshmallow-code/marshmallow 0.0.0" in per[ID_1867]["error"]
        assert (res["total"], res["resolved"], res["infra_errors"]) == (2, 0, 1)
        assert res["status_counts"] == {"empty_patch": 1, "infra_error": 1}
        lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
        assert [x["instance_id"] for x in lines].count(ID_1867) == attempt
        assert [x["instance_id"] for x in lines].count(ID_1359) == 1
        assert lines[-1]["infra_error"] is True and "NoEnvironmentError" in lines[-1]["error"]
    assert "1 infrastructure failure(s)" in capsys.readouterr().out
    res = _eval(out, local_tasks, *argv)
    assert (res["resolved"], res["infra_errors"], res["status_counts"]) == (1, 0, {"empty_patch": 1, "resolved": 1})
    assert res["instances"][ID_1867]["exit_status"] == "submitted"
    ids = [json.loads(x)["instance_id"] for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert ids.count(ID_1867) == 3 and ids.count(ID_1359) == 1
    latest = PredictionLog(out / "predictions.jsonl").read()[ID_1867]  # the last line wins
    assert "infra_error" not in latest and latest["model_patch"].startswith("diff --git")
    again = _eval(out, local_tasks, *argv)  # finished: nothing predicted or graded again
    assert again == res and len((out / "predictions.jsonl").read_text().splitlines()) == 4
