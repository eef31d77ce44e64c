"""Task sources, local envs and task images for the two marshmallow tasks (real downloads, real Docker)."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from srl_swe.swebench import images as images_mod
from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.images import LABEL, ImageBuildError, build_image, ensure_image
from srl_swe.swebench.local_env import download_sdist, prepare_local, prepare_source, source_commit
from srl_swe.swebench.specs import SPECS, SpecError, image_name, spec_for

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
EXPECTED_TAGS = {
    "marshmallow-code__marshmallow-1359": "swebench/sweb.eval.x86_64.marshmallow-code_1776_marshmallow-1359:latest",
    "marshmallow-code__marshmallow-1867": "swebench/sweb.eval.x86_64.marshmallow-code_1776_marshmallow-1867:latest",
}


@pytest.fixture(scope="module")
def tasks(local_tasks: Path):
    return load_instances(local_tasks)


def test_image_names_follow_the_harness():
    for iid, tag in EXPECTED_TAGS.items():
        assert image_name(iid) == tag
    assert image_name("Org__Repo-12") == "swebench/sweb.eval.x86_64.org_1776_repo-12:latest"


def test_source_commit_is_deterministic(tmp_path: Path):
    spec = SPECS[("marshmallow-code/marshmallow", "3.13")]
    default = prepare_source(spec)
    # A second cache with the same sdist (copied, to skip the download) must give the very same commit.
    (tmp_path / "sdists").mkdir()
    shutil.copy(download_sdist(spec), tmp_path / "sdists")
    other = prepare_source(spec, cache=tmp_path)
    assert other != default
    assert source_commit(other) == source_commit(default)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=other, capture_output=True, text=True).stdout
    assert status == ""
    assert (other / "src" / "marshmallow" / "fields.py").is_file()


def test_local_env_runs_the_repo_code_with_the_venv(tasks):
    from srl_swe.runtime.local import LocalRuntime

    env = prepare_local(tasks[1])
    assert source_commit(env.repo_dir) == source_commit(prepare_source(spec_for(tasks[1])))
    with LocalRuntime(env.repo_dir, env=env.env, timeout=300) as rt:
        # From outside the repo root too: PYTHONPATH names /testbed/src, mapped onto the runtime's copy.
        probe = rt.execute("cd /tmp && python -c 'import marshmallow, pytest, sys; print(marshmallow.__file__); "
                           "print(sys.prefix); print(marshmallow.__version__)'")
        mod, prefix, version = probe.output.split()
        assert mod == "/testbed/src/marshmallow/__init__.py"
        assert prefix == env.env["VIRTUAL_ENV"] and version == "3.13.0"
        tests = rt.execute("python -m pytest -q -p no:cacheprovider tests/test_serialization.py")
        assert tests.exit_code == 0, tests.output[-2000:]
        assert "passed" in tests.output.splitlines()[-1]
        # pytest's caches stay out of `git status` (listed in .git/info/exclude), so a submitted diff is clean.
        rt.execute("python -m pytest -q tests/test_utils.py")
        assert rt.execute("git status --porcelain").output == ""


def test_no_spec_means_a_clear_error(shared_data: Path, docker_client):
    (django,) = load_instances(shared_data / "swebench" / "lite_test_300.jsonl", ["django__django-15202"])
    with pytest.raises(SpecError, match=r"no build spec for django/django 4\.1"):
        prepare_local(django)
    # An id no registry has, so the pull fails with or without Docker Hub (and never downloads gigabytes).
    missing = dataclasses.replace(django, instance_id="srl-swe__no-such-task-1")
    with pytest.raises(SpecError, match=r"image swebench/sweb.eval.x86_64.srl-swe_1776_no-such-task-1:latest is "
                                        r"not available locally, pulling it failed .* no build spec for django/django"):
        ensure_image(missing, client=docker_client)


def test_ensure_image_builds_once_and_reuses(tasks, docker_client):
    for inst in tasks:
        tag = ensure_image(inst, client=docker_client)
        assert tag == EXPECTED_TAGS[inst.instance_id]
        image = docker_client.images.get(tag)
        start = time.perf_counter()
        assert ensure_image(inst, client=docker_client) == tag
        warm = time.perf_counter() - start
        assert docker_client.images.get(tag).id == image.id  # reused, not rebuilt
        assert warm < 2.0, f"warm ensure_image took {warm:.2f} s"
        assert image.attrs["Config"]["StopSignal"] == "SIGKILL"
        assert image.labels[LABEL]


@pytest.mark.parametrize("index", [0, 1])
def test_image_holds_the_committed_source_and_test_env(tasks, docker_client, index):
    inst = tasks[index]
    spec = spec_for(inst)
    tag = ensure_image(inst, client=docker_client)
    script = ("cd /testbed && git status --porcelain && git rev-parse HEAD && python --version && which pytest && "
              "python -c 'import marshmallow; print(marshmallow.__file__, marshmallow.__version__)'")
    out = docker_client.containers.run(tag, ["bash", "-c", script], remove=True, network_mode="none").decode()
    head, pyver, pytest_bin, module = out.strip().splitlines()
    assert head == source_commit(prepare_source(spec))  # clean tree (no porcelain lines) at the source commit
    assert pyver.startswith("Python 3.11.")
    assert pytest_bin == "/opt/venv/bin/pytest"
    assert module == f"/testbed/src/marshmallow/__init__.py {spec.package_version}"


def test_changed_spec_changes_the_build_key(tasks, docker_client):
    spec = spec_for(tasks[1])
    key = images_mod._Plan(spec, docker_client).key
    assert images_mod._Plan(spec, docker_client).key == key
    assert images_mod._Plan(dataclasses.replace(spec, test_cmd="pytest -rA -x"), docker_client).key != key


def test_parallel_callers_build_an_image_once(tasks, docker_client, monkeypatch):
    tag = "srl-swe/test-lock:latest"
    inst = dataclasses.replace(tasks[1], image=tag)
    with contextlib.suppress(Exception):  # left over from an interrupted run, or not there: either is fine
        docker_client.images.remove(tag, force=True)
    built = []
    real_build = images_mod.build_image

    def counting_build(*args, **kwargs):
        built.append(args[1])
        return real_build(*args, **kwargs)

    monkeypatch.setattr(images_mod, "build_image", counting_build)
    results = []
    threads = [threading.Thread(target=lambda: results.append(ensure_image(inst))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert results == [tag] * 3
    assert built == [tag]
    docker_client.images.remove(tag, force=True)


def test_failing_build_raises_with_the_log(tasks, docker_client):
    spec = dataclasses.replace(spec_for(tasks[1]), apt_packages=("python3", "srl-swe-no-such-package"))
    tag = "srl-swe/test-broken:latest"
    with pytest.raises(ImageBuildError, match=r"building image srl-swe/test-broken:latest .*full build log: ") as exc:
        build_image(images_mod._Plan(spec, docker_client), tag, docker_client)
    log = Path(str(exc.value).rsplit("full build log: ", 1)[1])
    assert log.is_file()
    assert "Unable to locate package srl-swe-no-such-package" in log.read_text()
