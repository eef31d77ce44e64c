"""The Docker daemon side of the runtimes: the connection, the base image, and container bookkeeping.

No registry is assumed (Docker Hub may be unreachable), so the base image ``srl-swe/base:bookworm`` is made
from a Debian mirror: ``debootstrap --variant=minbase bookworm`` into a folder, then ``docker import`` of
that folder as a tarball. It has bash and coreutils but no python, git or CA certificates; task images
(:mod:`srl_swe.swebench.images`) build on top of it. Parallel workers share one build through a file lock.

Bookkeeping: every live :class:`~srl_swe.runtime.docker.DockerRuntime` is registered here, and the process
removes their containers at exit and on SIGTERM (chaining any previous handler); Ctrl-C is covered by the
runtimes' ``with`` blocks. Containers carry the label ``srl-swe=1`` and their owner ``host:pid``, so
:func:`cleanup_stale` can remove what a process killed with SIGKILL left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from srl_swe.paths import cache_dir
from srl_swe.runtime.base import DockerUnavailableError, SandboxError, pid_alive

BASE_IMAGE = "srl-swe/base:bookworm"
LABEL = "srl-swe"  # every runtime container has LABEL=1
OWNER_LABEL = "srl-swe.owner"  # "host:pid" of the process that created it
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("SRL_SWE_DEBIAN_MIRROR", "http://deb.debian.org/debian")

log = logging.getLogger(__name__)

HOW_TO_START = (
    "start the Docker daemon, e.g. `bash scripts/start_dockerd.sh` (or `sudo dockerd "
    "--iptables=false --bridge=none &`), or pass `--runtime local` to run without Docker"
)


def docker_client(timeout: int = 300):
    """A connected ``docker.DockerClient`` (from ``DOCKER_HOST`` or the default socket).

    Raises :class:`DockerUnavailableError` saying how to start a daemon or avoid Docker when the SDK is
    missing or no daemon answers."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailableError(
            "the Docker SDK is not installed: `pip install 'srl-swe[swebench]'`; or pass `--runtime local`"
        ) from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # socket missing, permission denied, daemon down: all mean "no daemon here"
        reason = f"{type(exc).__name__}: {exc}"
        raise DockerUnavailableError(f"no Docker daemon answers ({reason}); {HOW_TO_START}") from None
    return client


def lock_dir() -> Path:
    """Where build locks live (``$SRL_SWE_CACHE/locks``, default ``~/.cache/srl-swe/locks``)."""
    path = cache_dir() / "locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """An exclusive inter-process lock named ``name`` (fcntl, released when the holder exits or dies), so
    parallel workers that need the same image build it once and the others wait and then reuse it."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    with open(lock_dir() / f"{safe}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def image_exists(client, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_base_image(client=None) -> str:
    """Return :data:`BASE_IMAGE`, building it first (debootstrap + docker import, about a minute) when the
    daemon does not have it. Building needs root and ``debootstrap``; without them the error says so."""
    client = client or docker_client()
    if image_exists(client, BASE_IMAGE):
        return BASE_IMAGE
    with file_lock("image-" + BASE_IMAGE):
        # Another worker may have built it while we waited for the lock.
        if not image_exists(client, BASE_IMAGE):
            _build_base_image(client)
    return BASE_IMAGE


def _build_base_image(client) -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            f"image {BASE_IMAGE} is missing and building it (debootstrap) needs root: rerun as root, or build it "
            f"once with `sudo debootstrap --variant=minbase {DEBIAN_SUITE} ROOTFS {DEBIAN_MIRROR} && "
            f"sudo tar -C ROOTFS -c . | docker import - {BASE_IMAGE}`"
        )
    if shutil.which("debootstrap") is None:
        raise SandboxError(
            f"image {BASE_IMAGE} is missing and `debootstrap` is not installed: `apt-get install -y debootstrap` "
            "(scripts/start_dockerd.sh installs it), then retry"
        )
    print(f"building {BASE_IMAGE} with debootstrap from {DEBIAN_MIRROR} (about a minute, once)...",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="srl-swe-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        cmd = ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise SandboxError(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}); is the Debian mirror reachable? "
                f"(set SRL_SWE_DEBIAN_MIRROR to use another)\n{tail}"
            )
        subprocess.run(["tar", "-C", str(rootfs), "-c", "-f", str(tarball), "."], check=True)
        repository, tag = BASE_IMAGE.rsplit(":", 1)
        # import_image streams the file (rather than loading ~200 MB into memory).
        client.api.import_image(src=str(tarball), repository=repository, tag=tag)
    if not image_exists(client, BASE_IMAGE):
        raise SandboxError(f"`docker import` did not create {BASE_IMAGE}; check the daemon's log")
    log.info("built %s", BASE_IMAGE)


# -- container bookkeeping -----------------------------------------------------------------------------
_LIVE: dict[int, object] = {}
_LIVE_LOCK = threading.RLock()  # re-entrant: the SIGTERM handler may run while the main thread holds it
_HOOKS_INSTALLED = False


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def register(runtime) -> None:
    """Track a live runtime (anything with ``close()``) so exit and SIGTERM remove its container."""
    global _HOOKS_INSTALLED
    with _LIVE_LOCK:
        _LIVE[id(runtime)] = runtime
        if not _HOOKS_INSTALLED:
            _HOOKS_INSTALLED = True
            atexit.register(close_all)
            _install_sigterm()


def unregister(runtime) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(id(runtime), None)


def close_all() -> None:
    """Remove every container this process still has (atexit and SIGTERM call this)."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for runtime in live:
        with contextlib.suppress(Exception):
            runtime.close()


def _install_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # handlers can only be set from the main thread; atexit still covers normal exits
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        close_all()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # The default action: die by SIGTERM as if it had never been caught (the exit status stays honest).
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def cleanup_stale(client=None, *, everything: bool = False) -> list[str]:
    """Remove ``srl-swe=1`` containers whose owning process on this host is gone (with ``everything=True``
    all of them, also those of live processes and other hosts). Returns the removed container names."""
    import docker.errors

    client = client or docker_client()
    host = socket.gethostname()
    removed = []
    for info in client.api.containers(all=True, filters={"label": f"{LABEL}=1"}):
        owner_host, _, pid = (info.get("Labels") or {}).get(OWNER_LABEL, "").rpartition(":")
        # Another host's containers (a shared daemon) cannot be checked: removed only with everything=True.
        if not everything and (owner_host != host or (pid.isdigit() and pid_alive(int(pid)))):
            continue
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(info["Id"], force=True, v=True)
            removed.append((info.get("Names") or [info["Id"]])[0].lstrip("/"))
    return removed
