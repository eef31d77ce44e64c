"""The Docker daemon's storage as scripts/start_dockerd.sh sets it up, and how srl-swe reads its quota.

On btrfs the daemon's data root gets quota groups so that every sandbox has a hard disk limit. Simple quotas
(Linux 6.7+) are the default where the kernel has them: under full quota groups each removed container cost the
kernel's btrfs-cleaner 15-50 s of a core (benchmarks/results/docker_storage.md). The two modes count a
container's ``size`` differently (its own writes, or the image too), which the sandbox's quota probe tells
apart. These tests start a second, private daemon (its own data root and socket) and read the kernel's view.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from private_dockerd import SCRIPT, short_folder
from private_dockerd import needs_btrfs_root as _needs_btrfs_root
from private_dockerd import start as _start
from private_dockerd import stop as _stop

from srl_swe.runtime.images import ensure_base_image
from srl_swe.runtime.sandbox import btrfs_quota_mode, quota_kind

KERNEL_SQUOTA = Path("/sys/fs/btrfs/features/simple_quota").exists()


def test_a_root_too_long_for_containerds_sockets_is_refused_at_once(tmp_path):
    # Once a slow failure: containerd gave up on a socket path over 104 bytes and the script waited its 60 s.
    root = tmp_path / ("r" * 60)
    env = {**os.environ, "SRL_SWE_DOCKER_ROOT": str(root), "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and f"SRL_SWE_DOCKER_ROOT={root} is too long" in proc.stderr
    assert "over the 104 a Unix socket path may have" in proc.stderr and not root.exists()


@pytest.mark.slow
def test_start_dockerd_sets_the_quota_mode_and_switches_an_existing_root(tmp_path):
    _needs_btrfs_root()
    with short_folder() as short:
        _quota_mode_and_switch(short, tmp_path / "cache")


def _quota_mode_and_switch(short: Path, cache: Path) -> None:
    root = short / "root"
    stale = cache / "quota" / "daemon.json"
    env = {**os.environ, "SRL_SWE_DOCKER_ROOT": str(root), "DOCKER_HOST": f"unix://{short}/d.sock",
           "SRL_SWE_DOCKER_BTRFS_SIZE": "2G", "SRL_SWE_DOCKER_STORAGE": "btrfs", "SRL_SWE_CACHE": str(cache)}
    try:
        out = _start({**env, "SRL_SWE_DOCKER_QUOTA": "full"})
        assert "btrfs quota mode: qgroup" in out
        assert btrfs_quota_mode(root / "data") == "qgroup"
        assert subprocess.run(["docker", "info", "-f", "{{.Driver}}"], env=env, capture_output=True,
                              text=True).stdout.strip() == "btrfs"
        _stop(root)
        stale.parent.mkdir(parents=True)
        stale.write_text('{"driver": "btrfs", "kind": "image+layer", "probe": 2}')
        # The same data root again, now in the default mode (dockerd turned quotas off when it stopped, so they
        # are turned on again): simple quotas where the kernel has them, and srl-swe's cached verdict on how the
        # daemon counts a quota, made under the old mode, is gone.
        out = _start({**env, "SRL_SWE_DOCKER_QUOTA": "auto"})
        want = "squota" if KERNEL_SQUOTA else "qgroup"
        assert f"btrfs quota mode: {want}" in out
        assert btrfs_quota_mode(root / "data") == want
        assert not stale.exists()
        # A running daemon is left alone whatever is asked.
        assert "nothing to do" in _start({**env, "SRL_SWE_DOCKER_QUOTA": "full"})
        assert btrfs_quota_mode(root / "data") == want
    finally:
        _stop(root)
        subprocess.run(["umount", str(root / "data")], capture_output=True)


@pytest.mark.slow
def test_quota_kind_is_how_the_daemons_btrfs_counts(docker_client):
    """Full quota groups count the image in a container's quota ("image+layer"), simple quotas only what the
    container writes ("layer"): the probe must tell which, or a limit is off by the image's size."""
    info = docker_client.info()
    mode = btrfs_quota_mode(info["DockerRootDir"]) if info["Driver"] == "btrfs" else None
    if mode is None:
        pytest.skip(f"the daemon's storage ({info['Driver']}) is not a btrfs file system on this host")
    if os.environ.get("CI") == "true" and KERNEL_SQUOTA:
        assert mode == "squota"  # what scripts/start_dockerd.sh chooses where the kernel has simple quotas
    kind = quota_kind(docker_client, ensure_base_image(docker_client))
    assert kind == {"squota": "layer", "qgroup": "image+layer", "none": None}[mode]
