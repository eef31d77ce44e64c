"""The ``docker`` runtime: one container per task, commands through the Docker SDK's exec API.

Containment (:mod:`srl_swe.runtime.sandbox`, shared with the graders): no capabilities, ``no-new-privileges``,
the image's non-root ``USER`` where it has one, no network by default (``network_mode="none"``), memory (no
extra swap), CPU, process-count and disk limits (a storage-driver quota where the daemon supports one, else
a monitor that stops the container's processes once its writable layer outgrows the limit), a per-command
timeout enforced twice (coreutils ``timeout`` inside, a deadline on the output stream outside, since
background children can keep the stream open), and after a timeout every process the command started is
killed (``kill -9 -1`` from a fresh exec: all but PID 1 of the container's PID namespace; if the container
cannot even fork, e.g. a fork bomb at the pids limit, it is restarted, which keeps its filesystem). PID 1 is
a small bash loop rather than ``sleep``: as the namespace's init it must reap orphaned children, or killed
processes would stay zombies and use up the pids limit. Files are read streamed and capped
(:data:`~srl_swe.runtime.base.MAX_FILE_BYTES`), so a huge or sparse file costs the host bounded memory.

Containers carry the label ``srl-swe=1`` (and the owning host:pid) and are removed on ``close()``, when a
``with`` block is left (normally, on error or on Ctrl-C), at interpreter exit and on SIGTERM;
:func:`srl_swe.runtime.images.cleanup_stale` removes the ones left by processes that died harder (SIGKILL,
power loss).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
import uuid

from srl_swe.runtime.base import DEFAULT_TIMEOUT, MAX_FILE_BYTES, REPO_DIR, CommandResult, SandboxError
from srl_swe.runtime.docker_files import read_container_file, write_container_file
from srl_swe.runtime.images import LABEL, OWNER_LABEL, docker_client, owner_label, register, unregister
from srl_swe.runtime.output import DEFAULT_MAX_OUTPUT, OutputBuffer
from srl_swe.runtime.sandbox import DiskWatch, SandboxLimits, create_sandbox

# PID 1: exits on SIGTERM (fast `docker stop`), reaps every orphan (bash's SIGCHLD handler waits for any pid).
_INIT = 'trap "exit 0" TERM; while :; do sleep 86400 & wait; done'
# Inside the command's exec: one merged stream (true interleaving), then coreutils timeout (SIGTERM, then
# SIGKILL 1 s later) around the user's command. "$0"/"$1" avoid any quoting of the command.
_WRAP = 'exec 2>&1; exec timeout -k 1 "$0" bash -c "$1"'
# Kill all but PID 1 and check that only init (+ its sleep) and this shell remain; retry a few times since
# a fork bomb can fork while kill(-1) walks the process list.
_KILL_ALL = (
    'for i in 1 2 3 4 5; do kill -9 -1 2>/dev/null; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; '
    '[ "$n" -le 3 ] && exit 0; sleep 0.1; done; exit 1'
)
_COUNT = 'n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n'
_EXIT_POLL = 0.5  # how often to ask the daemon whether the command exited while its stream stays open
_DRAIN = 0.2  # after the command exited, how long to still collect output its background children write
_UNSET: object = object()  # DockerRuntime(disk=None) means "no disk limit", so "not given" needs its own value
_TIMEOUT_CODES = (124, 137)  # coreutils timeout: timed out (TERM worked) / killed by the follow-up KILL


class DockerRuntime:
    """A container from ``image`` with the repository at ``/testbed``; see the module docstring.

    ``network``: False = no network; True = the daemon's ``bridge`` network, or ``host`` when the daemon
    has no bridge (dockerd ``--bridge=none``, as scripts/start_dockerd.sh starts it); a string = that
    network mode (host networking is not isolated: opt in only for steps that must install packages).
    ``limits`` is a :class:`~srl_swe.runtime.sandbox.SandboxLimits` (default: 2 GiB memory and disk, 1 CPU,
    512 processes, no network, the image's own USER); ``memory`` (a Docker size, "2g"), ``cpus``,
    ``pids_limit``, ``network``, ``disk`` (the most bytes commands may add to the container's filesystem;
    None: no limit), ``disk_mode`` and ``user`` override single fields of it. ``max_output`` is the bytes
    kept per command (head and tail). One command at a time: a timeout kills every process in the container,
    including background processes started by earlier commands."""

    name = "docker"

    def __init__(self, image: str, *, limits: SandboxLimits | None = None, memory: str | None = None,
                 cpus: float | None = None, pids_limit: int | None = None, network: bool | str | None = None,
                 disk: str | int | None = _UNSET, disk_mode: str | None = None, user: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, env: dict[str, str] | None = None, client=None,
                 max_output: int = DEFAULT_MAX_OUTPUT, max_file_bytes: int = MAX_FILE_BYTES):
        import docker.errors

        # ``limits`` (default: SandboxLimits()) with any single limit given by keyword laid over it.
        given = {"memory": memory, "cpus": cpus, "pids": pids_limit, "network": network, "disk_mode": disk_mode,
                 "user": user}
        overrides = {k: v for k, v in given.items() if v is not None}
        if disk is not _UNSET:
            overrides["disk"] = disk  # None is a value here: no disk limit
        self.limits = dataclasses.replace(limits or SandboxLimits(), **overrides)
        self.client = client or docker_client()
        self.image, self.timeout, self.max_output, self.pids_limit = image, timeout, max_output, self.limits.pids
        self.max_file_bytes = max_file_bytes
        self.container_name = f"srl-swe-{uuid.uuid4().hex[:12]}"
        self.restarts = 0
        self.disk_mode: str | None = None
        self._closed = False
        self._watch: DiskWatch | None = None
        # Held while the disk monitor stops the container's processes: a command must neither start during
        # that (its `kill -9 -1` would take the new command too) nor return before it is over.
        self._stopping = threading.Lock()
        self.disk_stops = 0  # how many times the disk monitor stopped the container's processes
        self._uid_gid: tuple[int, int] | None = None
        # Registered before the container exists: a Ctrl-C during creation still finds it by name.
        register(self)
        try:
            # create + start, not run: a missing image is an error here, never an implicit registry pull.
            container, self.disk_mode = create_sandbox(
                self.client, image, self.limits,
                # As entrypoint, so an image's own ENTRYPOINT cannot interfere (its CMD becomes a harmless $0).
                entrypoint=["bash", "-c", _INIT], name=self.container_name, working_dir=REPO_DIR,
                environment=env or {}, labels={LABEL: "1", OWNER_LABEL: owner_label()},
            )
            container.start()
        except docker.errors.ImageNotFound:
            self.close()
            raise SandboxError(
                f"Docker image {image!r} not found locally; build it first (srl_swe.swebench.images.ensure_image "
                f"for a task, srl_swe.runtime.images.ensure_base_image for the base) or `docker pull {image}`"
            ) from None
        except docker.errors.APIError as exc:
            self.close()
            raise SandboxError(f"could not start a container from {image!r}: {exc}") from None
        except BaseException:
            self.close()
            raise
        if self.disk_mode == "monitor":
            self._watch = DiskWatch(self.api, self.container_name, self.limits.disk_bytes, self._disk_exceeded,
                                    interval=self.limits.disk_poll)

    def _disk_exceeded(self, size: int) -> None:
        """The monitor saw the writable layer over the limit: stop every process (files stay, so the agent
        can delete what it wrote to get back under it)."""
        with self._stopping:
            self.disk_stops += 1
            self._kill_all()

    @property
    def api(self):
        return self.client.api

    # -- commands ----------------------------------------------------------------------------------
    def execute(self, command: str, timeout: float | None = None) -> CommandResult:
        self._check_open()
        timeout = self.timeout if timeout is None else float(timeout)
        if timeout <= 0:  # coreutils `timeout 0` would mean "no timeout"
            raise ValueError(f"timeout must be positive, got {timeout}")
        with self._stopping:
            start, disk_stops = time.monotonic(), self.disk_stops
        exec_id, stream = self._start_exec(["bash", "-c", _WRAP, f"{timeout:g}", command])
        buf = OutputBuffer(self.max_output)
        # The host-side deadline backs up the inner `timeout` (TERM at T, KILL at T+1).
        finished, lingering = self._pump(exec_id, stream, buf, start + timeout + 1.5)
        with self._stopping:  # a disk stop that ended this command is over before the command returns
            pass
        exit_code = self.api.exec_inspect(exec_id).get("ExitCode") if finished else None
        elapsed = time.monotonic() - start
        timed_out = not finished or (exit_code in _TIMEOUT_CODES and elapsed >= timeout)
        if timed_out:
            exit_code = None
            self._kill_all()
        elif lingering and self._runaway():  # (this check waits ~2-3 s: dockerd's grace for the open stream)
            # The command returned but left so many processes (a fork bomb) that the container could no
            # longer run the next step: treat it like a timeout.
            self._kill_all()
            buf.feed(b"\n[srl-swe: the command left processes filling the container's process limit; "
                     b"all were killed]\n")
        if self.disk_stops != disk_stops:
            buf.feed(f"\n[srl-swe: the files in this sandbox grew past its disk limit of {self.limits.disk_bytes} "
                     "bytes, so every process was stopped; delete files you do not need]\n".encode())
        return CommandResult(output=buf.text(), exit_code=exit_code, timed_out=timed_out,
                             duration=time.monotonic() - start)

    def _start_exec(self, cmd: list[str], retry: bool = True):
        import docker.errors

        try:
            exec_id = self.api.exec_create(self.container_name, cmd, workdir=REPO_DIR, stdout=True, stderr=True,
                                           stdin=False, tty=False)["Id"]
            return exec_id, self.api.exec_start(exec_id, stream=True, demux=False)
        except docker.errors.NotFound:
            raise SandboxError(f"container {self.container_name} is gone (removed from outside?)") from None
        except docker.errors.APIError as exc:
            if not retry:
                raise SandboxError(f"could not run a command in {self.container_name}: {exc}") from None
            # The container stopped or cannot fork: make it usable again and try once more.
            self._restart()
            return self._start_exec(cmd, retry=False)

    def _pump(self, exec_id: str, stream, buf: OutputBuffer, deadline: float) -> tuple[bool, bool]:
        """Collect output until the exec ends or ``deadline``. Returns (finished, lingering): lingering
        means the command exited while background children still held its output stream open."""
        chunks: queue.Queue = queue.Queue()

        def reader() -> None:  # blocking reads in a thread, so the main thread can keep the deadline
            try:
                for chunk in stream:
                    chunks.put(chunk)
            except Exception:  # the stream is closed under us after a timeout; nothing to report
                pass
            chunks.put(None)

        threading.Thread(target=reader, daemon=True, name=f"{self.container_name}-out").start()
        drain_until, next_poll = None, time.monotonic() + _EXIT_POLL
        try:
            while True:
                now = time.monotonic()
                limit = deadline if drain_until is None else drain_until
                if now >= limit:
                    return drain_until is not None, drain_until is not None
                try:
                    wait = (min(limit, next_poll) if drain_until is None else limit) - now
                    chunk = chunks.get(timeout=max(0.0, wait))
                except queue.Empty:
                    chunk = b""
                if chunk is None:
                    return True, False
                buf.feed(chunk)
                if drain_until is None and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + _EXIT_POLL
                    if not self.api.exec_inspect(exec_id).get("Running", True):
                        drain_until = time.monotonic() + _DRAIN
        finally:
            with contextlib.suppress(Exception):
                stream.close()  # unblocks the reader thread if children still hold the stream

    def _run_quick(self, script: str, timeout: float = 10.0) -> tuple[int | None, str]:
        """Run an internal helper script (no wrapping); (exit code, output), or (None, "") on failure."""
        import docker.errors

        try:
            # workdir "/": helpers must work even when the command removed /testbed.
            exec_id = self.api.exec_create(self.container_name, ["bash", "-c", script], stdout=True, stderr=True,
                                           workdir="/")
            stream = self.api.exec_start(exec_id["Id"], stream=True)
        except docker.errors.APIError:
            return None, ""
        buf = OutputBuffer(65536)
        finished, _ = self._pump(exec_id["Id"], stream, buf, time.monotonic() + timeout)
        if not finished:
            return None, buf.text()
        return self.api.exec_inspect(exec_id["Id"]).get("ExitCode"), buf.text()

    def _runaway(self) -> bool:
        code, out = self._run_quick(_COUNT, timeout=5.0)
        last = out.strip().rsplit("\n", 1)[-1]  # fork-retry complaints may precede the count
        threshold = self.pids_limit // 2 if self.pids_limit and self.pids_limit > 0 else 10_000
        return code != 0 or not last.isdigit() or int(last) > threshold

    def _kill_all(self) -> None:
        code, _ = self._run_quick(_KILL_ALL, timeout=10.0)
        if code != 0:
            self._restart()

    def _restart(self) -> None:
        """Kill every process (PID 1 included) and start the container again; files survive."""
        import docker.errors

        try:
            self.api.restart(self.container_name, timeout=0)
        except docker.errors.NotFound:
            raise SandboxError(f"container {self.container_name} is gone (removed from outside?)") from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"could not restart container {self.container_name}: {exc}") from None
        self.restarts += 1

    # -- files (srl_swe.runtime.docker_files) ------------------------------------------------------
    @property
    def uid_gid(self) -> tuple[int, int]:
        """The numeric user and group commands run as (uploaded files belong to them), asked once."""
        if self._uid_gid is None:
            code, out = self._run_quick("id -u; id -g")
            ids = out.split()
            ok = code == 0 and len(ids) == 2 and all(i.isdigit() for i in ids)
            self._uid_gid = (int(ids[0]), int(ids[1])) if ok else (0, 0)
        return self._uid_gid

    def read_file(self, path: str) -> str:
        self._check_open()
        return read_container_file(self, path)

    def write_file(self, path: str, content: str) -> None:
        self._check_open()
        write_container_file(self, path, content)

    # -- lifetime ----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("docker runtime is closed; create a new one")

    def close(self) -> None:
        """Force-remove the container (and its anonymous volumes); idempotent. Marked closed only once
        removed, so an interrupted close is retried by the atexit/SIGTERM cleanup."""
        if self._closed:
            return
        import docker.errors

        if self._watch is not None:
            self._watch.stop()
        try:
            self.api.remove_container(self.container_name, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: a removal is already in progress (e.g. the SIGTERM cleanup)
                raise
        self._closed = True
        unregister(self)

    def __enter__(self) -> DockerRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DockerRuntime(image={self.image!r}, container={self.container_name!r})"

