"""The docker runtime against the real daemon and the project's base image (bash + coreutils, no git/python)."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from srl_swe.runtime import make_runtime
from srl_swe.runtime.base import DockerUnavailableError, Runtime, SandboxError
from srl_swe.runtime.docker import DockerRuntime
from srl_swe.runtime.images import LABEL, OWNER_LABEL, cleanup_stale, ensure_base_image
from srl_swe.runtime.images import docker_client as connect
from srl_swe.swebench.runtimes import task_runtime


@pytest.fixture(scope="module")
def image(docker_client) -> str:
    return ensure_base_image(docker_client)


@pytest.fixture
def rt(image, docker_client):
    with DockerRuntime(image, timeout=10, client=docker_client) as runtime:
        yield runtime


def _exists(client, name: str) -> bool:
    import docker.errors

    try:
        client.containers.get(name)
    except docker.errors.NotFound:
        return False
    return True


def test_protocol_factory_limits_and_labels(image, docker_client):
    with make_runtime("docker", image=image, client=docker_client, memory="256m", cpus=0.5, pids_limit=64) as rt:
        assert isinstance(rt, Runtime) and rt.name == "docker"
        attrs = docker_client.api.inspect_container(rt.container_name)
        host = attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["Memory"] == 256 * 1024**2 and host["MemorySwap"] == 256 * 1024**2
        assert host["NanoCpus"] == 500_000_000 and host["PidsLimit"] == 64
        assert attrs["Config"]["Labels"][LABEL] == "1"
        assert attrs["Config"]["Labels"][OWNER_LABEL].endswith(f":{os.getpid()}")
    with pytest.raises(SandboxError, match="image= or a SWE-bench instance"):
        task_runtime("docker", client=docker_client)


def test_execute_output_exit_codes_cwd_env(image, docker_client):
    with DockerRuntime(image, env={"SRL_TEST_VAR": "xyz"}, client=docker_client) as rt:
        r = rt.execute("pwd; echo out; echo err >&2; echo $SRL_TEST_VAR; exit 3")
        assert r.output == "/testbed\nout\nerr\nxyz\n"
        assert r.exit_code == 3 and not r.timed_out and not r.ok
        r = rt.execute("printf 'caf\\xc3\\xa9 \\xff\\n'")  # invalid UTF-8 is replaced, not an error
        assert r.output == "café \ufffd\n" and r.ok
        assert rt.execute("cd sub 2>/dev/null || echo no-sub").output == "no-sub\n"
        # Each command is a fresh shell in /testbed (like the trajectories' bash tool, state is the files).
        rt.execute("mkdir -p sub && cd sub")
        assert rt.execute("pwd").output == "/testbed\n"


def test_files_round_trip_modes_symlinks_and_missing(rt: DockerRuntime):
    text = "naïve — 日本語 ✓\n\tindent\x00nul\n"
    rt.write_file("new/deep/dir/f.txt", text)
    assert rt.read_file("/testbed/new/deep/dir/f.txt") == text
    assert rt.execute("wc -c < new/deep/dir/f.txt").output.strip() == str(len(text.encode()))
    # Overwriting keeps the file's mode (an editor save, not a re-creation).
    rt.write_file("run.sh", "echo one\n")
    rt.execute("chmod 755 run.sh")
    rt.write_file("/testbed/run.sh", "echo two\n")
    assert rt.execute("./run.sh && stat -c %a run.sh").output == "two\n755\n"
    rt.execute("ln -s new/deep/dir/f.txt link.txt")
    assert rt.read_file("link.txt") == text
    rt.write_file("/tmp/outside.txt", "abs")
    assert rt.read_file("/tmp/outside.txt") == "abs"
    with pytest.raises(FileNotFoundError, match=r"nope/missing\.py"):
        rt.read_file("nope/missing.py")
    with pytest.raises(IsADirectoryError):
        rt.read_file("new")


@pytest.mark.slow
def test_timeout_kills_everything_and_next_command_works(rt: DockerRuntime):
    start = time.monotonic()
    # The setsid child escapes coreutils timeout's process group; the kill after the timeout must get it.
    r = rt.execute("setsid bash -c 'sleep 2; touch /tmp/late' & sleep 100", timeout=1)
    took = time.monotonic() - start
    assert r.timed_out and r.exit_code is None and not r.ok
    assert took < 4, took
    assert rt.execute("echo next").output == "next\n"
    time.sleep(1.5)
    assert rt.execute("ls /tmp/late 2>&1; echo $?").output.endswith("2\n")


@pytest.mark.slow
def test_background_child_holding_output_does_not_block(rt: DockerRuntime):
    start = time.monotonic()
    r = rt.execute("sleep 30 & echo started", timeout=20)
    assert r.output == "started\n" and r.exit_code == 0 and not r.timed_out
    # The command returns at once; the daemon delays the next exec by ~2-3 s while it gives up on the
    # child's still-open stream (dockerd behaviour, not ours), so the bound is generous.
    assert time.monotonic() - start < 6
    assert rt.execute("echo next").ok


def test_output_cap_keeps_head_and_tail(image, docker_client):
    with DockerRuntime(image, max_output=1000, client=docker_client) as rt:
        r = rt.execute("echo START; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo END")
        assert r.output.startswith("START\nxxx") and r.output.endswith("xxx\nEND\n")
        assert "bytes of output omitted" in r.output and len(r.output) < 1200
        assert r.exit_code == 0


def test_close_removes_container_and_is_idempotent(image, docker_client):
    rt = DockerRuntime(image, client=docker_client)
    assert _exists(docker_client, rt.container_name)
    rt.close()
    rt.close()
    assert not _exists(docker_client, rt.container_name)
    with pytest.raises(SandboxError, match="closed"):
        rt.execute("true")


def test_with_block_removes_container_on_exception(image, docker_client):
    with pytest.raises(ZeroDivisionError), DockerRuntime(image, client=docker_client) as rt:
        name = rt.container_name
        assert rt.execute("true").ok
        1 / 0  # noqa: B018
    assert not _exists(docker_client, name)


def test_restart_keeps_files(rt: DockerRuntime):
    rt.write_file("kept.txt", "still here")
    rt._restart()  # the fallback when a container cannot even fork
    assert rt.restarts == 1
    assert rt.read_file("kept.txt") == "still here"
    assert rt.execute("cat kept.txt").output == "still here"


def test_missing_image_is_a_clear_error(docker_client):
    with pytest.raises(SandboxError, match="not found locally; build it first"):
        DockerRuntime("srl-swe/does-not-exist:never", client=docker_client)
    leftovers = docker_client.containers.list(all=True, filters={"ancestor": "srl-swe/does-not-exist:never"})
    assert leftovers == []


def test_cleanup_stale_removes_only_dead_owners(image, docker_client):
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    orphan = docker_client.containers.create(
        image, ["sleep", "1"], labels={LABEL: "1", OWNER_LABEL: f"{host}:{dead.pid}"}, network_mode="none",
    )
    try:
        with DockerRuntime(image, client=docker_client) as live:
            removed = cleanup_stale(docker_client)
            assert orphan.name in removed
            assert live.container_name not in removed and _exists(docker_client, live.container_name)
        assert not _exists(docker_client, orphan.name)
    finally:
        if _exists(docker_client, orphan.name):
            orphan.remove(force=True)


def test_no_daemon_says_how_to_start_one(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with pytest.raises(DockerUnavailableError) as err:
        connect()
    assert "scripts/start_dockerd.sh" in str(err.value) and "--runtime local" in str(err.value)
    with pytest.raises(DockerUnavailableError):
        make_runtime("docker", image="srl-swe/base:bookworm")
