"""The SWE demo (`make demo`) with a real tiny model in place of SmolLM2: the CPU SWE config trains on the
committed toolz tasks' step examples (a progress bar with the reward, no metrics dicts, held-out step reward
before/after, over-long prompts skipped and counted), then scripts/demo_swe.py grades the untrained and the
trained model as agents on held-out tasks in Docker and reports both."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "cpu-srl-swe-smollm2.yaml"
TASKS = REPO / "trajectories" / "swe-tasks" / "toolz-1.2.0"
FAST = ["eval_max_examples=2", "max_completion_length=8", "require_think=false"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from srl_swe.models.tiny import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny"))


def test_the_demo_data_is_split_by_function_and_its_experts_resolve():
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.trajectories import load_trajectories

    train, _ = load_instances(TASKS, split="train", strict=False)
    held, _ = load_instances(TASKS, split="heldout", strict=False)
    assert len(train) == 78 and len(held) == 34
    assert not {i.instance_id for i in train} & {i.instance_id for i in held}
    splits = json.loads((TASKS / "splits.json").read_text())
    functions = {}
    tasks = [json.loads(line) for line in (TASKS / "tasks.jsonl").read_text().splitlines()]
    for name, split in (("train", train), ("heldout", held)):
        experts = load_trajectories(TASKS / "experts" / name / "trajectories.jsonl").trajectories  # resolved only
        ids = {i.instance_id for i in split}
        assert len(experts) >= 0.9 * len(split) and {t.task.instance_id for t in experts} <= ids
        assert set(splits["ids"][name]) == ids
        functions[name] = {(t["mutation"]["file"], t["mutation"]["qualname"]) for t in tasks if t["instance_id"] in ids}
    assert not functions["train"] & functions["heldout"]  # no held-out function has a bug in training
    assert len(functions["heldout"]) == splits["functions"]["heldout"] == 13


@pytest.mark.slow
def test_swe_config_trains_with_a_progress_bar_and_measures_held_out_steps(tiny: Path, tmp_path: Path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "srl_swe.cli", "train", "--config", str(CONFIG), f"model={tiny}",
           f"output_dir={run}", "max_steps=2", *FAST]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "{'loss'" not in out and "'reward':" not in out, out[-3000:]  # no raw metrics dict per step
    assert re.search(r"train: 100%.*2/2.*reward=[+-]\d\.\d{3}, mean=[+-]\d\.\d{3}", out), out[-3000:]
    assert "TRL currently supports vLLM versions" not in out
    summary = json.loads((run / "summary.json").read_text())
    step = summary["held_out_step_reward"]
    assert -1 <= step["before"] <= 1 and -1 <= step["after"] <= 1
    lengths = json.loads((run / "prompt_lengths.json").read_text())
    assert lengths["max_prompt_length"] == 1024 and lengths["train"]["dropped"] > 0 < lengths["train"]["kept"]
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if "reward" in r] == [1, 2]


@pytest.mark.slow
def test_demo_script_grades_both_models_as_agents_in_docker(tiny: Path, tmp_path: Path, docker_client):
    out = tmp_path / "demo"
    cmd = [sys.executable, str(REPO / "scripts" / "demo_swe.py"), "--out", str(out), "--tasks", "2",
           "--max-steps", "2", "--runtime", "docker", f"model={tiny}", "max_steps=1", *FAST]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [r["model"] for r in report["agent"]] == ["untrained", "SRL"]
    for r, folder in zip(report["agent"], ("agent-untrained", "agent-srl"), strict=True):
        results = json.loads((out / folder / "results.json").read_text())
        assert r["tasks"] == results["total"] == 2 and r["resolved"] == results["resolved"]
        assert results["runtime"] == "docker" and results["grader"] == "harness"
        assert results["agent"]["episodes"] == 2 and 1 <= results["agent"]["steps"] <= 4
        assert all(v["status"] in ("resolved", "unresolved", "empty_patch") for v in results["instances"].values())
    assert "held-out step reward (greedy)" in proc.stdout and "agent mode on 2 held-out toolz tasks" in proc.stdout
