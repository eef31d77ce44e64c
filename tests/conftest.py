"""Shared fixtures. Tests that read ../shared/data find it through SRL_SWE_DATA (default ../shared/data);
without it they skip with the reason, except under CI=true, where a missing folder is a failure."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from srl_swe.paths import shared_data_dir

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` as a module (the benchmarks are scripts, not part of the package); one that a
    benchmark already imported (its ``_`` helpers) is that same module, not a second copy."""
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(REPO / "benchmarks" / f"{name}.py"):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses/typing look modules up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if not path.is_dir():
        reason = f"shared data folder {path} not found (set SRL_SWE_DATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def trajectories_dir(shared_data: Path) -> Path:
    return shared_data / "trajectories"


@pytest.fixture(scope="session")
def bundled_swe() -> Path:
    return REPO / "trajectories" / "swe" / "bundled.jsonl"


@pytest.fixture(scope="session")
def bundled_math() -> Path:
    return REPO / "trajectories" / "math" / "bundled.jsonl"


@pytest.fixture(scope="session")
def local_tasks(shared_data: Path) -> Path:
    """The two real marshmallow bug fixes (instance.json, gold.patch, test.patch per task)."""
    return shared_data / "local_tasks"


@pytest.fixture(scope="session")
def docker_client():
    """A live Docker client. Without a daemon the test skips with the reason, except under CI=true, where
    .ci/run starts one and a missing daemon is a failure."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # no SDK, no socket, daemon down: all mean "no Docker here"
        reason = f"no Docker daemon ({type(exc).__name__}: {exc}); start one with scripts/start_dockerd.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return client


#: A handful of generated tasks (issue 12): bugs in marshmallow 3.13's fields.py that tests/test_serialization.py
#: catches (a suite cut so that validating 8 candidates takes about 30 s on 2 cores). Seed 1 keeps 2 of 8, one in
#: each split.
GENERATED = {"n": 8, "seed": 1, "tests": ("tests/test_serialization.py",), "only": ("src/marshmallow/fields.py",)}


@pytest.fixture(scope="session")
def generated_tasks(tmp_path_factory) -> Path:
    """The folder `srl-swe tasks make` writes (tasks.jsonl, kept.jsonl, splits.json, ...), made once per session."""
    from srl_swe.swebench.specs import SPECS
    from srl_swe.taskgen.run import generate

    out = tmp_path_factory.mktemp("generated-tasks")
    generate(SPECS[("marshmallow-code/marshmallow", "3.13")], out, workers=2, progress=False, **GENERATED)
    return out
