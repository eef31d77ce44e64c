"""benchmarks/bench_core.py in quick mode on the shared data: the invariants every run must hold.

The timing targets (>= 3x reward speed-up, env step <= 1.10x the bare reward, loading < 5 s) are not
asserted: timings on a loaded CI machine are noisy. The README reports the measured full run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import load_benchmark

from srl_swe.actions import render

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.shared_data


bench = load_benchmark("bench_core")


@pytest.fixture(scope="module")
def report(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run through the command line (one timing pass, profile stored), read back from its JSON."""
    out = tmp_path_factory.mktemp("bench") / "core.json"
    code = bench.main(["--quick", "--repeats", "1", "--profile", "--data", str(shared_data), "--out", str(out)])
    assert code == 0, "main() exits 1 when the reward values are not bit-identical"
    return json.loads(out.read_text())


def test_perturbations_are_deterministic(shared_data: Path):
    calls = bench.expert_calls(shared_data)
    assert calls
    first, second = bench.make_pairs(calls, 300), bench.make_pairs(calls, 300)
    assert first == second
    assert {kind for kind, _, _ in first} == set(bench.KINDS)
    experts = {render(c, "xml") for c in calls}
    assert all(expert in experts for _, _, expert in first)
    for kind, pred, expert in first:
        if kind in ("delete", "insert"):  # a span of 5-30 % of the length (at least one character)
            change = abs(len(pred) - len(expert))
            assert 1 <= change <= max(1, round(0.30 * len(expert))), (kind, len(expert), change)


def test_reward_values_bit_identical(report: dict[str, Any]):
    rw = report["reward"]
    assert rw["pairs"] > 0
    assert rw["pairs_over_max"] == 0, "a pair longer than MAX_SCORED_CHARS would be cut, not plain difflib"
    assert rw["identical"] is True and rw["mismatches"] == 0
    assert report["ok"]["values_identical"] is True
    assert 0.0 <= rw["mean_similarity"] <= 1.0


def test_reward_ratios_present_and_positive(report: dict[str, Any]):
    rw = report["reward"]
    assert rw["speedup"] > 0 and rw["speedup_median"] > 0
    for impl in ("cydifflib", "difflib"):
        assert rw[impl]["best_s"] > 0 and rw[impl]["best_us_per_call"] > 0
    assert rw["by_expert_length"]
    assert sum(b["pairs"] for b in rw["by_expert_length"].values()) == rw["pairs"]
    assert all(b["speedup"] > 0 for b in rw["by_expert_length"].values())


def test_env_step_matches_bare_reward(report: dict[str, Any]):
    ev = report["env"]
    assert 0 < ev["examples"] <= ev["of"]
    assert ev["rewards_identical"] is True, "env.step rewards differ from score_output on the same outputs"
    assert ev["expert_actions_match"] is True
    assert ev["valid_outputs"] >= 0.95 * ev["examples"], "the outputs must exercise the full scoring path"
    for key in ("ratio", "ratio_median", "reset_plus_step_ratio"):
        assert ev[key] > 0, key
    for part in ("step", "bare_reward", "reset"):
        assert ev[part]["best_s"] > 0, part
    assert all(v > 0 for v in ev["overhead_parts_us"].values())
    assert any("step" in line for line in ev["profile"])


def test_loading_covers_every_trajectory(report: dict[str, Any]):
    tr = report["loading"]["trajectories"]
    assert tr["trajectories"] > 0 and tr["steps"] == report["env"]["of"]
    assert tr["total_s"] > 0 and tr["total_s"] >= tr["load_s"]
    if "gsm8k_train" in report["loading"]:
        g = report["loading"]["gsm8k_train"]
        assert g["steps"] >= g["trajectories"] > 0


def test_report_metadata_and_table(report: dict[str, Any]):
    m = report["machine"]
    assert m["python"] and m["cpu_count"] and m["ratio_backend"] and m["date"]
    assert report["quick"] is True
    assert set(report["ok"]) == {"values_identical", "reward_speedup", "env_step_ratio", "load_seconds"}
    table = bench.markdown(report)
    assert "| benchmark | measured | target | met |" in table
    assert "vs stdlib difflib" in table
