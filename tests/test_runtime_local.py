"""The local runtime on a real git repository: commands, /testbed mapping, files, timeouts, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from srl_swe.runtime import RUNTIMES, UnknownRuntimeError, make_runtime
from srl_swe.runtime.base import REPO_DIR, Runtime, SandboxError
from srl_swe.runtime.local import LocalRuntime
from srl_swe.runtime.output import OutputBuffer
from srl_swe.swebench.runtimes import task_runtime


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small committed git repository."""
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (src / "README.md").write_text("hello\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        subprocess.run(cmd, cwd=src, check=True, env=env)
    return src


@pytest.fixture
def rt(repo: Path):
    with LocalRuntime(repo, timeout=10) as runtime:
        yield runtime


def test_protocol_and_factory(repo: Path):
    with make_runtime("local", repo_dir=repo) as runtime:
        assert isinstance(runtime, Runtime)
        assert runtime.name == "local"
    assert set(RUNTIMES) == {"docker", "local"}
    with pytest.raises(UnknownRuntimeError, match="docker, local"):
        make_runtime("podman")
    with pytest.raises(SandboxError, match="repo_dir= or a SWE-bench instance"):
        task_runtime("local")


def test_execute_output_exit_code_and_testbed_mapping(rt: LocalRuntime, repo: Path):
    r = rt.execute("pwd; echo out; echo err >&2; exit 3")
    assert r.output == "/testbed\nout\nerr\n"
    assert r.exit_code == 3 and not r.timed_out and not r.ok
    # /testbed in commands addresses the copy, and the copy's path never leaks into output.
    r = rt.execute("cat /testbed/README.md && cd /testbed/pkg && pwd && python3 -c 'import os; print(os.getcwd())'")
    assert r.output == "hello\n/testbed/pkg\n/testbed/pkg\n" and r.ok
    assert str(rt.root) not in rt.execute("ls -d $PWD").output
    # The copy is a real git repository (.git copied), independent of the source.
    rt.execute("echo changed > README.md")
    assert rt.execute("git status --short").output == " M README.md\n"
    assert (repo / "README.md").read_text() == "hello\n"


def test_env_is_added_to_os_environ(repo: Path):
    with LocalRuntime(repo, env={"SRL_TEST_VAR": "xyz"}) as runtime:
        assert runtime.execute("echo $SRL_TEST_VAR; test -n \"$PATH\" && echo has-path").output == "xyz\nhas-path\n"


def test_the_hosts_pytest_settings_do_not_reach_the_task(repo: Path, monkeypatch):
    # e.g. PYTEST_ADDOPTS=--durations=80 once changed a graded test run's output (and -x would change its result)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x --durations=80")
    monkeypatch.setenv("PYTEST_PLUGINS", "some_plugin")
    with LocalRuntime(repo, env={"SRL_TEST_VAR": "xyz"}) as runtime:
        out = runtime.execute("env | grep -c '^PYTEST_'; echo $SRL_TEST_VAR").output
    assert out == "0\nxyz\n"


def test_files_round_trip_and_missing(rt: LocalRuntime):
    text = "naïve — 日本語 ✓\nline2\n"
    rt.write_file("new/deep/dir/file.txt", text)
    assert rt.read_file("/testbed/new/deep/dir/file.txt") == text
    assert rt.execute("cat new/deep/dir/file.txt").output == text
    rt.write_file("/testbed/pkg/mod.py", "def f():\n    return 2\n")
    assert "+    return 2" in rt.execute("git diff").output
    with pytest.raises(FileNotFoundError, match=r"nope/missing\.py"):
        rt.read_file("nope/missing.py")
    with pytest.raises(IsADirectoryError):
        rt.read_file("pkg")


def test_timeout_kills_process_group_and_next_command_works(rt: LocalRuntime, tmp_path: Path):
    marker = tmp_path / "late"
    start = time.monotonic()
    # A background child in the same group would write the marker after 3 s if it survived the kill (3 s, not
    # less: the kill must land before it, with room for a loaded CI machine).
    r = rt.execute(f"(sleep 3; touch {marker}) & sleep 100", timeout=0.5)
    took = time.monotonic() - start
    assert r.timed_out and r.exit_code is None and not r.ok
    assert took < 3
    assert rt.execute("echo next").output == "next\n"
    time.sleep(3)
    assert not marker.exists()


def test_background_child_holding_output_does_not_block(rt: LocalRuntime):
    start = time.monotonic()
    r = rt.execute("sleep 30 & echo started", timeout=20)
    assert r.output == "started\n" and r.exit_code == 0 and not r.timed_out
    assert time.monotonic() - start < 3


def test_output_closed_before_exit_is_not_a_kill(rt: LocalRuntime):
    # EOF on the output pipe can arrive before the exit is reaped (CI hit this under load with plain
    # `pwd && ls`, reported as code -9); a command that closes its output and then exits must keep its code.
    res = rt.execute("echo hi; exec >&- 2>&-; sleep 0.5; exit 4", timeout=10)
    assert (res.output, res.exit_code, res.timed_out) == ("hi\n", 4, False)
    assert res.duration >= 0.5
    res = rt.execute("exec >&- 2>&-; sleep 30", timeout=1)  # closed its output but ran on: a timeout
    assert (res.exit_code, res.timed_out) == (None, True)
    assert res.duration < 5


def test_output_cap_keeps_head_and_tail(repo: Path):
    with LocalRuntime(repo, max_output=1000) as runtime:
        r = runtime.execute("echo START; head -c 5000000 /dev/zero | tr '\\0' x; echo; echo END")
        assert r.output.startswith("START\nxxx") and r.output.endswith("xxx\nEND\n")
        assert "bytes of output omitted" in r.output
        assert len(r.output) < 1200
        assert r.exit_code == 0


def test_close_removes_copy_and_is_idempotent(repo: Path):
    runtime = LocalRuntime(repo)
    root = runtime.root
    assert (root / ".git").is_dir()
    runtime.close()
    runtime.close()
    assert not root.exists()
    with pytest.raises(SandboxError, match="closed"):
        runtime.execute("true")


def test_with_block_removes_copy_on_exception(repo: Path):
    with pytest.raises(ZeroDivisionError), LocalRuntime(repo) as runtime:
        root = runtime.root
        runtime.execute("true")
        1 / 0  # noqa: B018
    assert not root.exists()


# A process that creates a runtime, says where its copy is, and waits to be killed.
OWNER = ("import sys, time; from srl_swe.runtime.local import LocalRuntime; rt = LocalRuntime(sys.argv[1]); "
         "print(rt.root, flush=True); time.sleep(120)")


def copy_owned_by_subprocess(repo: Path, tmp_dir: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(repo)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_dir)})
    copy = Path(proc.stdout.readline().strip()).parent  # TMP/srl-swe-local-HOST-PID-XXXX/testbed
    assert copy.parent == tmp_dir and (copy / "testbed" / ".git").is_dir()
    return proc, copy


