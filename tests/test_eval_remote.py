"""Evaluation beyond the local daemon: sandboxes on the Docker daemon that ``DOCKER_HOST`` names, and the
harness's Modal backend passed through (refused here, with every reason, since this machine has no Modal).

A second, private daemon on its own socket and data root stands in for a remote one: it shares no image,
container or storage with the main daemon, and srl-swe reaches it only through ``DOCKER_HOST`` (every client is
``docker.from_env``: the runtimes, the image checks, and the harness subprocess, which inherits the variable).
It gets the task's images by ``docker save | docker load`` from the main daemon (a build there would take
minutes); what ran is read from each daemon's own event log: every container of the run was created on the
second daemon and none on the main one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from private_dockerd import needs_btrfs_root, private_daemon

from srl_swe.cli import main
from srl_swe.runtime.images import BASE_IMAGE, owner_label
from srl_swe.runtime.sandbox import _daemon_key, quota_cache_path
from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.modal_backend import modal_problems
from srl_swe.swebench.specs import harness_record

REPO = Path(__file__).resolve().parents[1]
TASK = "marshmallow-code__marshmallow-1867"
FIX = {"command": "str_replace", "path": "/testbed/src/marshmallow/fields.py",
       "old_str": "        return int(value.total_seconds() / base_unit.total_seconds())",
       "new_str": "        return value // base_unit"}


@pytest.fixture(scope="module")
def remote(tmp_path_factory, local_tasks, docker_client):
    """(environment reaching the second daemon, a client of it, the task's image), the images loaded into it."""
    import docker
    from srl_swe.swebench.images import ensure_image

    needs_btrfs_root()
    image = ensure_image(load_instances(local_tasks, [TASK])[0], client=docker_client)  # on the main daemon
    with private_daemon(tmp_path_factory.mktemp("dockerd")) as env:
        save = subprocess.Popen(["docker", "save", BASE_IMAGE, image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "load", "-q"], stdin=save.stdout, env=env, capture_output=True, text=True,
                              timeout=300)
        save.stdout.close()
        assert save.wait() == 0 and load.returncode == 0, load.stderr
        client = docker.DockerClient(base_url=env["DOCKER_HOST"], timeout=300)
        try:
            yield env, client, image
        finally:
            quota_cache_path(client.info()).unlink(missing_ok=True)  # srl-swe's verdict on a daemon about to go
            client.close()


def _created(client, since: float, until: float) -> dict[str, dict]:
    """The containers a daemon created between ``since`` and ``until``: name -> the event's attributes."""
    events = client.events(since=int(since), until=int(until) + 1, decode=True,
                           filters={"type": "container", "event": "create"})
    return {e["Actor"]["Attributes"]["name"]: e["Actor"]["Attributes"] for e in events}


def _check_only_remote(remote_client, main_client, since: float, grading: str) -> dict[str, dict]:
    """Every container of the run (the agent's or rollout's sandbox, the harness's grading container named
    ``grading``...) was created on the second daemon, none on the main one, and none is left."""
    until = time.time()
    there, here = _created(remote_client, since, until), _created(main_client, since, until)
    assert any(n.startswith(grading) for n in there), sorted(there)
    assert any(n.startswith("srl-swe-") for n in there), sorted(there)  # the sandbox the tools ran in
    assert not set(there) & set(here) and not any(n.startswith(grading) for n in here)
    assert not [n for n, a in here.items() if a.get("srl-swe.owner") == owner_label()]  # nothing of this process
    assert remote_client.containers.list(all=True, filters={"label": "srl-swe=1"}) == []
    return there


@pytest.mark.slow
def test_eval_swebench_runs_its_sandboxes_where_docker_host_says(remote, local_tasks, docker_client, tmp_path,
                                                                 monkeypatch):
    env, client, image = remote
    ids = {tag: client.images.get(tag).id for tag in (BASE_IMAGE, image)}
    run_id, since = f"remote-{uuid.uuid4().hex[:8]}", time.time()
    monkeypatch.setenv("DOCKER_HOST", env["DOCKER_HOST"])
    replay = REPO / "trajectories" / "swe-exec"
    assert main(["eval", "swebench", "--model", f"replay:{replay}", "--dataset", str(local_tasks), "--instances", TASK,
                 "--runtime", "docker", "--out", str(tmp_path / "o"), "--run-id", run_id, "--quiet"]) == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert (res["resolved"], res["instances"][TASK]["exit_status"]) == (1, "submitted")
    _check_only_remote(client, docker_client, since, f"sweb.eval.{TASK.lower()}.{run_id}")
    assert {tag: client.images.get(tag).id for tag in ids} == ids  # the loaded images were used, not rebuilt
    # Each daemon has its own quota verdict, in this process and on disk (even where both have one ID: Docker
    # before 23 takes it from /etc/docker/key.json), and the sandboxes on the second one had a working quota.
    assert _daemon_key(client) != _daemon_key(docker_client)
    assert quota_cache_path(client.info()) != quota_cache_path(docker_client.info())
    assert json.loads(quota_cache_path(client.info()).read_text())["kind"] in ("layer", "image+layer")


@pytest.mark.slow
def test_an_rlvr_rollout_runs_and_is_graded_where_docker_host_says(remote, local_tasks, docker_client, tmp_path,
                                                                   monkeypatch):
    """The environment `srl-swe train` gives TRL for SWE RLVR: a rollout's tools and its grading."""
    from srl_swe.train.exec_env import exec_environment_factory

    env, client, _ = remote
    since = time.time()
    monkeypatch.setenv("DOCKER_HOST", env["DOCKER_HOST"])
    rollout = exec_environment_factory(load_instances(local_tasks, [TASK]), runtime="docker",
                                       workdir=str(tmp_path))()
    rollout.reset(instance_id=TASK)
    rollout.str_replace_editor(**FIX)
    assert "+        return value // base_unit" in rollout.submit()
    assert rollout.get_reward() == 1.0 and rollout.last_grade.status == "resolved"
    _check_only_remote(client, docker_client, since, f"sweb.eval.{TASK.lower()}.rlvr-")
    assert list(tmp_path.glob(f"logs/run_evaluation/rlvr-*/*/{TASK}/report.json"))


def test_modal_is_refused_here_with_every_reason(local_tasks, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "o"
    argv = ["eval", "swebench", "--model", "gold", "--dataset", str(local_tasks), "--modal", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--modal cannot grade here" in err and "~/.modal.toml" in err
    # swebench 5.0.2's Modal image builder reads two TestSpec fields its TestSpec no longer has.
    assert "TestSpec.install_repo_script, setup_env_script" in err
    assert not out.exists()  # refused before any work
    (tmp_path / ".modal.toml").write_text("[default]\n")
    assert len(modal_problems()) == 1 and "setup_env_script" in modal_problems()[0]
    assert main([*argv[:-3], "--runtime", "local", "--modal"]) == 2
    assert "add --grader harness" in capsys.readouterr().err


def test_the_modal_flag_reaches_the_harness(local_tasks, tmp_path):
    """The sandboxed harness with --modal takes the harness's Modal branch: without credentials it stops at
    swebench's own credentials check (no Docker, no network)."""
    (inst,) = load_instances(local_tasks, [TASK])
    (tmp_path / "d.jsonl").write_text(json.dumps(harness_record(inst)) + "\n")
    pred = {"instance_id": TASK, "model_name_or_path": "gold", "model_patch": inst.patch}
    (tmp_path / "p.jsonl").write_text(json.dumps(pred) + "\n")
    cmd = [sys.executable, "-m", "srl_swe.swebench.harness_sandbox", "-d", "d.jsonl", "-p", "p.jsonl", "-id", "m",
           "--modal"]
    proc = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "~/.modal.toml not found" in proc.stderr, proc.stderr[-2000:]
