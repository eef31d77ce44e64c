"""How every container that runs model-written code is configured: agent sandboxes, grading, RLVR rollouts.

One function, :func:`create_sandbox`, creates such a container, so the agent's runtime
(:class:`~srl_swe.runtime.docker.DockerRuntime`) and the graders' containers
(:mod:`srl_swe.swebench.harness_sandbox`) cannot drift apart. What it sets, and why:

* **No capabilities** (``cap_drop=["ALL"]``) and ``no-new-privileges``: code that runs as uid 0 without
  ``CAP_SYS_ADMIN`` cannot mount a cgroup hierarchy and abuse its ``release_agent`` (the classic escape on
  cgroup v1 hosts without AppArmor, which the swebench harness's ``cap_add=["SYS_ADMIN"]`` leaves open),
  and setuid binaries cannot give any back.
* **A non-root user where the image has one**: the image's own ``USER`` (the task images built here run as
  ``srl``, uid 1000, owning ``/testbed``); an image without one (the official SWE-bench images) runs as
  root, still without capabilities.
* **No network** (``network_mode="none"``: loopback only) unless asked for, memory with no extra swap, a CPU
  share and a process-count limit.
* **A disk limit on the writable layer**, enforced by the storage driver where the daemon supports it
  (``btrfs``, as ``scripts/start_dockerd.sh`` sets the daemon up; ``overlay2`` on xfs with ``pquota``):
  writes past it fail with ``ENOSPC``. Elsewhere (``overlay2`` on ext4, the common case) a
  :class:`DiskWatch` polls the layer's size and stops every process in the container once it grows past
  the limit; what a fast writer manages between two polls (``interval`` seconds) is the overshoot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Docker driver -> the ways its ``size`` storage option may be counted, in the order the probe tries them:
#: "layer" (only what the container writes: overlay2's project quota, btrfs simple quotas) or "image+layer"
#: (btrfs full quota groups: the subvolume's referenced bytes include the image it was snapshotted from).
_QUOTA_DRIVERS = {"btrfs": ("layer", "image+layer"), "overlay2": ("layer",)}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_QUOTA_CACHE: dict[str, str | None] = {}  # daemon address -> quota kind, or None: no quota that works
_PROBE_VERSION = 2  # verdicts of an older probe (which could not tell btrfs's two ways of counting) are redone


def parse_size(value: str | int | None) -> int | None:
    """Bytes from a Docker-style size ("2g", "512m", 1048576); None stays None (no limit)."""
    if value is None or isinstance(value, int):
        return value
    match = _SIZE_RE.fullmatch(str(value))
    if not match:
        raise ValueError(f"size {value!r}: write a number of bytes or a Docker size such as '512m' or '2g'")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass(frozen=True)
class SandboxLimits:
    """The resource limits of one sandbox container.

    ``network``: False = none (loopback only); True = the daemon's ``bridge`` network, or ``host`` when
    the daemon has no bridge; a string = that network mode. ``disk``: the most bytes the container may
    add to its writable layer (None: no limit). ``disk_mode``: "auto" (the driver's quota where the daemon
    supports it, else the monitor), "quota" (fail when the daemon cannot enforce one) or "monitor".
    ``user``: None = the image's own USER (root when it has none)."""

    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 512
    disk: str | int | None = "2g"
    network: bool | str = False
    disk_mode: str = "auto"
    user: str | None = None
    disk_poll: float = 0.25

    def __post_init__(self) -> None:
        if self.disk_mode not in ("auto", "quota", "monitor"):
            raise ValueError(f"disk_mode={self.disk_mode!r}: choose 'auto', 'quota' or 'monitor'")
        parse_size(self.disk)
        parse_size(self.memory)

    @property
    def disk_bytes(self) -> int | None:
        return parse_size(self.disk)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SandboxLimits:
        return cls(**json.loads(text))


def _image_attrs(client, image: str) -> dict:
    return client.images.get(image).attrs


def image_user(attrs: dict) -> str | None:
    """The image's ``USER`` (from its ``attrs``) when it names someone other than root, else None."""
    user = (attrs.get("Config") or {}).get("User") or ""
    return None if user.split(":")[0] in ("", "root", "0") else user


def _daemon_key(client) -> str:
    # The daemon's address, known without a round trip; every unix socket's base_url is "http+docker://localhost".
    adapter = getattr(client.api, "_custom_adapter", None)
    where = getattr(adapter, "socket_path", None) or getattr(adapter, "ssh_host", None) or ""
    return f"{getattr(client.api, 'base_url', '')}{where}" or str(id(client))


