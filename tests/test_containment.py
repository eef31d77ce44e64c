"""Hostile actions inside the docker runtime stay contained and the run goes on (issue 4, containment).

Each test runs a real attack in a real container with a short timeout, then checks that the same runtime
(or, after ``rm -rf /``, a new one from the same image) still works and that the host is untouched.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from srl_swe.runtime.docker import DockerRuntime
from srl_swe.runtime.images import LABEL, OWNER_LABEL, cleanup_stale, ensure_base_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image(docker_client) -> str:
    return ensure_base_image(docker_client)


def _process_count(rt: DockerRuntime) -> int:
    return int(rt.execute("n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n").output)


def test_network_is_off(image, docker_client):
    with DockerRuntime(image, client=docker_client, timeout=5) as rt:
        r = rt.execute("echo hi > /dev/tcp/1.1.1.1/80 && echo CONNECTED")
        assert r.exit_code != 0 and "CONNECTED" not in r.output and not r.timed_out
        assert "unreachable" in r.output.lower()
        r = rt.execute("getent hosts pypi.org")
        assert r.exit_code != 0 and r.output == ""
        assert rt.execute("echo next").output == "next\n"


def test_infinite_loop_times_out_and_runtime_stays_usable(image, docker_client):
    with DockerRuntime(image, client=docker_client) as rt:
        start = time.monotonic()
        r = rt.execute("while :; do :; done", timeout=2)
        assert r.timed_out and r.exit_code is None
        assert time.monotonic() - start < 5
        assert rt.execute("echo next").output == "next\n"
        assert _process_count(rt) <= 4  # init, its sleep, this shell (+ at most one racing sleep)


def test_fork_bomb_is_stopped_and_next_command_works(image, docker_client):
    with DockerRuntime(image, client=docker_client, pids_limit=128) as rt:
        start = time.monotonic()
        r = rt.execute(":(){ :|:& };:", timeout=3)
        took = time.monotonic() - start
        # Either the timeout fired or the command returned and left the bomb running at the pids limit;
        # both end with every bomb process killed.
        assert r.timed_out or "process limit" in r.output, r
        assert took < 12, took
        start = time.monotonic()
        assert rt.execute("echo alive").output == "alive\n"
        assert time.monotonic() - start < 2
        assert _process_count(rt) <= 4
        # A bomb hidden behind a foreground command is killed by the timeout instead.
        r = rt.execute("bash -c ':(){ :|:& };:'; sleep 100", timeout=3)
        assert r.timed_out
        assert rt.execute("echo alive2").output == "alive2\n"


def test_memory_hog_is_killed_and_runtime_stays_usable(image, docker_client):
    with DockerRuntime(image, client=docker_client, memory="64m") as rt:
        r = rt.execute("x=$(head -c 300000000 /dev/zero | tr '\\0' x); echo survived ${#x}", timeout=20)
        assert "survived" not in r.output and r.exit_code != 0 and not r.timed_out
        assert rt.execute("echo next").output == "next\n"


def test_rm_rf_root_stays_inside_the_container(image, docker_client, tmp_path: Path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("host file")
    with DockerRuntime(image, client=docker_client) as rt:
        r = rt.execute("rm -rf / --no-preserve-root", timeout=30)
        assert not r.timed_out
        # The container itself is wrecked (no /bin/bash, no /testbed): the next command reports an error
        # instead of hanging or crashing the caller.
        assert not rt.execute("echo still-here").ok
    assert sentinel.read_text() == "host file"
    assert docker_client.ping()
    # The run continues with the next task: a new container from the same image is intact.
    with DockerRuntime(image, client=docker_client) as fresh:
        assert fresh.execute("ls /bin/bash && echo ok").output == "/bin/bash\nok\n"


_CHILD = textwrap.dedent("""
    import signal, sys
    from srl_swe.runtime.docker import DockerRuntime
    if sys.argv[2:] == ["chain"]:  # a handler installed before the runtime's must still run
        def on_term(signum, frame):
            print("chained", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, on_term)
    with DockerRuntime(sys.argv[1], timeout=60) as rt:
        print(rt.container_name, flush=True)
        rt.execute("sleep 60")
""")


def _owned_by(client, pid: int) -> list:
    owner = f"{socket.gethostname()}:{pid}"
    return client.containers.list(all=True, filters={"label": [f"{LABEL}=1", f"{OWNER_LABEL}={owner}"]})


@pytest.mark.parametrize(("sig", "mode"), [(signal.SIGINT, ""), (signal.SIGTERM, ""), (signal.SIGTERM, "chain")])
def test_interrupted_run_leaves_no_container(image, docker_client, sig, mode):
    # SIGINT at its default in the child, whatever this process inherited: a shell starts background jobs with
    # SIGINT ignored, and a Python started so never raises KeyboardInterrupt (the child then ran to the end).
    child = subprocess.Popen([sys.executable, "-c", _CHILD, image, *([mode] if mode else [])],
                             stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        name = child.stdout.readline().strip()
        assert name.startswith("srl-swe-")
        assert [c.name for c in _owned_by(docker_client, child.pid)] == [name]
        time.sleep(0.5)  # let it block inside execute("sleep 60")
        child.send_signal(sig)
        rest, _ = child.communicate(timeout=90)  # removing the container: seconds, more on a loaded machine
    finally:
        if child.poll() is None:
            child.kill()
    # Interrupted, not finished: killed by the signal (Python re-raises an uncaught KeyboardInterrupt as
    # SIGINT; our SIGTERM handler re-raises the default), or the previously installed handler ran last.
    assert child.returncode == (-sig if mode == "" else 3)
    assert ("chained" in rest) == (mode == "chain")
    assert _owned_by(docker_client, child.pid) == []


def test_sigkilled_run_is_cleaned_by_cleanup_stale(image, docker_client):
    child = subprocess.Popen([sys.executable, "-c", _CHILD, image], stdout=subprocess.PIPE, text=True)
    try:
        name = child.stdout.readline().strip()
        child.kill()  # no handler can run: the container is left behind...
        child.wait(timeout=20)
        assert [c.name for c in _owned_by(docker_client, child.pid)] == [name]
        assert name in cleanup_stale(docker_client)  # ...until the next run sweeps it
        assert _owned_by(docker_client, child.pid) == []
    finally:
        if child.poll() is None:
            child.kill()
        for c in _owned_by(docker_client, child.pid):
            c.remove(force=True)
