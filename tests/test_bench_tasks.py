"""benchmarks/results/tasks.json, the README's task-generation figures (issue 12): the committed run's numbers add up,
clear the targets (>= 300 tasks from >= 3 packages, every mutation family tried), and the Markdown table is the one
the script writes for them. The run itself takes hours (benchmarks/bench_tasks.py); the code it calls is tested in
tests/test_taskgen_*.py."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_benchmark

from srl_swe.taskgen.families import FAMILIES
from srl_swe.taskgen.sources import PACKAGES

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "tasks.json"


def test_the_committed_run_adds_up_and_clears_the_targets():
    bench = load_benchmark("bench_tasks")
    res = json.loads(RESULTS.read_text())
    rows = res["packages"]
    assert [r["src"] for r in rows] == list(PACKAGES) and res["met"] is True
    assert res["total_tasks"] == sum(r["inspect"]["tasks"] for r in rows) >= bench.TARGET_TASKS
    tried_families = set()
    for row in rows:
        s = row["summary"]
        assert s["validated"] == s["sampled"] == row["n"] and s["kept"] == row["inspect"]["tasks"] > 0
        assert sum(s["kinds"].values()) == s["validated"] and s["kinds"]["kept"] == s["kept"]
        assert sum(f["tried"] for f in s["families"].values()) == s["validated"]
        assert sum(f["kept"] for f in s["families"].values()) == s["kept"]
        assert sum(s["splits"]["counts"].values()) == s["kept"] and min(s["splits"]["counts"].values()) > 0
        assert s["baseline"]["passing"] > 100 and s["validation_seconds"] > 0
        tried_families |= set(s["families"])
        experts = row["experts"]
        assert experts["tasks"] == s["kept"] and experts["kept"] <= experts["tried"] <= experts["tasks"]
        assert row["docker"]["resolved"] == row["docker"]["graded"] > 0
    assert tried_families == set(FAMILIES)
    assert bench.markdown(res) + "\n" == RESULTS.with_suffix(".md").read_text()