def quota_kind(client, image: str | None = None) -> str | None:
    """How this daemon's storage driver counts a ``size`` quota (see :data:`_QUOTA_DRIVERS`), or None when it
    has none that works. A driver that takes the option is not trusted on its word: btrfs accepts ``size``
    and ignores it when qgroups were enabled after the data existed, and counts the image in it or not by its
    quota mode (full or simple), so the first call on a daemon writes under and past a small quota in a
    throwaway container from ``image`` for each way of counting (:func:`_probe_quota`). The verdict is cached
    per daemon, in this process (by address) and in :func:`quota_cache_path` (delete it after changing the
    daemon's storage: scripts/start_dockerd.sh does whenever it turns quotas on)."""
    address = _daemon_key(client)
    if address in _QUOTA_CACHE:
        return _QUOTA_CACHE[address]
    info = client.info()
    driver = info.get("Driver", "")
    backing = dict(info.get("DriverStatus") or []).get("Backing Filesystem", "")
    kinds = _QUOTA_DRIVERS.get(driver, ())
    if driver == "overlay2" and backing != "xfs":
        kinds = ()  # overlay2 quotas need xfs with pquota; on ext4 the daemon refuses the option
    if not kinds:
        return _QUOTA_CACHE.setdefault(address, None)
    cached = quota_cache_path(info)
    with contextlib.suppress(OSError, ValueError, KeyError):
        record = json.loads(cached.read_text())
        if record["driver"] == driver and record["probe"] == _PROBE_VERSION:
            _QUOTA_CACHE[address] = record["kind"]
            return record["kind"]
    if image is None:
        return kinds[-1]  # nothing to probe with: the most the driver may count (create_sandbox passes an image)
    _QUOTA_CACHE[address] = next((k for k in kinds if _probe_quota(client, image, k)), None)
    if _QUOTA_CACHE[address] is None:
        log.warning("the Docker daemon's %s driver accepts a storage quota but does not enforce it; sandboxes "
                    "use the disk monitor (for btrfs: `btrfs quota enable` on the data root)", driver)
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps({"driver": driver, "kind": _QUOTA_CACHE[address], "probe": _PROBE_VERSION}))
    return _QUOTA_CACHE[address]


def quota_cache_path(info: dict) -> Path:
    """The cached verdict on the daemon of ``info`` (``client.info()``): by ID and host name + data root (Docker
    before 23 takes the ID from /etc/docker/key.json, so all daemons of a host have the same)."""
    from srl_swe.runtime.images import lock_dir

    daemon_id = "".join(c for c in (info.get("ID") or "unknown") if c.isalnum() or c in "-_:")[:80]
    where = hashlib.sha256(f"{info.get('Name')}\n{info.get('DockerRootDir')}".encode()).hexdigest()[:12]
    return lock_dir().parent / "quota" / f"{daemon_id}.{where}.json"


