"""benchmarks/bench_train.py in quick mode (tiny random Qwen2, one timed step, no SmolLM2): the invariants every
run must hold. The timing target (SRL trainer step <= 1.10x plain TRL) is not asserted: timings on a shared CPU
are noisy. The README reports the measured full run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import load_benchmark

pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


bench = load_benchmark("bench_train")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run through the command line (profile forced on), read back from its JSON."""
    out = tmp_path_factory.mktemp("bench") / "train.json"
    assert bench.main(["--quick", "--profile", "--out", str(out)]) == 0
    assert out.with_suffix(".md").is_file()
    return json.loads(out.read_text())


def test_overhead_ratios_present_and_positive(report: dict[str, Any]):
    ov = report["overhead"]
    assert ov["steps"] >= 1 and ov["repeats"] >= 1 and ov["completions_per_step"] == 8
    for v in bench.VARIANTS:
        r = ov[v]
        assert len(r["repeat_means_s"]) == ov["repeats"]
        assert r["best_s"] > 0 and r["median_s"] > 0 and r["min_step_s"] > 0 and r["cpu_best_s"] > 0
        assert r["completion_tokens_per_step"] > 0
    for v in ("srl_ds_on", "srl_ds_off"):
        for key in ("ratio", "ratio_median", "cpu_ratio", "cpu_ratio_median"):
            assert ov[v][key] > 0, (v, key)
    assert set(report["ok"]) == {"step_ratio"}


def test_overhead_measures_equal_work(report: dict[str, Any]):
    ov = report["overhead"]
    # same seed, model, data and lengths: about the same tokens per step (EOS can differ once the weights moved)
    assert 0 <= ov["completion_tokens_spread"] < 0.25
    # dynamic sampling on, but measured where it never filters (so it never generates twice)
    assert ov["no_group_filtered"] is True and ov["srl_ds_on"]["refills_max"] == 0.0
    assert ov["srl_ds_off"]["filtered_fraction_max"] is None and ov["trl"]["filtered_fraction_max"] is None


def test_profile_finds_our_code(report: dict[str, Any]):
    prof = report["overhead"]["profile"]
    ours, trl = prof["srl_ds_on"]["ms_per_step"], prof["trl"]["ms_per_step"]
    assert ours["srl_generate_and_score"] > 0 and ours["SRLReward"] > 0 and ours["FormatRate"] > 0
    assert ours["merge_groups"] > 0 and ours["RunLog.on_log"] > 0
    assert trl["SRLReward"] == 0 and trl["trl_generate_and_score"] > 0
    assert any("cumulative" in line for line in prof["trl"]["top_cumulative"])


def test_rollout_counts_generated_tokens(report: dict[str, Any]):
    ro = report["rollout"]
    assert ro["prompts"] >= 1 and ro["prompt_tokens_mean"] > 0 and ro["repeats"] >= 1
    assert set(ro["transformers"]) == {"batch_1", "batch_8"}
    for row in ro["transformers"].values():
        forced, natural = row["forced"], row["natural"]
        # EOS suppressed: every row runs to max_new_tokens, counted from the ids
        assert forced["generated_tokens"] == [ro["prompts"] * ro["max_new_tokens"]] * ro["repeats"]
        assert all(0 < n <= ro["prompts"] * ro["max_new_tokens"] for n in natural["generated_tokens"])
        assert forced["tokens_per_s"] > 0 and natural["tokens_per_s"] > 0
    # quick mode never starts vLLM (40 s): "not measured" without it installed, "skipped" with it
    assert ro["vllm"]["measured"] is False and ro["vllm"]["note"].startswith(("not measured", "skipped"))


def test_counting_generator_counts_ids(tmp_path: Path):
    """Each row counts up to and including its first EOS; removing the wrapper restores the model's generate."""
    from srl_swe.models.loading import load_model_and_tokenizer
    from srl_swe.models.tiny import make_tiny_qwen2

    model, tok = load_model_and_tokenizer(str(make_tiny_qwen2(tmp_path / "tiny")), dtype="float32")
    gen = load_benchmark("_rollout").CountingGenerator(model, tok, batch_size=2, force=False)
    out = gen.generate([[{"role": "user", "content": "1 + 1?"}]] * 3, n=1, temperature=1.0, max_new_tokens=5, seed=0)
    assert len(out) == 3 and gen.rows == 3 and 3 <= gen.generated <= 15
    del model.generate
    assert "generate" not in vars(model)


def test_report_metadata_and_table(report: dict[str, Any]):
    m = report["machine"]
    assert m["python"] and m["cpu_count"] and m["torch_threads"] >= 1 and len(m["loadavg_start"]) == 3
    assert report["quick"] is True and report["targets"] == {"step_ratio_max": 1.10}
    table = bench.markdown(report)
    assert "| trainer | best s/step |" in table and "trl.GRPOTrainer, constant reward" in table
    assert "| batch | transformers, EOS suppressed |" in table and ro_note(report) in table


def ro_note(report: dict) -> str:
    return report["rollout"]["vllm"]["note"]
