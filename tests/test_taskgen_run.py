"""The generate-and-validate job on real test runs of marshmallow 3.13 (its cached source and venv; offline).

The suite is cut to tests/test_validate.py and n to 8, so one job validates in well under a minute; seed 0 keeps
one of the 8 (a `change_default` in validate.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from srl_swe.swebench.local_env import prepare_source
from srl_swe.swebench.specs import SPECS
from srl_swe.taskgen import run as R
from srl_swe.taskgen import validate as V
from srl_swe.taskgen.mutations import sample_mutations, source_files

SPEC = SPECS[("marshmallow-code/marshmallow", "3.13")]
TESTS = ("tests/test_validate.py",)
N, SEED = 8, 0


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _git(*args: str, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, input=input, text=True, encoding="utf-8",
                          capture_output=True, check=False)


@pytest.fixture(scope="module")
def sample() -> list:
    return sample_mutations(source_files(prepare_source(SPEC)).files, N, SEED)


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> tuple[Path, dict, float]:
    out = tmp_path_factory.mktemp("gen")
    start = time.monotonic()
    summary = R.generate(SPEC, out, n=N, seed=SEED, workers=4, tests=TESTS, progress=False)
    return out, summary, time.monotonic() - start


@pytest.mark.slow
def test_summary_counts_add_up(job):
    out, summary, _ = job
    assert json.loads((out / R.SUMMARY).read_text()) == summary
    assert (summary["n"], summary["sampled"], summary["validated"], summary["seed"]) == (N, N, N, SEED)
    assert sum(summary["kinds"].values()) == N
    assert sum(f["tried"] for f in summary["families"].values()) == N
    assert sum(f["kept"] for f in summary["families"].values()) == summary["kinds"].get("kept", 0)
    assert summary["kept"] == summary["kinds"].get("kept", 0) >= 1
    assert summary["spec_digest"] == SPEC.digest() and summary["package_version"] == "3.13.0"
    assert summary["baseline"]["passing"] > 100 and summary["baseline"]["reused"] is False
    assert summary["validation_seconds"] > 0 and summary["skipped_files"] == {}
    records = _lines(out / R.CANDIDATES)
    assert len(records) == N == len({r["key"] for r in records})
    assert all(isinstance(r["pass_to_pass_count"], int) and "pass_to_pass" not in r for r in records)
    baseline = json.loads((out / R.BASELINE).read_text())
    assert (baseline["spec_digest"], baseline["tests"], baseline["runs"]) == (SPEC.digest(), list(TESTS), 2)


@pytest.mark.slow
def test_kept_bugs_have_failing_tests_and_a_patch_git_applies(job, sample, tmp_path):
    out, summary, _ = job
    kept = _lines(out / R.KEPT)
    assert len(kept) == summary["kept"] >= 1
    assert {r["key"] for r in kept} == {r["key"] for r in _lines(out / R.CANDIDATES) if r["kind"] == "kept"}
    clean = prepare_source(SPEC)
    for rec in kept:
        assert rec["fail_to_pass"] and rec["kind"] == "kept"
        assert len(rec["pass_to_pass"]) == rec["pass_to_pass_count"] > 0
        assert rec["patch"].startswith(f"diff --git a/{rec['file']} b/{rec['file']}\n--- a/{rec['file']}\n")
        repo = tmp_path / rec["key"]
        shutil.copytree(clean, repo, symlinks=True)
        check = _git("apply", "--check", "-", cwd=repo, input=rec["patch"])
        assert check.returncode == 0, check.stderr
        assert _git("apply", "-", cwd=repo, input=rec["patch"]).returncode == 0
        (mutation,) = [m for m in sample if m.key == rec["key"]]
        assert (repo / rec["file"]).read_text() == mutation.mutated


@pytest.mark.slow
def test_same_seed_same_candidates(job, sample):
    out, _, _ = job  # the job sampled on its own: the same seed gave it the same candidates
    assert [m.key for m in sample] == [m.key for m in sample_mutations(
        source_files(prepare_source(SPEC)).files, N, SEED)]
    assert {r["key"] for r in _lines(out / R.CANDIDATES)} == {m.key for m in sample}
    assert {(m.family, m.file, m.line) for m in sample} == {(r["family"], r["file"], r["line"])
                                                           for r in _lines(out / R.CANDIDATES)}


def _no_tests(monkeypatch) -> list[int]:
    runs: list[int] = []

    def forbidden(*args, **kwargs):
        runs.append(1)
        raise AssertionError("a test run on resume")

    monkeypatch.setattr(V, "_run_tests", forbidden)
    monkeypatch.setattr(R, "run_baseline", forbidden)
    return runs


@pytest.mark.slow
def test_a_rerun_into_the_same_dir_runs_no_test(job, monkeypatch):
    out, summary, _ = job
    before = {name: (out / name).read_bytes() for name in (R.CANDIDATES, R.KEPT, R.BASELINE)}
    runs = _no_tests(monkeypatch)
    again = R.generate(SPEC, out, n=N, seed=SEED, workers=4, tests=TESTS, progress=False)
    assert runs == []
    assert {name: (out / name).read_bytes() for name in before} == before
    assert again["baseline"]["reused"] is True
    strip = ("wall_seconds", "baseline")
    assert {k: v for k, v in again.items() if k not in strip} == {k: v for k, v in summary.items() if k not in strip}


@pytest.mark.slow
def test_a_torn_last_line_is_repaired_and_redone_once(job, tmp_path, monkeypatch):
    src, summary, _ = job
    out = tmp_path / "torn"
    shutil.copytree(src, out)
    # The kept candidate's line last, then torn in half: its kept.jsonl line is now an orphan to drop.
    lines = (out / R.CANDIDATES).read_text().splitlines()
    kept_keys = sorted(r["key"] for r in _lines(out / R.KEPT))
    kept_key = kept_keys[0]
    (torn,) = [line for line in lines if json.loads(line)["key"] == kept_key]
    rest = [line for line in lines if line != torn]
    (out / R.CANDIDATES).write_text("".join(line + "\n" for line in rest) + torn[: len(torn) // 2])
    calls: list[str] = []
    real = V.validate

    def counting(spec, baseline, changed, **kwargs):
        calls.append(next(iter(changed)))
        return real(spec, baseline, changed, **kwargs)

    monkeypatch.setattr(V, "validate", counting)
    monkeypatch.setattr(R, "run_baseline", lambda *a, **k: pytest.fail("the baseline was recomputed"))
    again = R.generate(SPEC, out, n=N, seed=SEED, workers=4, tests=TESTS, progress=False)
    assert len(calls) == 1
    records = _lines(out / R.CANDIDATES)  # every line parses: the torn half is gone
    assert len(records) == N and sorted(r["key"] for r in records) == sorted(json.loads(x)["key"] for x in lines)
    assert sorted(r["key"] for r in _lines(out / R.KEPT)) == kept_keys  # the orphan dropped, then written once
    assert again["kinds"] == summary["kinds"] and again["validated"] == N


def test_bug_patch_is_what_git_applies(tmp_path):
    before = "a = 1\nb = '\r\u2028'\nc = 3\nd = 4"  # no final newline; \r and U+2028 are not line ends for git
    after = before.replace("c = 3", "c = 4").replace("d = 4", "d = 5")
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "m.py").write_bytes(before.encode())
    assert _git("init", "-q", cwd=repo).returncode == 0
    patch = R.bug_patch("pkg/m.py", before, after)
    assert "\\ No newline at end of file" in patch and R.bug_patch("pkg/m.py", before, before) == ""
    applied = _git("apply", "-", cwd=repo, input=patch)
    assert applied.returncode == 0, applied.stderr
    assert (repo / "pkg" / "m.py").read_bytes() == after.encode()


def test_no_source_files_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "src" / "tests").mkdir(parents=True)
    (tmp_path / "src" / "tests" / "test_x.py").write_text("def test(): pass\n")
    monkeypatch.setattr(R, "prepare_source", lambda spec: tmp_path / "src")
    monkeypatch.setattr(R, "run_baseline", lambda *a, **k: pytest.fail("a baseline for no sources"))
    with pytest.raises(R.GenerationError, match="no Python source file to mutate"):
        R.generate(SPEC, tmp_path / "out", n=4, seed=0, tests=TESTS, progress=False)


def test_validate_many_reports_each_result_as_it_comes(monkeypatch):
    path = "src/marshmallow/validate.py"
    clean = (prepare_source(SPEC) / path).read_text()
    baseline = V.Baseline(SPEC, TESTS, ("t",), (), 0, 0, 1, 1.0)
    monkeypatch.setattr(V, "_run_tests", lambda *a, **k: pytest.fail("a test run for an unchanged file"))
    seen: list[tuple[str, str]] = []
    results = V.validate_many(SPEC, baseline, [("a", {path: clean}), ("b", {path: clean}), ("c", {"../x": ""})],
                              workers=2, progress=False, on_result=lambda key, v: seen.append((key, v.kind)))
    assert sorted(seen) == [("a", "no_change"), ("b", "duplicate"), ("c", "bad_path")]
    assert [(k, v.kind) for k, v in results] == [("a", "no_change"), ("b", "duplicate"), ("c", "bad_path")]