def btrfs_quota_mode(path: str | Path) -> str | None:
    """The kernel's quota mode of the btrfs file system holding ``path`` (e.g. the daemon's data root):
    "squota" (simple quotas), "qgroup" (full quota groups) or "none"; None when ``path`` is not on btrfs or
    there is no ``btrfs`` tool to ask. Full quota groups cost the kernel seconds of a core per removed
    container; benchmarks wait for that to settle, simple quotas need no wait."""
    if shutil.which("btrfs") is None:
        return None
    try:
        out = subprocess.run(["btrfs", "filesystem", "show", str(path)], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    uuid = next((line.split()[-1] for line in out.splitlines() if "uuid:" in line), None)
    if uuid is None:
        return None
    mode = Path(f"/sys/fs/btrfs/{uuid}/qgroups/mode")
    return mode.read_text().strip() if mode.exists() else "none"


def quota_size(image_size: int, kind: str, disk: int) -> int:
    """The ``size`` storage option that lets a container of an image of ``image_size`` bytes add about
    ``disk`` bytes. btrfs counts the image's blocks too, a few percent more than the image's size
    (metadata), hence a slack on top: writes may pass ``disk`` by up to :func:`quota_slack`, never more."""
    return disk + image_size + quota_slack(image_size) if kind == "image+layer" else disk


def quota_slack(image_size: int) -> int:
    return (64 << 20) + image_size // 16


def _probe_quota(client, image: str, kind: str) -> bool:
    """Whether the daemon counts a quota as ``kind`` says: in a container of ``image`` given the quota that
    ``kind`` computes for 8 MiB, a 4 MiB write must pass and a write past the whole quota must fail (under
    "layer" counting, btrfs full quota groups fail the first write: the image alone is over 8 MiB)."""
    import docker.errors

    from srl_swe.runtime.images import LABEL, OWNER_LABEL, owner_label

    size = quota_size(int(_image_attrs(client, image).get("Size") or 0), kind, 8 << 20)
    too_much = size + (32 << 20)  # more than the whole quota, image included: must fail whatever the driver counts
    probe = "/tmp/.srl-swe-quota-probe"
    script = f"head -c {4 << 20} /dev/zero > {probe}.small && echo small-ok; head -c {too_much} /dev/zero > {probe}"
    container = None
    try:
        container = client.containers.create(
            image, entrypoint=["sh", "-c", script], storage_opt={"size": str(size)}, network_mode="none",
            cap_drop=["ALL"], security_opt=["no-new-privileges:true"], labels={LABEL: "1", OWNER_LABEL: owner_label()})
        container.start()
        code = container.wait(timeout=60).get("StatusCode")
        out = container.logs().decode("utf-8", "replace").lower()
        return code != 0 and "small-ok" in out and ("quota" in out or "no space" in out)
    except docker.errors.APIError as exc:
        log.info("storage quota probe on %s: %s", image, exc)
        return False
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def _network_mode(client, network: bool | str) -> str:
    if isinstance(network, str):
        return network
    if not network:
        return "none"
    return "bridge" if client.networks.list(names=["bridge"]) else "host"


def create_sandbox(client, image: str, limits: SandboxLimits, **create: Any) -> tuple[Any, str | None]:
    """Create (not start) a hardened container from ``image``; ``create`` holds the caller's own
    ``containers.create`` arguments (name, entrypoint/command, labels, environment...); anything in it
    that would weaken the sandbox (capabilities, privileged mode, devices, host mounts) is refused.
    Returns ``(container, disk_mode)``: "quota", "monitor", or None when ``limits.disk`` is None."""
    import docker.errors

    for key in ("cap_add", "privileged", "devices", "volumes", "mounts", "security_opt", "userns_mode",
                "pid_mode", "ipc_mode"):
        if create.pop(key, None):
            log.info("sandbox for %s: dropped the caller's %s", image, key)
    attrs = _image_attrs(client, image)  # once: its USER and its size
    user = limits.user or image_user(attrs) or create.pop("user", None) or "root"
    create.pop("user", None)
    kwargs = dict(create, user=user, cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
                  network_mode=_network_mode(client, limits.network), mem_limit=limits.memory,
                  memswap_limit=limits.memory, nano_cpus=int(limits.cpus * 1e9), pids_limit=limits.pids)
    disk = limits.disk_bytes
    if disk is None:
        return client.containers.create(image, **kwargs), None
    kind = quota_kind(client, image) if limits.disk_mode != "monitor" else None
    if kind is not None:
        size = quota_size(int(attrs.get("Size") or 0), kind, disk)
        try:
            return client.containers.create(image, storage_opt={"size": str(size)}, **kwargs), "quota"
        except docker.errors.APIError as exc:
            if "storage" not in str(exc).lower() and "quota" not in str(exc).lower():
                raise
            log.warning("the Docker daemon refused a storage quota (%s); using the disk monitor", exc)
            _QUOTA_CACHE[_daemon_key(client)] = None
    if limits.disk_mode == "quota":
        raise docker.errors.InvalidArgument(
            "disk_mode='quota' but this Docker daemon's storage driver cannot enforce a size quota (it needs "
            "btrfs, or overlay2 on xfs with pquota; scripts/start_dockerd.sh sets up btrfs); use 'auto'")
    return client.containers.create(image, **kwargs), "monitor"


def writable_layer_bytes(api, container: str) -> int:
    """Bytes the container added to its image (the daemon walks the writable layer: ms for a work tree)."""
    info = api._result(api._get(api._url("/containers/{0}/json", container), params={"size": 1}), True)
    return int(info.get("SizeRw") or 0)


class DiskWatch:
    """Polls a container's writable layer every ``interval`` s and calls ``on_exceed(size)`` whenever it
    is over ``limit`` and has grown since the last call (so a command that deletes files to get back under
    the limit is not stopped for the files it is removing)."""

    def __init__(self, api, container: str, limit: int, on_exceed: Callable[[int], None], interval: float = 0.25):
        self.api, self.container, self.limit, self.on_exceed, self.interval = api, container, limit, on_exceed, interval
        self.exceeded = 0  # the size at the last stop, 0 while never over the limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"{container}-disk")
        self._thread.start()

    def _run(self) -> None:
        import docker.errors

        while not self._stop.wait(self.interval):
            try:
                size = writable_layer_bytes(self.api, self.container)
            except docker.errors.NotFound:
                return  # the container was removed: nothing left to watch
            except Exception:  # the daemon is busy or the container is restarting: try again next round
                continue
            if size <= self.limit:
                self.exceeded = 0
            elif size > self.exceeded:
                with contextlib.suppress(Exception):
                    self.on_exceed(size)
                # What the stopped writers had in flight lands after the stop: measure again, so that is not
                # taken for new growth (which would stop the agent's next command, e.g. the `rm` cleaning up).
                with contextlib.suppress(Exception):
                    size = max(size, writable_layer_bytes(self.api, self.container))
                self.exceeded = size

    def stop(self) -> None:
        self._stop.set()
