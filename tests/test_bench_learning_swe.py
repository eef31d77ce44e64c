"""benchmarks/bench_learning_swe.py end to end with a real tiny model: each method trains through `srl-swe
train` under the budget (SRL->RLVR as an SRL stage and an RLVR stage from its final model, RLVR's rollouts in
Docker sandboxes on the generated tasks' train split), every model is measured on held-out step examples and
graded as an agent on held-out tasks in Docker, and a rerun skips the methods already recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def test_wilson_interval_values():
    from _common import wilson

    assert wilson(0, 34) == pytest.approx((0.0, 0.1015), abs=1e-4)  # 0/34 still leaves up to ~10 %
    lo, hi = wilson(17, 34)
    assert lo == pytest.approx(0.3407, abs=1e-4) and hi == pytest.approx(0.6593, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_claims_need_separated_intervals():
    from bench_learning_swe import claims

    def entry(k: int, n: int) -> dict:
        from _common import wilson

        return {"agent": {"resolved_rate": k / n, "wilson95": wilson(k, n)}}

    verdicts = {c["claim"]: c["verdict"] for c in claims(
        {"untrained": entry(0, 34), "sft": entry(2, 34), "srl": entry(20, 34), "srl_rlvr": entry(19, 34)})}
    assert verdicts == {"srl > sft": "supported", "srl_rlvr >= srl": "not distinguishable",
                        "sft > untrained": "not distinguishable", "srl > untrained": "supported",
                        "srl_rlvr > untrained": "supported"}
    both_zero = claims({"srl": entry(0, 34), "srl_rlvr": entry(0, 34)})
    assert [c["verdict"] for c in both_zero] == ["not distinguishable"]  # 0 >= 0 says nothing
    ahead = claims({"srl": entry(5, 34), "srl_rlvr": entry(6, 34)})
    assert [c["verdict"] for c in ahead] == ["supported"]


@pytest.mark.slow
def test_benchmark_runs_every_stage_and_resumes(tmp_path: Path, docker_client):
    from srl_swe.models.tiny import make_tiny_qwen2

    tiny = make_tiny_qwen2(tmp_path / "tiny")
    out = tmp_path / "learning_swe.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_learning_swe.py"), "--budget-minutes", "10",
           "--methods", "untrained,sft,srl_rlvr", "--model", str(tiny), "--max-train-steps", "1", "--tasks", "2",
           "--max-steps", "1", "--tokens", "8", "--step-examples", "2", "--samples", "1", "--batch-size", "2",
           "--backend", "transformers", "--probe-syntax",
           "--run-dir", str(tmp_path / "runs"), "--out", str(out), "--set=sft.learning_rate=1e-4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=REPO)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    res = json.loads(out.read_text())
    assert list(res["methods"]) == ["untrained", "sft", "srl_rlvr"]
    for entry in res["methods"].values():
        agent = entry["agent"]
        assert agent["tasks"] == 2 and 0 <= agent["resolved"] <= 2
        lo, hi = agent["wilson95"]
        assert 0 <= lo <= agent["resolved_rate"] <= hi <= 1
        assert agent["steps"] >= 2  # at least one turn per episode, run in a container and graded
        assert entry["steps"]["examples"] == 2 and -1 <= entry["steps"]["greedy"]["mean_reward"] <= 1
    stages = res["methods"]["srl_rlvr"]["train"]["stages"]
    assert [s["config"] for s in stages] == ["configs/cpu-srl-swe-smollm2.yaml", "configs/cpu-rlvr-swe-smollm2.yaml"]
    assert [s["optimizer_steps"] for s in stages] == [1, 1]
    # each stage starts once the daemon's btrfs has deleted what earlier stages removed (None off btrfs)
    on_btrfs = docker_client.info()["Driver"] == "btrfs" and shutil.which("btrfs") is not None
    assert all((s["docker_settle_s"] is not None) == on_btrfs for s in stages)
    assert all(0 <= s["docker_settle_s"] < 900 for s in stages if on_btrfs)
    # The RLVR stage starts from the SRL stage's final model, with half of the budget each.
    assert f"init_checkpoint={tmp_path / 'runs' / 'srl_rlvr' / 'train0' / 'final'}" in stages[1]["overrides"]
    assert all("max_train_seconds=300" in s["overrides"] for s in stages)
    # --tokens reaches SRL's rollouts and SFT's targets; RLVR keeps its multi-turn budget
    assert "max_completion_length=8" in stages[0]["overrides"]
    assert not any(o.startswith("max_completion_length=") for o in stages[1]["overrides"])
    tasks = REPO / "trajectories" / "swe-tasks" / "toolz-1.2.0"  # --tasks-dir's default: every stage trains on it
    assert f"train_data={tasks / 'experts' / 'train' / 'trajectories.jsonl'}" in stages[0]["overrides"]
    assert f"train_data={tasks}" in stages[1]["overrides"]
    sft = res["methods"]["sft"]["train"]["stages"][0]["overrides"]
    assert "max_completion_length=8" in sft and "learning_rate=1e-4" in sft
    rollouts = (tmp_path / "runs" / "srl_rlvr" / "train1" / "rollouts.jsonl").read_text().splitlines()
    assert rollouts and all(json.loads(r)["instance_id"].startswith("pypi__toolz-1.2.0.") for r in rollouts)
    heldout = set(json.loads((REPO / "trajectories/swe-tasks/toolz-1.2.0/splits.json").read_text())["ids"]["heldout"])
    assert not {json.loads(r)["instance_id"] for r in rollouts} & heldout  # RLVR never trains on held-out tasks
    assert res["methods"]["sft"]["train"]["stages"][0]["curve_key"] == "loss"
    assert {c["claim"] for c in res["claims"]} == {"sft > untrained", "srl_rlvr > untrained"}
    md = out.with_suffix(".md").read_text()
    assert "| untrained | 0 |" in md and "| srl_rlvr | 2 |" in md
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert again.returncode == 0 and again.stdout.count("already (--redo") == 3
    assert json.loads(out.read_text())["methods"] == res["methods"]
    probe = res["syntax_probe"]  # measured on the train split's steps, never on held-out ones
    assert probe["data"].endswith("experts/train/trajectories.jsonl")
    assert all(-1 <= probe[s]["greedy"]["mean_reward"] <= 1 for s in ("qwen", "xml", "qwen+prefill", "xml+prefill"))
    assert "Syntax probe" in md and "generate n=" not in again.stderr  # the rerun generates nothing


def test_longer_agent_runs_are_reported_beside_the_main_figures():
    # --longer-agent reruns agent_eval (the code the end-to-end test runs) with another max_steps; what is
    # new is where its figures go and how they are shown
    from _learning_swe_report import markdown

    agent = {"resolved": 1, "tasks": 34, "wilson95": [0.005, 0.149], "valid_tool_call_rate": 0.9, "steps": 390,
             "submitted_rate": 0.0, "mean_steps_to_submit": None, "exit_status_counts": {"max_steps": 30}}
    steps = {"greedy": {"mean_reward": 0.5, "format_violation_rate": 0.0}, "greedy_se": 0.1,
             "sampled": {"mean_reward": 0.2}, "sampled_se": 0.1}
    res = {"settings": {"model": "m", "budget_minutes": 10, "syntax": "qwen", "max_steps": 5, "runtime": "docker",
                        "backend": "vllm"}, "machine": {"cpu_count": 2, "date": "d"},
           "methods": {"sft": {"agent": {**agent, "resolved": 0, "wilson95": [0.0, 0.1]}, "steps": steps,
                               "agent_longer": {"12": agent}}}}
    md = markdown(res)
    assert "with 12 tool calls per episode" in md
    assert "| sft | 1/34 | [0%, 15%] | 90% of 390 | 0% | - | max_steps 30 |" in md
    assert "| sft | 0 | 0 | 0 | 0/34 |" in md  # the main row keeps the 5-call figures


def test_training_data_follows_tasks_dir(tmp_path: Path):
    from bench_learning_swe import RLVR_CFG, SRL_CFG, train_data

    assert train_data(SRL_CFG, tmp_path) == tmp_path / "experts" / "train" / "trajectories.jsonl"
    assert train_data(RLVR_CFG, tmp_path) == tmp_path  # RLVR reads the folder's own train split


def test_bad_probe_or_method_names_are_refused(tmp_path: Path):
    from bench_learning_swe import main

    out = tmp_path / "x.json"
    with pytest.raises(SystemExit, match=r"--probes: unknown \['qwen\+think'\]"):
        main(["--budget-minutes", "1", "--probes", "qwen,qwen+think", "--out", str(out)])
    with pytest.raises(SystemExit, match=r"--methods: unknown \['ppo'\]"):
        main(["--budget-minutes", "1", "--methods", "srl,ppo", "--out", str(out)])
    assert not out.exists()  # refused before anything ran or was written


def test_a_record_with_other_settings_is_not_overwritten(tmp_path: Path):
    from bench_learning_swe import main

    out = tmp_path / "x.json"
    record = {"settings": {"model": "m", "tokens": 192, "tasks_dir": "/elsewhere"}, "methods": {"untrained": {}}}
    out.write_text(json.dumps(record))
    with pytest.raises(SystemExit, match=r"x.json holds a run with other settings \(.*tasks_dir.*tokens.*\)"):
        main(["--budget-minutes", "1", "--methods", "untrained", "--tokens", "64", "--out", str(out)])
    assert json.loads(out.read_text()) == record