def test_copy_of_a_sigkilled_process_is_swept(repo: Path, tmp_path: Path, monkeypatch):
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    live, live_copy = copy_owned_by_subprocess(repo, tmp_dir)
    dead, dead_copy = copy_owned_by_subprocess(repo, tmp_dir)
    try:
        dead.send_signal(signal.SIGKILL)  # no close(), no __del__: the copy stays behind
        deadline = time.monotonic() + 10
        # Not reaped yet (a zombie): it can no longer clean up, so it counts as gone.
        while Path(f"/proc/{dead.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the killed process did not exit"
            time.sleep(0.05)
        unknown = [tmp_dir / "srl-swe-local-abcd1234", tmp_dir / f"srl-swe-local-otherhost-{dead.pid}-abcd1234"]
        for folder in unknown:  # no owner (older versions) or another host's (a shared /tmp): never touched
            folder.mkdir()
        assert dead_copy.is_dir()
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_dir))
        with LocalRuntime(repo) as mine:  # creating a runtime sweeps what dead owners left
            assert mine.root.parent.parent == tmp_dir
            assert not dead_copy.exists()
            assert live_copy.is_dir() and all(f.is_dir() for f in unknown)
    finally:
        live.kill()
        live.wait()
        dead.wait()
    from srl_swe.runtime.local import cleanup_stale_copies

    assert cleanup_stale_copies(tmp_dir) == [live_copy]
    assert sorted(tmp_dir.iterdir()) == sorted(unknown)


def test_missing_repo_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SandboxError, match="does not exist"):
        LocalRuntime(tmp_path / "nowhere")


def test_testbed_mapping_leaves_longer_names_alone(rt: LocalRuntime):
    assert rt.to_host("cd /testbed && ls /testbed/pkg") == f"cd {rt.root} && ls {rt.root}/pkg"
    assert rt.to_host("/testbed2 /x/testbed ~/testbed") == "/testbed2 /x/testbed ~/testbed"
    assert rt.from_host(f"{rt.root}/pkg/mod.py:1") == f"{REPO_DIR}/pkg/mod.py:1"


def test_output_buffer_head_tail_and_marker():
    buf = OutputBuffer(10)
    for piece in (b"0123", b"456789ab", b"cdef"):
        buf.feed(piece)
    assert buf.text() == "01234\n[... 6 bytes of output omitted (over the 10-byte cap) ...]\nbcdef"
    small = OutputBuffer(10)
    small.feed("é".encode() + b"\xff")
    assert small.text() == "é\ufffd"
