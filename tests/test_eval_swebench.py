"""``srl-swe eval swebench`` end to end on the two real marshmallow tasks: predictions, resumption, grading
by the real harness (Docker) or in a local sandbox, and bad input reported per instance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srl_swe.cli import main
from srl_swe.swebench.datasets import load_instances

ID_1359 = "marshmallow-code__marshmallow-1359"
ID_1867 = "marshmallow-code__marshmallow-1867"


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _preds(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_gold_local_runtime_resolves_both_and_resumes(local_tasks: Path, tmp_path: Path, capsys):
    out = tmp_path / "gold"
    argv = ["eval", "swebench", "--model", "gold", "--dataset", str(local_tasks), "--runtime", "local",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    first = _results(out)
    assert (first["resolved"], first["total"], first["resolved_rate"]) == (2, 2, 1.0)
    assert first["grader"] == "runtime" and first["status_counts"] == {"resolved": 2}
    preds = _preds(out)
    assert sorted(p["instance_id"] for p in preds) == [ID_1359, ID_1867]
    gold = {i.instance_id: i.patch for i in load_instances(local_tasks)}
    assert all(p["model_patch"] == gold[p["instance_id"]] for p in preds)
    assert "resolved 2/2 = 100.0%" in capsys.readouterr().out
    # A rerun predicts nothing new (no line appended) and reuses the verdicts: the same report.
    assert main(argv) == 0
    assert len(_preds(out)) == 2 and _results(out) == first


@pytest.mark.slow
def test_gold_through_the_harness(local_tasks: Path, tmp_path: Path, docker_client):
    out = tmp_path / "harness"
    assert main(["eval", "swebench", "--model", "gold", "--dataset", str(local_tasks), "--runtime", "docker",
                 "--workers", "2", "--out", str(out), "--quiet"]) == 0
    res = _results(out)
    assert res["grader"] == "harness" and res["resolved"] == 2
    for iid in (ID_1359, ID_1867):  # the harness's own report files exist and say resolved
        report = json.loads(next((out / "logs").rglob(f"{iid}/report.json")).read_text())
        assert report[iid]["resolved"] is True


def _bad_inputs(local_tasks: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A dataset with both tasks and one record missing its problem statement, and predictions with the
    gold patch for 1867, a patch that does not apply for 1359 and an id no dataset has."""
    insts = load_instances(local_tasks)
    dataset = tmp_path / "dataset.jsonl"
    broken = {**insts[0].to_record(), "instance_id": "broken__record-1"}
    del broken["problem_statement"]
    dataset.write_text("".join(json.dumps(r) + "\n" for r in [i.to_record() for i in insts] + [broken]))
    bad_patch = ("diff --git a/src/marshmallow/fields.py b/src/marshmallow/fields.py\n--- a/src/marshmallow/fields.py\n"
                 "+++ b/src/marshmallow/fields.py\n@@ -1,3 +1,3 @@\n-no such line\n+x\n")
    preds = tmp_path / "preds.jsonl"
    rows = [{"instance_id": ID_1867, "model_name_or_path": "m", "model_patch": insts[1].patch},
            {"instance_id": ID_1359, "model_name_or_path": "m", "model_patch": bad_patch},
            {"instance_id": "nobody__nothing-1", "model_name_or_path": "m", "model_patch": bad_patch}]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"instance_id": "trunc')  # a torn last line
    return dataset, preds


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["local", "docker"])
def test_bad_input_is_reported_per_instance(local_tasks: Path, tmp_path: Path, runtime: str, request):
    if runtime == "docker":
        request.getfixturevalue("docker_client")
    dataset, preds = _bad_inputs(local_tasks, tmp_path)
    out = tmp_path / f"bad-{runtime}"
    assert main(["eval", "swebench", "--predictions", str(preds), "--dataset", str(dataset),
                 "--runtime", runtime, "--out", str(out), "--quiet"]) == 0
    per = _results(out)["instances"]
    assert per[ID_1867]["status"] == "resolved"
    assert per[ID_1359]["status"] == "error" and not per[ID_1359]["resolved"]
    assert per["nobody__nothing-1"]["status"] == "error" and "not in the dataset" in per["nobody__nothing-1"]["error"]
    assert per["broken__record-1"]["status"] == "error" and "problem_statement" in per["broken__record-1"]["error"]
    torn = per[f"{preds}:4"]  # the torn last line is a record that was meant to be graded
    assert torn["status"] == "error" and f"{preds} line 4" in torn["error"]
    assert _results(out)["resolved"] == 1 and _results(out)["total"] == 5


