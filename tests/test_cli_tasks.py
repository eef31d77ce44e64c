"""`srl-swe tasks make` / `tasks inspect` (issue 12) on the session's generated tasks, and their bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import GENERATED

from srl_swe.cli import main


def _make_args(out: Path) -> list[str]:
    return ["tasks", "make", "marshmallow==3.13.0", "-o", str(out), "--n", str(GENERATED["n"]),
            "--seed", str(GENERATED["seed"]), "--tests", *GENERATED["tests"], "--only", *GENERATED["only"],
            "--no-experts", "--quiet"]


def test_inspect_prints_the_counts(generated_tasks: Path, capsys):
    summary = json.loads((generated_tasks / "summary.json").read_text())
    tasks = (generated_tasks / "tasks.jsonl").read_text().splitlines()
    assert main(["tasks", "inspect", str(generated_tasks)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(f"marshmallow 3.13.0: {len(tasks)} tasks ({summary['kept']} kept of "
                            f"{GENERATED['n']} validated")
    for family, f in summary["families"].items():
        assert any(line.split()[:3] == [family, str(f["kept"]), str(f["tried"])] for line in out.splitlines())
    assert main(["tasks", "inspect", str(generated_tasks), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["tasks"] == len(tasks) and row["splits"]["counts"] == summary["splits"]["counts"]


def test_inspect_a_folder_of_task_folders(generated_tasks: Path, tmp_path: Path, capsys):
    n = len((generated_tasks / "tasks.jsonl").read_text().splitlines())
    for name in ("a", "b"):
        shutil.copytree(generated_tasks, tmp_path / name)
    assert main(["tasks", "inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("marshmallow 3.13.0:") == 2 and f"total: {2 * n} tasks from 2 folders" in out


def test_make_reruns_resume_without_validating_again(generated_tasks: Path, tmp_path: Path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(generated_tasks, out, ignore=shutil.ignore_patterns("experts"))
    before = (out / "candidates.jsonl").read_bytes()
    tasks = (out / "tasks.jsonl").read_bytes()
    assert main(_make_args(out)) == 0
    assert (out / "candidates.jsonl").read_bytes() == before  # nothing validated twice, nothing lost
    assert (out / "tasks.jsonl").read_bytes() == tasks  # the same instances, byte for byte
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline"]["reused"] is True and summary["validated"] == GENERATED["n"]
    assert "marshmallow 3.13.0:" in capsys.readouterr().out


def test_bad_sources_are_clear_errors(tmp_path: Path, capsys):
    assert main(["tasks", "make", str(tmp_path / "missing"), "-o", str(tmp_path / "o"), "--quiet"]) == 2
    assert "missing" in capsys.readouterr().err
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("not a package\n")
    assert main(["tasks", "make", str(notes), "-o", str(tmp_path / "o2"), "--quiet"]) == 2
    assert str(notes) in capsys.readouterr().err
    assert main(["tasks", "inspect", str(notes)]) == 2
    assert "no summary.json" in capsys.readouterr().err


def test_eval_swebench_reads_the_folder_and_its_splits(generated_tasks: Path, tmp_path: Path):
    splits = json.loads((generated_tasks / "splits.json").read_text())
    every = splits["ids"]["train"] + splits["ids"]["heldout"]
    for split, ids in (("test", every), ("heldout", splits["ids"]["heldout"])):
        out = tmp_path / split
        assert main(["eval", "swebench", "--dataset", str(generated_tasks), "--split", split, "--model", "gold",
                     "--runtime", "local", "--out", str(out), "--quiet"]) == 0
        results = json.loads((out / "results.json").read_text())
        assert sorted(results["instances"]) == sorted(ids) and results["resolved"] == len(ids) > 0


CALC = '''def clamp(x, lo, hi):
    """x limited to [lo, hi]."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def mean(values):
    if not values:
        raise ValueError("mean of nothing")
    return sum(values) / len(values)
'''
CALC_TESTS = '''import pytest
from tinycalc import clamp, mean


def test_clamp():
    assert clamp(5, 0, 3) == 3 and clamp(-1, 0, 3) == 0 and clamp(2, 0, 3) == 2


def test_mean():
    assert mean([1, 2, 3]) == 2
    with pytest.raises(ValueError):
        mean([])
'''


def test_make_on_a_local_folder_end_to_end(tmp_path: Path, capsys):
    """A package folder (not on PyPI): packed, resolved, validated, instances, experts, then graded by eval."""
    pkg = tmp_path / "tinycalc"
    (pkg / "tinycalc").mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "pyproject.toml").write_text('[project]\nname = "tinycalc"\nversion = "0.1.0"\n')
    (pkg / "tinycalc" / "__init__.py").write_text(CALC)
    (pkg / "tests" / "test_calc.py").write_text(CALC_TESTS)
    out = tmp_path / "out"
    assert main(["tasks", "make", str(pkg), "-o", str(out), "--n", "10", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    tasks = [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines()]
    assert summary["baseline"]["passing"] == 2 and summary["validated"] == 10 and len(tasks) == summary["kept"] >= 5
    assert {t["repo"] for t in tasks} == {"local/tinycalc"} and all(t["FAIL_TO_PASS"] != "[]" for t in tasks)
    experts = json.loads((out / "experts" / "summary.json").read_text())
    assert experts["kept"] == experts["tried"] == len(tasks)
    assert f"experts: {len(tasks)} trajectories kept of {len(tasks)} tried" in capsys.readouterr().out
    assert main(["eval", "swebench", "--dataset", str(out), "--model", "gold", "--runtime", "local",
                 "--out", str(tmp_path / "eval"), "--quiet"]) == 0
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["resolved"] == len(tasks)
