"""A private Docker daemon for tests: its own data root (a btrfs loopback file), socket and exec root, started by
scripts/start_dockerd.sh through its SRL_SWE_DOCKER_* variables and stopped through its pid file. It shares
nothing with the main daemon but the kernel: no images, no containers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "start_dockerd.sh"


def needs_btrfs_root() -> None:
    """Skip (fail under CI=true) where this machine cannot start a daemon on btrfs."""
    reason = None
    if os.geteuid() != 0:
        reason = "starting a Docker daemon needs root"
    elif shutil.which("dockerd") is None or shutil.which("mkfs.btrfs") is None:
        reason = "no dockerd or mkfs.btrfs (scripts/start_dockerd.sh installs them)"
    elif "btrfs" not in Path("/proc/filesystems").read_text():
        reason = "this kernel has no btrfs"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def start(env: dict[str, str]) -> str:
    """Run scripts/start_dockerd.sh with ``env``; returns its output."""
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def stop(root: Path) -> None:
    """Stop the daemon whose data root is ``root`` (SIGTERM, then SIGKILL after 60 s)."""
    pidfile = root / "dockerd.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def short_folder() -> Iterator[Path]:
    """A fresh folder with a short path for a daemon's root and socket: containerd's sockets under its exec root
    may have at most 104 bytes, which pytest's tmp_path (``/tmp/pytest-of-root/pytest-NNN/test_...``) can pass."""
    folder = Path(tempfile.mkdtemp(prefix="srl-dk-", dir="/tmp"))
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder / "root" / "data")], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def private_daemon(folder: Path, size: str = "4G") -> Iterator[dict[str, str]]:
    """A daemon with its socket and data root in a :func:`short_folder`; yields the environment that reaches it
    (``DOCKER_HOST``). The script's cache (``SRL_SWE_CACHE``, whose quota verdicts it clears when it turns quotas
    on) is ``FOLDER/script-cache``, so the main daemon's cached verdict stays."""
    with short_folder() as short, _daemon(short, folder, size) as env:
        yield env


@contextlib.contextmanager
def _daemon(short: Path, folder: Path, size: str) -> Iterator[dict[str, str]]:
    root = short / "root"
    env = {**os.environ, "SRL_SWE_DOCKER_ROOT": str(root), "DOCKER_HOST": f"unix://{short}/d.sock",
           "SRL_SWE_DOCKER_BTRFS_SIZE": size, "SRL_SWE_DOCKER_STORAGE": "btrfs",
           "SRL_SWE_CACHE": str(folder / "script-cache")}
    try:
        start(env)
        yield {**os.environ, "DOCKER_HOST": env["DOCKER_HOST"]}
    finally:
        stop(root)
        subprocess.run(["umount", str(root / "data")], capture_output=True)
