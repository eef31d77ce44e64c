"""The ``local`` runtime: a temporary copy of the repository and host subprocesses, for machines without Docker.

What it does: copies ``repo_dir`` (including ``.git``) into a fresh temporary directory; runs each command
with ``bash -c`` in that copy, in its own session, with ``os.environ`` (less ``PYTEST_*``) plus the given
``env``; on a timeout SIGKILLs the command's whole process group; caps the output kept in memory; ``close()``
kills what the commands left running in their process groups and deletes the copy.

A process killed with SIGKILL runs no ``close()``. The copy's folder name therefore carries its owner
(``srl-swe-local-HOST-PID-XXXXXXXX``, HOST including the pid namespace), and creating a runtime (or
:func:`cleanup_stale_copies`, which ``srl-swe eval swebench`` calls at start) deletes the copies whose owner
on this host is gone. Commands such a process left running (their own sessions) are not killed.

Every trajectory and policy addresses the repository as ``/testbed`` (the SWE-bench convention). This
runtime therefore rewrites the literal path prefix ``/testbed`` to the copy's directory in commands and
file paths, and the copy's directory back to ``/testbed`` in command output, so ``pwd`` prints
``/testbed``. The rewrite is textual: ``/testbed`` computed at run time (``echo /test""bed``) or
written into files is not mapped.

What it does NOT isolate -- use the ``docker`` runtime for untrusted or model-generated actions:

- no filesystem isolation: commands run as the calling user on the host and can read, change or delete
  anything that user can, outside the copy too (``rm -rf /`` is real, ``cd ..`` leaves the copy);
- no network isolation: commands can open any connection the host can;
- no process isolation: commands see and can signal the host's other processes; a child that starts
  its own session (``setsid``, daemons) escapes the timeout and ``close()`` kills;
- no resource limits: no memory, CPU or process-count limits (a fork bomb hits the host's limits).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from srl_swe.runtime.base import (
    DEFAULT_TIMEOUT,
    MAX_FILE_BYTES,
    REPO_DIR,
    CommandResult,
    FileTooLargeError,
    SandboxError,
    pid_alive,
)
from srl_swe.runtime.output import DEFAULT_MAX_OUTPUT, OutputBuffer

# ``/testbed`` as a path of its own: not part of a longer name (``/testbed2``, ``/x/testbed``, ``~/testbed``).
_REPO_RE = re.compile(r"(?<![\w.~/-])" + re.escape(REPO_DIR) + r"(?![\w.-])")
# After the command itself exits, how long to keep reading output its background children still write.
_DRAIN_SECONDS = 0.2
_PREFIX = "srl-swe-local-"
# srl-swe-local-HOST-PID-RANDOM; mkdtemp's random part has no "-", so the last two dashes delimit the pid.
_COPY_RE = re.compile(re.escape(_PREFIX) + r"(?P<host>.+)-(?P<pid>\d+)-[^-]+")


def _host() -> str:
    """Where a pid means this process: the host name plus, on Linux, the pid namespace (containers sharing
    a /tmp and even a host name still count their pids apart)."""
    try:
        ns = re.sub(r"\D", "", os.readlink("/proc/self/ns/pid"))
    except OSError:
        ns = ""
    return re.sub(r"[^\w.]+", "_", socket.gethostname() + (f".ns{ns}" if ns else "")) or "host"


def cleanup_stale_copies(tmp_dir: str | os.PathLike | None = None) -> list[Path]:
    """Delete the repository copies in ``tmp_dir`` (default: the temp folder) whose owning process on this
    host is gone (SIGKILLed, so its ``close()`` never ran). Copies of other hosts (a shared /tmp, containers
    with their own pid space) and of live processes are kept. Returns the deleted folders."""
    host, removed = _host(), []
    with contextlib.suppress(OSError), os.scandir(tmp_dir or tempfile.gettempdir()) as entries:
        for entry in entries:
            m = _COPY_RE.fullmatch(entry.name)
            if not m or m["host"] != host or pid_alive(int(m["pid"])):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(Path(entry.path))
    return removed


class LocalRuntime:
    """A repository copy in a temporary directory; see the module docstring for what is not isolated."""

    name = "local"

    def __init__(self, repo_dir: str | os.PathLike, *, env: dict[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, max_output: int = DEFAULT_MAX_OUTPUT):
        src = Path(repo_dir)
        if not src.is_dir():
            raise SandboxError(f"local runtime: repository folder {src} does not exist")
        self.timeout = timeout
        self.max_output = max_output
        # The host's pytest settings stay out (PYTEST_ADDOPTS=-x or --durations, PYTEST_PLUGINS, the name of the
        # test running srl-swe): they would change how a task's tests run and what they print, which is graded.
        host = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        self.env = {**host, **(env or {})}
        cleanup_stale_copies()  # what SIGKILLed runs left; cheap (one scan of the temp folder)
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{_host()}-{os.getpid()}-"))
        self.root = self._tmp / "testbed"
        self._pgids: set[int] = set()
        try:
            shutil.copytree(src, self.root, symlinks=True)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self.env["PWD"] = str(self.root)
        # Env values may name the repo as /testbed too (PYTHONPATH=/testbed/src), like an image's ENV.
        self.env.update({k: v.replace(REPO_DIR, str(self.root)) for k, v in (env or {}).items() if REPO_DIR in v})
        # Output may name the copy by its resolved path too (e.g. /tmp being a symlink).
        self._roots = sorted({str(self.root), os.path.realpath(self.root)}, key=len, reverse=True)

    # -- path mapping ------------------------------------------------------------------------------
    def to_host(self, text: str) -> str:
        """Rewrite ``/testbed`` in a command or path to the copy's directory."""
        return _REPO_RE.sub(lambda _m: str(self.root), text)

    def from_host(self, text: str) -> str:
        """Rewrite the copy's directory in output back to ``/testbed``."""
        for root in self._roots:
            text = text.replace(root, REPO_DIR)
        return text

    def _path(self, path: str) -> Path:
        self._check_open()
        return self.root / Path(self.to_host(path))  # an absolute mapped path replaces the root

    def _check_open(self) -> None:
        if self._tmp is None:
            raise SandboxError("local runtime is closed; create a new one")

    # -- Runtime protocol --------------------------------------------------------------------------
    def execute(self, command: str, timeout: float | None = None) -> CommandResult:
        self._check_open()
        timeout = self.timeout if timeout is None else float(timeout)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        start = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", self.to_host(command)], cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._pgids.add(proc.pid)  # the new session's process group id is the leader's pid
        buf = OutputBuffer(self.max_output)
        timed_out = False
        try:
            timed_out = self._pump(proc, buf, start + timeout)
        finally:
            if timed_out or proc.poll() is None:
                self._kill_group(proc.pid)
            proc.stdout.close()
            proc.wait()
        return CommandResult(
            output=self.from_host(buf.text()), exit_code=None if timed_out else proc.returncode,
            timed_out=timed_out, duration=time.monotonic() - start,
        )

    def _pump(self, proc: subprocess.Popen, buf: OutputBuffer, deadline: float) -> bool:
        """Read output until the command exits (plus a short drain) or the deadline; True on timeout."""
        fd = proc.stdout.fileno()
        drain_until = None
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if drain_until is None:
                    if proc.poll() is not None:
                        # The command exited; background children may hold the pipe open: do not wait
                        # for them, only collect what is already written.
                        drain_until = now + _DRAIN_SECONDS
                    elif now >= deadline:
                        return True
                limit = deadline if drain_until is None else drain_until
                if now >= limit:
                    return False
                if sel.select(timeout=min(0.5, limit - now)):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        # EOF can come before the exit is reaped (a loaded machine makes that likely):
                        # wait for the exit up to the deadline rather than kill a finished command.
                        try:
                            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                        except subprocess.TimeoutExpired:
                            return True  # it closed its output but kept running
                        return False
                    buf.feed(chunk)

    def _kill_group(self, pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def read_file(self, path: str) -> str:
        host = self._path(path)
        if not host.exists():
            raise FileNotFoundError(f"{path}: no such file in the local runtime")
        if host.is_dir():
            raise IsADirectoryError(f"{path} is a directory, not a file")
        if not host.is_file():  # a FIFO would block the read, a device could be endless
            raise FileNotFoundError(f"{path}: not a regular file")
        size = host.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileTooLargeError(path, size, MAX_FILE_BYTES)
        with host.open("rb") as fh:  # capped even if the file grows after the stat
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FileTooLargeError(path, None, MAX_FILE_BYTES)
        return data.decode("utf-8", errors="replace")

    def write_file(self, path: str, content: str) -> None:
        host = self._path(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(content.encode("utf-8", errors="surrogateescape"))

    def close(self) -> None:
        if self._tmp is None:
            return
        for pgid in self._pgids:
            self._kill_group(pgid)
        self._pgids.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None

    def __enter__(self) -> LocalRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A forgotten runtime must not leave its copy in /tmp; close() is idempotent.
        if getattr(self, "_tmp", None) is not None:
            self.close()

    def __repr__(self) -> str:
        return f"LocalRuntime(root={self.root})"