def test_unreadable_prediction_lines_count_as_errors(local_tasks: Path, tmp_path: Path, capsys):
    """Two records, one of them unreadable: 0 of 2, not 0 of 1 (an empty patch grades without a sandbox)."""
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"instance_id": ID_1867, "model_name_or_path": "m", "model_patch": ""}) + "\n"
                     + '{"instance_id": "' + ID_1359 + '", "model_patch": "diff --git a/x b/x\n')
    out = tmp_path / "o"
    assert main(["eval", "swebench", "--predictions", str(preds), "--dataset", str(local_tasks), "--runtime", "local",
                 "--out", str(out), "--quiet"]) == 0
    res = _results(out)
    assert (res["total"], res["resolved"], res["status_counts"]) == (2, 0, {"empty_patch": 1, "error": 1})
    bad = res["instances"][f"{preds}:2"]
    assert bad["status"] == "error" and not bad["resolved"] and f"{preds} line 2: unreadable" in bad["error"]
    assert "resolved 0/2 = 0.0%" in capsys.readouterr().out


def test_eval_start_sweeps_copies_of_killed_local_runtimes(tmp_path: Path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    (tmp_path / "src").mkdir()
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    code = ("import sys; from srl_swe.runtime.local import LocalRuntime; rt = LocalRuntime(sys.argv[1]); "
            "print(rt.root, flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "src")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_dir)})
    copy = Path(proc.stdout.readline().strip()).parent
    proc.kill()
    proc.wait()
    assert copy.is_dir() and copy.parent == tmp_dir
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_dir))
    (tmp_path / "none.jsonl").write_text("")
    assert main(["eval", "swebench", "--predictions", str(tmp_path / "none.jsonl"), "--dataset",
                 str(tmp_path / "none.jsonl"), "--runtime", "local", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert not copy.exists()


def test_missing_docker_daemon_gives_one_clear_message(local_tasks: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    code = main(["eval", "swebench", "--model", "gold", "--dataset", str(local_tasks), "--runtime", "docker",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "--runtime local" in err and "start_dockerd" in err
    assert not (tmp_path / "o" / "predictions.jsonl").exists()  # nothing ran


def test_exactly_one_of_model_or_predictions(local_tasks: Path, capsys):
    assert main(["eval", "swebench", "--dataset", str(local_tasks)]) == 2
    assert "exactly one of --model" in capsys.readouterr().err


@pytest.mark.slow
def test_oracle_file_mode_with_a_real_tiny_model(local_tasks: Path, tmp_path: Path):
    from srl_swe.models.tiny import make_tiny_qwen2

    model = make_tiny_qwen2(tmp_path / "tiny")
    out = tmp_path / "oracle"
    assert main(["eval", "swebench", "--model", str(model), "--mode", "oracle-file", "--dataset", str(local_tasks),
                 "--instances", ID_1867, "--runtime", "local", "--max-new-tokens", "16", "--out", str(out),
                 "--quiet"]) == 0
    (pred,) = _preds(out)
    # Random weights write no edits: an empty patch with the reason recorded, graded as empty, not a crash.
    assert pred["mode"] == "oracle-file" and pred["model_patch"] == "" and pred["error"]
    assert pred["files"] == ["src/marshmallow/fields.py", "src/marshmallow/utils.py"]
    res = _results(out)
    assert res["instances"][ID_1867]["status"] == "empty_patch" and res["resolved"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["local", "docker"])
def test_agent_mode_replays_the_project_expert(local_tasks: Path, tmp_path: Path, runtime: str, request):
    """The agent loop through the CLI: the project-written 1867 trajectory resolves its task; 1359 has no
    trajectory, so its prediction records why and grades as an empty patch, without stopping the run."""
    if runtime == "docker":
        request.getfixturevalue("docker_client")
    out = tmp_path / runtime
    replay = Path(__file__).resolve().parents[1] / "trajectories" / "swe-exec"
    assert main(["eval", "swebench", "--model", f"replay:{replay}", "--dataset", str(local_tasks),
                 "--runtime", runtime, "--workers", "2", "--out", str(out), "--quiet"]) == 0
    per = _results(out)["instances"]
    assert per[ID_1867]["status"] == "resolved" and per[ID_1867]["exit_status"] == "submitted"
    assert per[ID_1359]["status"] == "empty_patch" and "no trajectory" in per[ID_1359]["prediction_error"]
    assert json.loads((out / "trajs" / f"{ID_1867}.json").read_text())[-1]["role"] in ("user", "tool")
