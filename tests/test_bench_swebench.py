"""benchmarks/bench_swebench.py, one short run on real Docker: both sides really grade (gold resolves every
time) and the figures are consistent. The <= 1.2x target is not asserted (CI timings are noisy); the README
reports the full run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_benchmark

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_swebench_quick(local_tasks: Path, docker_client):
    bench = load_benchmark("bench_swebench")

    res = bench.run(local_tasks, repeats=1, cold=False)
    g = res["grading"]
    assert g["instances"] == 2 and g["resolved_each_run"] == [2]
    assert g["bare_median_s"] > 0.1 and g["ours_median_s"] > 0.1  # a real harness run takes time
    assert g["ratio_median"] == pytest.approx(g["ours_median_s"] / g["bare_median_s"])
    assert 0 < res["images"]["warm_ensure_s"] < 5 and "cold_build_s" not in res["images"]
    assert "Per-instance grading" in bench.markdown(res)
