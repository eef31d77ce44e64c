"""The `srl-swe` command line: data inspect, data build (datasets.load_from_disk), env run/check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

import srl_swe
from srl_swe.cli import main
from srl_swe.rewards import SRLReward


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "srl_swe.cli", *args], capture_output=True, text=True)


@pytest.mark.shared_data
def test_data_inspect(trajectories_dir: Path, capsys):
    assert main(["data", "inspect", str(trajectories_dir)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("mini-swe-agent"))
    assert line.split()[1:6] == ["76", "2775", "76", "0", "0"] and "27 outcome unresolved" in line
    assert main(["data", "inspect", str(trajectories_dir), "--keep", "all", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sources"]["mini-swe-agent"]["trajectories"] == 103
    assert data["sources"]["swe-agent"]["unknown"] == 9


def test_data_inspect_reports_malformed(tmp_path: Path, bundled_swe: Path, capsys):
    (tmp_path / "good.jsonl").write_text(bundled_swe.read_text())
    (tmp_path / "bad.json").write_text('{"messages": [')
    assert main(["data", "inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and "bad.json" in out and "expected valid JSON" in out
    assert "swe-smith-chat" in out


def test_data_build_is_deterministic(tmp_path: Path, bundled_swe: Path):
    for name in ("a", "b"):
        assert main(["data", "build", str(bundled_swe), "-o", str(tmp_path / name), "--window", "2", "--quiet"]) == 0
    a, b = datasets.load_from_disk(str(tmp_path / "a")), datasets.load_from_disk(str(tmp_path / "b"))
    assert len(a) == 34 and a.to_list() == b.to_list() and a._fingerprint == b._fingerprint
    row = a[3]
    assert row["example_id"].endswith("#3") and row["prompt"][0]["role"] == "system"
    assert row["expert_action"].startswith("<function=") and row["syntax"] == "xml"
    info = json.loads((tmp_path / "a" / "build_info.json").read_text())
    assert info["examples"] == 34 and info["config"]["window"] == 2
    # The dataset's columns feed the TRL reward adapter directly.
    rewards = SRLReward()(prompts=a["prompt"][:2], completions=["<think>t</think>" + e for e in a["expert_action"][:2]],
                          expert_action=a["expert_action"][:2], syntax=a["syntax"][:2])
    assert rewards == [1.0, 1.0]


def test_env_run_and_check(tmp_path: Path):
    rows = tmp_path / "runs" / "demo" / "replay.jsonl"  # a folder that does not exist yet, as in `make demo`
    out = run("env", "run", "--policy", "replay", "--quiet", "--out", str(rows))
    assert out.returncode == 0, out.stderr
    assert "4 episodes, 34 steps, mean step reward 1.000" in out.stdout
    records = [json.loads(line) for line in rows.read_text().splitlines()]
    assert len(records) == 34 and {r["reward"] for r in records} == {1.0} and all(r["valid"] for r in records)
    noisy = run("env", "run", "--env", "SRL-Math-v0", "--policy", "noisy", "--quiet")
    mean = float(noisy.stdout.strip().rsplit(" ", 1)[1])
    assert 0.3 < mean < 1.0
    check = run("env", "check")
    lines = check.stdout.splitlines()
    imitation = [line for line in lines if not line.startswith("SRL-SWE-Exec-v0")]
    (exec_line,) = [line for line in lines if line.startswith("SRL-SWE-Exec-v0")]
    assert check.returncode == 0 and len(imitation) == 4 and all(line.endswith(" ok") for line in imitation)
    assert exec_line.endswith(" ok") or "skipped: no tasks" in exec_line  # checked on the local runtime


def test_cli_errors_are_clear(tmp_path: Path):
    out = run("data", "inspect", str(tmp_path / "missing"))
    assert out.returncode == 2 and "no such file or directory" in out.stderr and "Traceback" not in out.stderr
    bad = tmp_path / "bad.traj"
    bad.write_bytes(b"\xff\xfe{}")
    out = run("env", "run", "--data", str(bad))
    assert out.returncode == 2 and "UTF-8" in out.stderr and str(bad) in out.stderr


def test_bench_runs_a_benchmark_script(shared_data, tmp_path, capsys):
    out = tmp_path / "results" / "core.json"  # a folder that does not exist yet
    assert main(["bench", "core", "--quick", "--repeats", "1", "--no-profile", "--data", str(shared_data),
                 "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["quick"] is True and res["reward"]["identical"] is True
    assert "Env step / bare score_output" in capsys.readouterr().out


def test_bench_help_says_source_checkout_only():
    out = run("bench", "--help")
    text = " ".join(out.stdout.split())  # argparse wraps the description
    assert out.returncode == 0 and "source checkout" in text and "The benchmarks are not in the wheel" in text
    assert "source checkout only" in run("--help").stdout


def test_bench_from_an_installed_layout_fails_clearly(tmp_path: Path):
    # The package alone, as a wheel installs it (site-packages/srl_swe, no benchmarks/ beside it).
    site = tmp_path / "site"
    shutil.copytree(Path(srl_swe.__file__).parent, site / "srl_swe", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-m", "srl_swe.cli", "bench", "core", "--quick"], capture_output=True,
                         text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{site / 'benchmarks' / 'bench_core.py'} not found" in out.stderr  # the copy ran, not the checkout
    assert "not the wheel" in out.stderr and "pip install -e ." in out.stderr
