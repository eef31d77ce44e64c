"""benchmarks/bench_learning.py: its arithmetic (relative gains, paired differences, targets), its budget
callback and overrides, and one end-to-end run of all three methods on a tiny random Qwen2 with GSM8K from the
shared data. The learning target itself is not asserted (that is what the benchmark measures); the README
reports the full run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import load_benchmark

pytest.importorskip("trl")

bench = load_benchmark("bench_learning")


def _eval(greedy: list[float], sampled: list[float]) -> dict[str, Any]:
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"greedy": {"mean_reward": mean(greedy)}, "sampled": {"mean_reward": mean(sampled)},
            "per_example": {"greedy": greedy, "sampled_mean": sampled}}


def test_compare_and_targets():
    results = {
        "untrained": {"eval": _eval([0.2, 0.4], [0.1, 0.3])},
        "srl": {"eval": _eval([0.3, 0.5], [0.3, 0.5])},
        "sft": {"eval": _eval([0.4, 0.4], [0.4, 0.4])},
    }
    cmp = bench.compare(results)
    g = cmp["srl_vs_untrained"]["greedy"]
    assert g["relative"] == pytest.approx((0.4 - 0.3) / 0.3) and g["paired_diff"] == pytest.approx(0.1)
    assert g["paired_diff_se"] == pytest.approx(0.0)
    s = cmp["srl_vs_sft"]["sampled"]
    assert s["relative"] == pytest.approx(0.0) and s["paired_diff"] == pytest.approx(0.0)
    assert s["paired_diff_se"] == pytest.approx(0.1)  # diffs -0.1, +0.1: stdev 0.1414 / sqrt 2
    met = bench.targets(cmp)
    assert met == {"srl_vs_untrained_greedy": True, "srl_vs_untrained_sampled": True,
                   "srl_vs_sft_greedy": False, "srl_vs_sft_sampled": False}


def test_split_sets():
    assert bench.split_sets(["srl.learning_rate=5e-5", "sft.max_steps=3"]) == {
        "srl": ["learning_rate=5e-5"], "sft": ["max_steps=3"]}
    for bad in ("learning_rate=5e-5", "rl.learning_rate=1", "srl.learning_rate"):
        with pytest.raises(SystemExit, match=r"expected srl\.KEY=VALUE"):
            bench.split_sets([bad])


def test_budget_stops_on_cpu_time_and_suppresses_saves():
    from transformers import TrainerControl

    budget, control = bench.Budget(None, cpu_seconds=0.05), TrainerControl()
    budget.on_train_begin(None, None, control)
    control.should_save = True
    budget.on_step_end(None, None, control)
    assert not control.should_training_stop and not control.should_save
    end = time.process_time() + 0.1
    while time.process_time() < end:  # burn CPU time past the cap
        pass
    budget.on_step_end(None, None, control)
    assert control.should_training_stop and budget.capped
    wall = bench.Budget(1e-9)  # a wall cap already over at the first step end
    wall.on_train_begin(None, None, control := TrainerControl())
    wall.on_step_end(None, None, control)
    assert control.should_training_stop


@pytest.mark.slow
def test_end_to_end_tiny(shared_data: Path, tmp_path: Path):
    from srl_swe.models.tiny import make_tiny_qwen2

    tiny = make_tiny_qwen2(tmp_path / "tiny")
    out = tmp_path / "results" / "learning.json"
    # One optimizer step uses 8 examples: train on the first 40 GSM8K problems (about 200 step examples) rather
    # than tokenizing all 26,720 (SFT's tokenization of them alone took 70 s); held-out data is unchanged.
    train = tmp_path / "gsm8k-train-40.jsonl"
    train.write_text("".join((shared_data / "math" / "gsm8k" / "train.jsonl").read_text().splitlines(True)[:40]))
    argv = ["--budget-steps", "1", "--cpu-minutes-cap", "30", "--eval-examples", "2", "--samples", "1",
            "--model", str(tiny), "--run-dir", str(tmp_path / "runs"), "--out", str(out),
            "--set", "srl.max_completion_length=8", "--set", "sft.learning_rate=1e-4",
            "--set", f"srl.train_data={train}", "--set", f"sft.train_data={train}"]
    assert bench.main(argv) == 0
    res = json.loads(out.read_text())
    assert set(res["methods"]) == {"untrained", "srl", "sft"}
    assert res["settings"]["overrides"] == {"srl": ["max_completion_length=8", f"train_data={train}"],
                                            "sft": ["learning_rate=1e-4", f"train_data={train}"]}
    assert res["settings"]["cpu_minutes_cap"] == 30 and res["settings"]["max_new_tokens"] == 8
    for name in ("srl", "sft"):
        t = res["methods"][name]["train"]
        assert t["optimizer_steps"] == 1 and not t["stopped_by_cap"] and t["train_cpu_s"] > 0
        assert Path(t["final_model"], "config.json").is_file()
    assert res["methods"]["sft"]["train"]["learning_rate"] == 1e-4
    for entry in res["methods"].values():
        e = entry["eval"]
        assert e["examples"] == 2 and len(e["per_example"]["greedy"]) == 2
        assert -1.0 <= e["greedy"]["mean_reward"] <= 1.0
    assert set(res["comparison"]) == {"srl_vs_untrained", "srl_vs_sft", "sft_vs_untrained"}
    md = out.with_suffix(".md").read_text()
    assert "| untrained | 0 |" in md and "30 CPU-min cap" in md and "Target: SRL >= 20 %" in md
