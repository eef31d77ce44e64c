#!/usr/bin/env bash
# Make sure a Docker daemon answers (the docker runtime, the SWE-bench harness and CI need one).
# Idempotent: if `docker info` already works, do nothing. Otherwise install docker.io + debootstrap when
# missing (needs root and a Debian/Ubuntu apt mirror) and start dockerd in the background with its own
# data/exec roots under $SRL_SWE_DOCKER_ROOT (default /var/lib/srl-swe-docker), then wait for it.
#
# The daemon runs without iptables and without the default bridge: containers get loopback only unless
# started with the host network, which is what sandboxed evaluation wants, and it works on hosts (VMs,
# CI containers) where iptables/bridges are unavailable. Stop it with: kill "$(cat "$ROOT/dockerd.pid")".
set -euo pipefail

ROOT="${SRL_SWE_DOCKER_ROOT:-/var/lib/srl-swe-docker}"
WAIT="${SRL_SWE_DOCKERD_WAIT:-60}"
# Storage driver. "auto" (default): btrfs on a loopback file under $ROOT when the kernel has btrfs, so the
# daemon can give every sandbox container a hard disk quota (srl_swe/runtime/sandbox.py); else overlay2,
# where the runtime's disk monitor stops a container that outgrows its limit. overlay2 / vfs (where overlay
# mounts are not allowed, e.g. nested in some CI containers) / btrfs force one.
STORAGE="${SRL_SWE_DOCKER_STORAGE:-auto}"
# Size of the btrfs loopback file (sparse: it takes only what images and containers write).
BTRFS_SIZE="${SRL_SWE_DOCKER_BTRFS_SIZE:-64G}"

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "start_dockerd: a Docker daemon already answers; nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "start_dockerd: no Docker daemon answers and starting one needs root; rerun with sudo," >&2
    echo "  or use the local runtime (--runtime local)" >&2
    exit 1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "start_dockerd: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Listen where the clients will look: $DOCKER_HOST when it names a unix socket, else the default socket.
host_args=()
case "${DOCKER_HOST:-}" in unix://*) host_args=(-H "$DOCKER_HOST") ;; esac

mkdir -p "$ROOT/data" "$ROOT/exec"

# Put $ROOT/data on btrfs (a loopback file), once; returns non-zero when this host cannot.
setup_btrfs() {
    if [ "$(findmnt -n -o FSTYPE --target "$ROOT/data" 2>/dev/null)" = btrfs ]; then
        btrfs quota enable "$ROOT/data" 2>/dev/null || true
        return 0
    fi
    grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || return 1
    grep -qw btrfs /proc/filesystems || return 1
    if ! command -v mkfs.btrfs >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq btrfs-progs >/dev/null 2>&1 || return 1
    fi
    if [ ! -f "$ROOT/btrfs.img" ]; then
        truncate -s "$BTRFS_SIZE" "$ROOT/btrfs.img.tmp" && mkfs.btrfs -q "$ROOT/btrfs.img.tmp" >/dev/null \
            && mv "$ROOT/btrfs.img.tmp" "$ROOT/btrfs.img" || { rm -f "$ROOT/btrfs.img.tmp"; return 1; }
    fi
    # discard=async: freed space goes back to the sparse file in batches, after the container removal that
    # freed it (a synchronous discard punches the loopback file's holes during the removal).
    mount -o loop,discard=async "$ROOT/btrfs.img" "$ROOT/data" 2>/dev/null || return 1
    # Quota groups on before anything is written: enabled later (dockerd does it at the first sized
    # container), btrfs accepts each container's size limit and does not enforce it.
    btrfs quota enable "$ROOT/data" || return 1
}

if [ "$STORAGE" = auto ] || [ "$STORAGE" = btrfs ]; then
    if setup_btrfs; then
        STORAGE=btrfs
    elif [ "$STORAGE" = btrfs ]; then
        echo "start_dockerd: SRL_SWE_DOCKER_STORAGE=btrfs but $ROOT/data could not be put on btrfs" >&2
        exit 1
    else
        echo "start_dockerd: no btrfs here; using overlay2 (sandbox disk limits are then enforced by a monitor)"
        STORAGE=overlay2
    fi
fi
PIDFILE="$ROOT/dockerd.pid"
LOG="$ROOT/dockerd.log"

# A daemon of ours may be running but not answering yet (e.g. a previous call timed out while starting).
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "start_dockerd: dockerd (pid $(cat "$PIDFILE")) is already starting; waiting for it"
else
    rm -f "$PIDFILE"
    echo "start_dockerd: starting dockerd with storage driver $STORAGE (log: $LOG)"
    # setsid + nohup: the daemon must outlive this script and its session (CI steps, ssh logouts).
    setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver="$STORAGE" \
        --data-root="$ROOT/data" --exec-root="$ROOT/exec" --pidfile="$PIDFILE" "${host_args[@]}" \
        >>"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq "$WAIT"); do
    if docker info >/dev/null 2>&1; then
        echo "start_dockerd: Docker daemon is up"
        exit 0
    fi
    sleep 1
done
echo "start_dockerd: dockerd did not answer within ${WAIT}s; last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
