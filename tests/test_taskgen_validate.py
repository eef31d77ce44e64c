"""Bug validation on real test runs of marshmallow 3.13 (its cached source and venv; offline).

The suite is cut to tests/test_validate.py so a run takes about a second; the full suite is for generation."""

from __future__ import annotations

import time

import pytest

from srl_swe.runtime.base import SandboxError
from srl_swe.swebench.local_env import prepare_source
from srl_swe.swebench.specs import SPECS
from srl_swe.taskgen import validate as V

SPEC = SPECS[("marshmallow-code/marshmallow", "3.13")]
PATH = "src/marshmallow/validate.py"
TESTS = ("tests/test_validate.py",)
LENGTH_MIN = "if self.min is not None and length < self.min:"


@pytest.fixture(scope="module")
def source() -> str:
    return (prepare_source(SPEC) / PATH).read_text()


@pytest.fixture(scope="module")
def baseline() -> V.Baseline:
    return V.run_baseline(SPEC, tests=TESTS, timeout=120)


def _bug(source: str) -> str:
    assert source.count(LENGTH_MIN) == 1
    return source.replace(LENGTH_MIN, LENGTH_MIN.replace("<", "<="))  # Length(min=n) now rejects length n


def test_baseline_records_the_passing_tests(baseline):
    assert len(baseline.passing) > 100 and (baseline.flaky, baseline.failing, baseline.excluded) == (0, 0, ())
    assert all(name.startswith("tests/test_validate.py::") for name in baseline.passing)
    assert "tests/test_validate.py::test_length_min" in baseline.passing
    assert baseline.tests == TESTS and baseline.runs == 2 and baseline.seconds > 0
    assert baseline.default_timeout() >= V.MIN_TIMEOUT


def test_a_real_bug_is_kept_with_its_failing_tests(source, baseline):
    verdict = V.validate(SPEC, baseline, {PATH: _bug(source)}, timeout=60)
    assert (verdict.kept, verdict.kind) == (True, "kept"), verdict.reason
    assert verdict.fail_to_pass == ("tests/test_validate.py::test_length_max",
                                    "tests/test_validate.py::test_length_min")
    assert len(verdict.pass_to_pass) == len(baseline.passing) - 2
    assert sorted(verdict.fail_to_pass + verdict.pass_to_pass) == list(baseline.passing)
    assert list(verdict.pass_to_pass) == sorted(verdict.pass_to_pass) and verdict.seconds > 0
    capped = V.validate(SPEC, baseline, {PATH: _bug(source)}, timeout=60, runs=1, max_fail_to_pass=1)
    assert (capped.kept, capped.kind, capped.reason) == (False, "breaks_too_many", "breaks 2 tests (more than 1)")


def test_a_cosmetic_change_is_dropped(source, baseline):
    verdict = V.validate(SPEC, baseline, {PATH: source + "\n# only a comment\n"}, timeout=60)
    assert (verdict.kept, verdict.kind, verdict.reason) == (False, "no_test_fails", "no test fails")
    assert verdict.fail_to_pass == ()


def test_a_change_that_breaks_the_import_is_dropped(source, baseline):
    verdict = V.validate(SPEC, baseline, {PATH: "import does_not_exist_xyz\n" + source}, timeout=60)
    assert (verdict.kept, verdict.kind) == (False, "does_not_import")
    assert "No module named 'does_not_exist_xyz'" in verdict.reason


@pytest.mark.slow
def test_an_infinite_loop_is_dropped_as_a_timeout(source, baseline):
    hang = source.replace("        length = len(value)\n", "        length = len(value)\n        while True:\n"
                          "            pass\n", 1)
    start = time.monotonic()
    verdict = V.validate(SPEC, baseline, {PATH: hang}, timeout=5)
    assert (verdict.kept, verdict.kind) == (False, "timeout")
    assert "within 5 s" in verdict.reason
    assert time.monotonic() - start < 15  # one run only: the second would hang too


def test_unchanged_and_outside_paths_are_dropped_without_a_run(source, baseline):
    assert V.validate(SPEC, baseline, {PATH: source}).kind == "no_change"
    assert V.validate(SPEC, baseline, {}).kind == "no_change"
    for bad in ("../escape.py", "/etc/passwd", ".git/config"):
        assert V.validate(SPEC, baseline, {bad: "x"}).kind == "bad_path"


@pytest.mark.slow
def test_validate_many_keeps_order_dedups_and_never_crashes(source, baseline):
    bug = _bug(source)
    candidates = [("bug", {PATH: bug}), ("noop", {PATH: source + "\n"}), ("dup", {PATH: bug}),
                  ("broken", {PATH: None}), ("same", {PATH: source}),
                  ("unwritable", {"src": "a folder, not a file"})]
    results = V.validate_many(SPEC, baseline, candidates, workers=3, timeout=60, progress=False)
    assert [key for key, _ in results] == ["bug", "noop", "dup", "broken", "same", "unwritable"]
    kinds = dict((key, verdict.kind) for key, verdict in results)
    assert kinds == {"bug": "kept", "noop": "no_test_fails", "dup": "duplicate", "broken": "error", "same": "no_change",
                     "unwritable": "error"}
    assert results[2][1].reason == "duplicate of 'bug' (same resulting source)"
    assert results[3][1].reason.startswith("error: TypeError")
    assert results[5][1].reason.startswith("error: IsADirectoryError")  # raised inside a worker thread
    assert V.count_kinds(results) == {"kept": 1, "no_test_fails": 1, "duplicate": 1, "error": 2, "no_change": 1}


def test_baseline_errors_name_the_package_and_what_to_do(monkeypatch):
    with pytest.raises(V.BaselineError, match=r"marshmallow 3\.13\.0 .*did not finish within 0\.05 s; raise timeout="):
        V.run_baseline(SPEC, tests=TESTS, timeout=0.05, runs=1)
    with pytest.raises(V.BaselineError, match=r"marshmallow 3\.13\.0 .*no test passes on the clean source"):
        V.run_baseline(SPEC, tests=("tests/no_such_file.py",), runs=1)

    def no_build(spec):
        raise SandboxError("pip failed; is PyPI reachable?")

    monkeypatch.setattr(V, "prepare_spec_env", no_build)
    with pytest.raises(V.BaselineError, match=r"marshmallow 3\.13\.0 .*does not build: pip failed; is PyPI"):
        V.run_baseline(SPEC, tests=TESTS)
