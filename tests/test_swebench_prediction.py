"""The one SWE-bench prediction record (make / read / serialise), the grader choice, and task sandboxes looked
up through the runtime registry (no Docker, no task build: the checks that need neither)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from srl_swe.runtime import UnknownRuntimeError, make_runtime
from srl_swe.runtime.base import SandboxError
from srl_swe.runtime.local import LocalRuntime
from srl_swe.swebench.grading import GRADERS, default_grader, grade_patch
from srl_swe.swebench.instance import SWEInstance
from srl_swe.swebench.prediction import Prediction, PredictionError, make_prediction, read_prediction
from srl_swe.swebench.runtimes import task_runtime

INSTANCE = SWEInstance("owner__repo-1", "owner/repo", "abc123", "It breaks.")


def test_make_prediction_normalises_and_serialises_in_swebench_order():
    p = make_prediction("owner__repo-1", None, None)
    assert p.to_dict() == {"instance_id": "owner__repo-1", "model_name_or_path": "None", "model_patch": ""}
    q = make_prediction("owner__repo-1", "diff\n", "m", exit_status="submitted", error=None, seconds=1.5)
    assert list(q.to_dict()) == ["instance_id", "model_name_or_path", "model_patch", "exit_status", "error",
                                 "seconds"]
    assert q.to_dict(extra=False) == {"instance_id": "owner__repo-1", "model_name_or_path": "m",
                                      "model_patch": "diff\n"}
    assert (q.exit_status, q.error, p.exit_status) == ("submitted", None, None)
    assert read_prediction(json.loads(json.dumps(q.to_dict()))) == q  # a file line reads back as the same record
    assert read_prediction(q) is q


def test_read_prediction_is_as_tolerant_as_swebench_and_says_what_is_wrong():
    got = read_prediction({"instance_id": "a", "model_patch": None, "mode": "oracle-file"})
    assert got == Prediction("a", "None", "", {"mode": "oracle-file"})
    with pytest.raises(PredictionError, match="prediction has no instance_id") as no_id:
        read_prediction({"model_patch": "diff\n"})
    assert no_id.value.instance_id is None
    with pytest.raises(PredictionError, match="model_patch must be a string, got int") as bad_patch:
        read_prediction({"instance_id": "a", "model_patch": 3})
    assert bad_patch.value.instance_id == "a"
    for record in ([1, 2], {"instance_id": ""}, {"instance_id": 7}):
        with pytest.raises(PredictionError, match="no instance_id"):
            read_prediction(record)


def test_default_grader_and_grade_patch():
    assert GRADERS == ("harness", "runtime")
    assert (default_grader("docker"), default_grader("local")) == ("harness", "runtime")
    empty = make_prediction(INSTANCE.instance_id, "", "m")
    # An empty patch is graded without any sandbox (nothing is prepared for this made-up task).
    result = grade_patch(INSTANCE, empty, runtime="local")
    assert (result.instance_id, result.status, result.resolved) == (INSTANCE.instance_id, "empty_patch", False)
    with pytest.raises(ValueError, match="grader='judge'"):
        grade_patch(INSTANCE, empty, runtime="local", grader="judge")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "README.md").write_text("hello\n")
    subprocess.run(["git", "init", "-q"], cwd=src, check=True)
    return src


def test_task_runtime_prepares_only_what_is_missing(repo: Path):
    with task_runtime("local", repo_dir=repo, env={"SRL_X": "1"}) as rt:  # prepared already: used as given
        assert isinstance(rt, LocalRuntime) and rt.execute("cat README.md; echo $SRL_X").output == "hello\n1\n"
    with pytest.raises(UnknownRuntimeError, match=r"unknown runtime 'podman'.*choose one of: docker, local"):
        task_runtime("podman", INSTANCE)  # before any image or repository is prepared for it
    with pytest.raises(SandboxError, match="repo_dir= or a SWE-bench instance"):
        task_runtime("local")
    dotted = "srl_swe.runtime.local.LocalRuntime"  # a backend outside the registry: constructed as given
    with make_runtime(dotted, repo_dir=repo) as rt:
        assert rt.read_file("README.md") == "hello\n"
    with task_runtime(dotted, repo_dir=repo) as rt:
        assert rt.name == "local"
    with pytest.raises(SandboxError, match="has no task preparation"):
        task_runtime(dotted, INSTANCE, repo_dir=repo)
