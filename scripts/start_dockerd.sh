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
# btrfs quota mode. "auto" (default): simple quotas where the kernel has them (Linux 6.7+), else full quota
# groups. Why simple: full quota groups walk the back references of every extent a deleted subvolume shares,
# and a removed container is a snapshot of its image, so each removal cost the kernel's btrfs-cleaner 15-50 s
# of a core after the fact (benchmarks/results/docker_storage.md); simple quotas charge each extent to the
# subvolume that wrote it, so a removal costs next to nothing, and a container's limit counts only its own
# writes. "simple" / "full" force one.
QUOTA="${SRL_SWE_DOCKER_QUOTA:-auto}"

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "start_dockerd: a Docker daemon already answers; nothing to do"
    exit 0
fi

# containerd makes Unix sockets under the exec root, and such a path may have at most 104 bytes there; a longer
# root fails only after containerd's start times out ("unix socket path too long (> 104)" in the daemon's log).
longest="$ROOT/exec/containerd/containerd-debug.sock"
if [ "${#longest}" -gt 104 ]; then
    echo "start_dockerd: SRL_SWE_DOCKER_ROOT=$ROOT is too long: containerd's socket $longest would be" \
         "${#longest} bytes, over the 104 a Unix socket path may have; use a folder with a shorter path" >&2
    exit 1
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

# The quota mode the btrfs file system mounted at $1 is in: squota, qgroup (full) or none.
quota_mode() {
    local uuid
    uuid="$(btrfs filesystem show "$1" 2>/dev/null | awk '/uuid:/ {print $NF; exit}')"
    cat "/sys/fs/btrfs/$uuid/qgroups/mode" 2>/dev/null || echo none
}

# Turn quota groups on at $1 in the mode $QUOTA asks for (a data root in the other mode is switched; the
# images stay; dockerd itself turns them off when it stops). btrfs-progs before 6.7 cannot ask for simple
# quotas, so that is the ioctl itself.
enable_quota() {
    local want="$QUOTA" have
    if [ "$want" = auto ]; then
        want=full
        [ -e /sys/fs/btrfs/features/simple_quota ] && want=simple
    fi
    have="$(quota_mode "$1")"
    case "$want:$have" in
        simple:squota | full:qgroup) return 0 ;;
        *:none) ;;
        *) btrfs quota disable "$1" || return 1 ;;
    esac
    # srl-swe's cached verdict on how this daemon counts a quota (srl_swe/runtime/sandbox.py) was made under
    # whatever mode was on before: probe again
    rm -rf "${SRL_SWE_CACHE:-$HOME/.cache/srl-swe}/quota"
    if [ "$want" = full ]; then
        btrfs quota enable "$1"
        return
    fi
    python3 - "$1" <<'EOF'
import fcntl, os, struct, sys
# BTRFS_IOC_QUOTA_CTL = _IOWR(0x94, 40, struct btrfs_ioctl_quota_ctl_args {u64 cmd; u64 status}),
# cmd BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA = 4 (linux/btrfs.h)
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.ioctl(fd, (3 << 30) | (16 << 16) | (0x94 << 8) | 40, bytearray(struct.pack("QQ", 4, 0)))
EOF
}

# Put $ROOT/data on btrfs (a loopback file), once; returns non-zero when this host cannot.
setup_btrfs() {
    if [ "$(findmnt -n -o FSTYPE --target "$ROOT/data" 2>/dev/null)" = btrfs ]; then
        enable_quota "$ROOT/data" || true
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
    enable_quota "$ROOT/data" || return 1
}

if [ "$STORAGE" = auto ] || [ "$STORAGE" = btrfs ]; then
    if setup_btrfs; then
        STORAGE=btrfs
        echo "start_dockerd: btrfs quota mode: $(quota_mode "$ROOT/data")"
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
