"""Grading through the REAL swebench harness (Docker) and in runtimes with the harness's own logic."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from srl_swe.swebench import specs
from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.grading import grade_in_runtime, grade_with_harness
from srl_swe.swebench.local_env import prepare_source
from srl_swe.swebench.specs import (
    NoEnvironmentError,
    SpecError,
    harness_record,
    harness_test_names,
    patch_files,
    spec_for,
)
from srl_swe.swebench.verdicts import from_exception, is_infra

pytestmark = pytest.mark.shared_data
M1359, M1867 = "marshmallow-code__marshmallow-1359", "marshmallow-code__marshmallow-1867"
MARSH = (M1359, M1867)
UNKNOWN = "nope__nope-1"
# Removes a line that is in no file: every one of the harness's apply fallbacks fails.
BAD_PATCH = ("diff --git a/src/marshmallow/fields.py b/src/marshmallow/fields.py\n--- a/src/marshmallow/fields.py\n"
             "+++ b/src/marshmallow/fields.py\n@@ -1,3 +1,3 @@\n-this line is not in the file\n+nor is this one\n"
             " context that is not there either\n")


@pytest.fixture(scope="module")
def tasks(local_tasks: Path) -> dict:
    return {i.instance_id: i for i in load_instances(local_tasks)}


@pytest.fixture(scope="module")
def django(shared_data: Path):
    return load_instances(shared_data / "swebench" / "lite_test_300.jsonl", ["django__django-15202"])[0]


def comment_patch(inst, tmp: Path) -> str:
    """A real patch that applies and changes nothing that matters (a comment in the fixed module)."""
    repo = tmp / inst.instance_id
    shutil.copytree(prepare_source(spec_for(inst)), repo, symlinks=True)
    target = repo / "src" / "marshmallow" / "fields.py"
    target.write_text("# a comment that fixes nothing\n" + target.read_text())
    return subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True, check=True).stdout


# -- the harness record (no Docker) ------------------------------------------------------------------------
def test_markers_match_the_harness():
    from swebench.harness import constants

    assert specs.START_TEST_OUTPUT == constants.START_TEST_OUTPUT
    assert specs.END_TEST_OUTPUT == constants.END_TEST_OUTPUT
    assert tuple(constants.NON_TEST_EXTS) == specs.NON_TEST_EXTS


def test_harness_record_fills_the_swebench5_fields(tasks):
    from swebench.harness.utils import make_test_spec

    for iid, test_file, n_p2p in ((M1359, "tests/test_fields.py", 76), (M1867, "tests/test_serialization.py", 119)):
        record = harness_record(tasks[iid])
        assert record["image"] == specs.image_name(iid)
        assert (record["log_parser"], record["eval_type"]) == ("parse_log_marshmallow", "pass_and_fail")
        script = record["eval_script"]
        assert script.startswith("#!/bin/bash\nset -uxo pipefail\ncd /testbed\n")
        assert f'echo ">>>>> Start Test Output"\npytest -rA {test_file}\necho ">>>>> End Test Output"\n' in script
        assert script.count(f"git checkout HEAD -- {test_file}") == 2
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
        assert len(json.loads(record["PASS_TO_PASS"])) == n_p2p
        # The harness finds our End marker and records the test command's own exit code right before it.
        lines = make_test_spec(record).eval_script.splitlines()
        end = lines.index('echo ">>>>> End Test Output"')
        assert lines[end - 2:end] == [f"pytest -rA {test_file}", "SWEBENCH_TEST_EXIT_CODE=$?"]


def test_test_names_are_cut_like_the_log_parser(tasks):
    raw = tasks[M1867].PASS_TO_PASS
    spaced = [n for n in raw if " " in n]
    assert len(raw) == 122 and len(spaced) == 6
    cut = harness_test_names(raw)
    assert len(cut) == 119 and not any(" " in n for n in cut)
    assert "tests/test_serialization.py::TestFieldSerialization::test_datetime_field_rfc822[value0-Sun," in cut


def test_records_with_harness_fields_are_kept_and_unknown_repos_fail_clearly(tasks, django):
    full = dataclasses.replace(django, image="img:1", eval_script="#!/bin/bash\n", log_parser="parse_log_django",
                               eval_type="pass_and_fail")
    assert harness_record(full) == full.to_record()
    # No way to make the environment: an infrastructure failure; a record without tests: the record's own error.
    with pytest.raises(NoEnvironmentError, match=r"django__django-15202: no image/eval_script/log_parser/eval_type "
                                                 r"and no build spec for django/django 4\.1; pass a dataset with "
                                                 r"swebench>=5 fields") as no_env:
        harness_record(django)
    with pytest.raises(SpecError, match="no FAIL_TO_PASS tests") as bad:
        harness_record(dataclasses.replace(tasks[M1867], FAIL_TO_PASS=()))
    assert is_infra(no_env.value) and not is_infra(bad.value)
    assert from_exception("x", bad.value).status == "error" and from_exception("x", no_env.value).infra


def test_patch_files_handles_new_and_deleted_files():
    patch = ("diff --git a/tests/a.py b/tests/a.py\n--- a/tests/a.py\n+++ b/tests/a.py\n@@ -1 +1 @@\n-x\n+y\n"
             "diff --git a/tests/new.py b/tests/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/tests/new.py\n"
             "@@ -0,0 +1 @@\n+z\n"
             "diff --git a/tests/old.py b/tests/old.py\ndeleted file mode 100644\n--- a/tests/old.py\n+++ /dev/null\n"
             "diff --git a/tests/data.json b/tests/data.json\n--- a/tests/data.json\n+++ b/tests/data.json\n")
    files = patch_files(patch)
    assert files.existing == ("tests/a.py", "tests/old.py", "tests/data.json")
    assert files.created == ("tests/new.py",)
    assert files.tests == ("tests/a.py", "tests/new.py")


# -- the real harness ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def harness(tasks, django, docker_client, tmp_path_factory):
    """Four harness runs over both tasks: gold (+ an unknown id and a record without harness fields),
    empty, wrong (applies, fixes nothing) and bad (does not apply) patches."""
    work = tmp_path_factory.mktemp("harness")
    wrong = {iid: comment_patch(tasks[iid], tmp_path_factory.mktemp("wrong")) for iid in MARSH}
    instances = [*tasks.values(), django]
    pred = lambda iid, patch: {"instance_id": iid, "model_name_or_path": "srl-swe/test", "model_patch": patch}  # noqa: E731
    plans = {
        "gold": [pred(i, tasks[i].patch) for i in MARSH] + [pred(UNKNOWN, "x"), pred(django.instance_id, django.patch)],
        "empty": [pred(M1359, ""), pred(M1867, None)],
        "wrong": [pred(i, wrong[i]) for i in MARSH],
        "bad": [pred(i, BAD_PATCH) for i in MARSH],
    }
    out, seconds = {}, {}
    for run_id, preds in plans.items():
        start = time.perf_counter()
        out[run_id] = grade_with_harness(preds, instances, run_id=run_id, workdir=work, max_workers=2, timeout=600)
        seconds[run_id] = time.perf_counter() - start
    return {"results": out, "seconds": seconds, "work": work, "plans": plans, "instances": instances,
            "wrong": wrong}


@pytest.mark.slow
def test_gold_resolves_both_tasks_and_bad_ids_are_per_instance_errors(harness, django):
    res = harness["results"]["gold"]
    assert list(res) == [M1359, M1867, UNKNOWN, django.instance_id]
    for iid in MARSH:
        assert (res[iid].status, res[iid].resolved, res[iid].error) == ("resolved", True, None)
        assert res[iid].report["patch_successfully_applied"] is True
    assert res[UNKNOWN].status == "error" and "unknown instance id" in res[UNKNOWN].error
    # No way to make its environment here: the environment's failure, not the patch's (retried by a rerun).
    assert res[django.instance_id].status == "infra_error" and res[django.instance_id].infra
    assert "no build spec for django/django 4.1" in res[django.instance_id].error
    saved = json.loads((harness["work"] / "gold.results.json").read_text())
    assert {k: v["status"] for k, v in saved.items()} == {k: v.status for k, v in res.items()}


@pytest.mark.slow
def test_harness_test_names_match_the_log_parser(harness, tasks):
    from swebench.harness.log_parsers import PARSER_REGISTRY

    for iid in MARSH:
        status = harness["results"]["gold"][iid].report["tests_status"]
        f2p, p2p = harness_test_names(tasks[iid].FAIL_TO_PASS), harness_test_names(tasks[iid].PASS_TO_PASS)
        assert status["FAIL_TO_PASS"] == {"success": f2p, "failure": []}
        assert status["PASS_TO_PASS"] == {"success": p2p, "failure": []}
        log = harness["work"] / "logs/run_evaluation/gold/srl-swe__test" / iid / "test_output.txt"
        parsed = PARSER_REGISTRY["parse_log_marshmallow"](log.read_text(), None)
        assert set(f2p + p2p) <= set(parsed)
        assert not any(name in parsed for name in tasks[iid].PASS_TO_PASS if " " in name)


@pytest.mark.slow
def test_empty_wrong_and_unappliable_patches(harness):
    results = harness["results"]
    for iid in MARSH:
        assert (results["empty"][iid].status, results["empty"][iid].resolved) == ("empty_patch", False)
        wrong = results["wrong"][iid]
        assert (wrong.status, wrong.resolved, wrong.error) == ("unresolved", False, None)
        assert wrong.report["patch_successfully_applied"] is True
        assert wrong.report["tests_status"]["FAIL_TO_PASS"]["failure"] == harness_test_names(
            harness["instances"][MARSH.index(iid)].FAIL_TO_PASS)
        bad = results["bad"][iid]
        assert (bad.status, bad.resolved, bad.report) == ("error", False, None)
        assert bad.error.startswith("patch does not apply")
        assert "Hunk #1 FAILED" in bad.error


@pytest.mark.slow
def test_rerun_skips_finished_instances_and_gives_the_same_results(harness):
    work = harness["work"]
    for run_id in ("gold", "wrong"):
        reports = sorted((work / "logs/run_evaluation" / run_id).glob("*/*/report.json"))
        assert len(reports) == 2
        harness_log = work / f"{run_id}.harness.log"
        mtimes = [p.stat().st_mtime_ns for p in [*reports, harness_log]]
        start = time.perf_counter()
        again = grade_with_harness(harness["plans"][run_id], harness["instances"], run_id=run_id, workdir=work)
        took = time.perf_counter() - start
        assert again == harness["results"][run_id]
        # Nothing re-graded: each report graded this very patch, so the harness is not even started (its log
        # is rewritten whenever it is).
        assert [p.stat().st_mtime_ns for p in [*reports, harness_log]] == mtimes
        assert took < 5.0


# -- grading in a runtime with the harness's logic -----------------------------------------------------------
@pytest.mark.slow
def test_grade_in_local_runtime(tasks, tmp_path):
    m1867 = tasks[M1867]
    gold = grade_in_runtime(m1867, m1867.patch, "local")
    assert (gold.status, gold.resolved) == ("resolved", True)
    assert len(gold.report["tests_status"]["PASS_TO_PASS"]["success"]) == 119
    noop = grade_in_runtime(m1867, comment_patch(m1867, tmp_path), "local")
    assert (noop.status, noop.resolved) == ("unresolved", False)
    assert noop.report["tests_status"]["FAIL_TO_PASS"]["failure"] == list(m1867.FAIL_TO_PASS)
    bad = grade_in_runtime(m1867, BAD_PATCH, "local")
    assert bad.status == "error" and bad.error.startswith("patch does not apply")
    assert grade_in_runtime(m1867, "", "local").status == "empty_patch"
    assert grade_in_runtime(tasks[M1359], tasks[M1359].patch, "local").resolved is True


@pytest.mark.slow
def test_grade_in_docker_runtime_agrees_with_the_harness(harness, tasks, django):
    for iid, run_id in ((M1867, "gold"), (M1359, "wrong")):
        patch = harness["plans"][run_id][MARSH.index(iid)]["model_patch"]
        got = grade_in_runtime(tasks[iid], patch, "docker")
        assert got == harness["results"][run_id][iid]  # same status and the very same report
    result = grade_in_runtime(django, django.patch, "docker")
    assert result.status == "infra_error" and "no build spec for django/django 4.1" in result.error
