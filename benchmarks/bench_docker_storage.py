"""What a sandbox container costs on each Docker storage set-up that scripts/start_dockerd.sh can make.

    python benchmarks/bench_docker_storage.py [--containers 12] [--variants btrfs-simple,btrfs-full,overlay2]
        [--out benchmarks/results/docker_storage.json]

Every variant is a private daemon (its own data root under ``--root`` and its own socket) started by
``scripts/start_dockerd.sh`` on a fresh data root, with the same task image loaded into it (a held-out toolz
task's, built on the default daemon first). Then ``--containers`` sandboxes one after another, each as the
agent and the grader use them (``DockerRuntime`` with its 2 GiB disk limit: the driver's quota where it has
one, else the disk monitor): start, run the task's test file, write 16 MB, remove. Measured per variant:

* wall time of the loop and of the removals alone;
* for btrfs, the wait until the kernel has deleted the removed containers' subvolumes (``btrfs subvolume
  sync``): under full quota groups the kernel's btrfs-cleaner walks the back references of every extent a
  deleted snapshot shared with its image, and does it after the removal has returned;
* CPU seconds of that file system's own kernel threads (btrfs-cleaner, btrfs-transaction: the pids that
  appeared when it was mounted) and of the whole machine (``/proc/stat``, the containers' tests included,
  so that only the differences between variants are the storage's), over the loop and the wait.

Run it on an otherwise idle machine: the machine-wide figure counts everything. Needs root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "trajectories" / "swe-tasks" / "toolz-1.2.0"
#: variant -> (SRL_SWE_DOCKER_STORAGE, SRL_SWE_DOCKER_QUOTA)
VARIANTS = {"btrfs-simple": ("btrfs", "simple"), "btrfs-full": ("btrfs", "full"), "overlay2": ("overlay2", "auto")}
HZ = os.sysconf("SC_CLK_TCK")


def kthreads(prefix: str = "btrfs-") -> dict[int, str]:
    """Kernel threads (children of kthreadd) whose name starts with ``prefix``: pid -> name."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            if fields[1].split()[1] == "2" and name.startswith(prefix):  # ppid 2: a kernel thread
                out[int(stat.parent.name)] = name
        except (OSError, IndexError):
            continue
    return out


def thread_cpu(pids) -> float:
    total = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime (fields 14, 15 of stat)
        except (OSError, IndexError):
            continue
    return total / HZ


def machine_cpu() -> float:
    """Non-idle CPU seconds of the whole machine since boot (all cores)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / HZ  # user nice system idle iowait irq softirq steal: less idle, iowait


def stop_daemon(root: Path) -> None:
    pidfile = root / "dockerd.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        subprocess.run(["kill", str(pid)], capture_output=True)
        for _ in range(300):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.2)
    subprocess.run(["umount", str(root / "data")], capture_output=True)


def start_daemon(variant: str, root: Path) -> tuple[str, dict[int, str]]:
    """A fresh daemon for ``variant``: its socket, and the btrfs kernel threads its mount created."""
    stop_daemon(root)
    shutil.rmtree(root, ignore_errors=True)
    storage, quota = VARIANTS[variant]
    host = f"unix://{root}/docker.sock"
    before = kthreads()
    env = {**os.environ, "SRL_SWE_DOCKER_ROOT": str(root), "DOCKER_HOST": host, "SRL_SWE_DOCKER_STORAGE": storage,
           "SRL_SWE_DOCKER_QUOTA": quota, "SRL_SWE_DOCKER_BTRFS_SIZE": "16G"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "start_dockerd.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode:
        raise SystemExit(f"start_dockerd.sh for {variant} failed:\n{proc.stdout}{proc.stderr}")
    return host, {p: n for p, n in kthreads().items() if p not in before}


def copy_image(image: str, host: str) -> None:
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    subprocess.run(["docker", "-H", host, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
    if save.wait():
        raise SystemExit(f"docker save {image} failed")


def measure(variant: str, image: str, test_file: str, args: argparse.Namespace) -> dict[str, Any]:
    import docker
    from srl_swe.runtime.docker import DockerRuntime
    from srl_swe.runtime.sandbox import _QUOTA_CACHE

    root = args.root / variant
    host, threads = start_daemon(variant, root)
    try:
        copy_image(image, host)
        client = docker.DockerClient(base_url=host, timeout=300)
        _QUOTA_CACHE.clear()
        with DockerRuntime(image, client=client):  # the quota probe and a first start, outside the timing
            pass
        if shutil.which("btrfs") and threads:
            subprocess.run(["btrfs", "subvolume", "sync", str(root / "data")], capture_output=True)
        k0, m0, w0 = thread_cpu(threads), machine_cpu(), time.perf_counter()
        removal, modes = 0.0, set()
        for i in range(args.containers):
            rt = DockerRuntime(image, client=client)
            modes.add(rt.disk_mode)
            res = rt.execute(f"cd /testbed && python -m pytest -q -x -p no:cacheprovider {test_file} >/dev/null; "
                             "head -c 16000000 /dev/urandom > /tmp/written; echo done", timeout=300)
            if "done" not in res.output:
                raise SystemExit(f"{variant}: container {i} did not run: {res.output[-500:]}")
            t = time.perf_counter()
            rt.close()
            removal += time.perf_counter() - t
            print(f"{variant}: {i + 1}/{args.containers} {time.perf_counter() - w0:.0f}s", flush=True)
        loop = time.perf_counter() - w0
        if threads:  # btrfs: wait until the kernel has deleted what was removed
            subprocess.run(["btrfs", "subvolume", "sync", str(root / "data")], capture_output=True, timeout=3600)
        settle = time.perf_counter() - w0 - loop
        return {"storage": VARIANTS[variant][0], "quota": VARIANTS[variant][1], "disk_modes": sorted(modes),
                "containers": args.containers, "loop_wall_s": loop, "removal_wall_s": removal,
                "settle_wall_s": settle, "fs_threads": sorted(set(threads.values())),
                "fs_threads_cpu_s": thread_cpu(threads) - k0, "machine_cpu_s": machine_cpu() - m0}
    finally:
        stop_daemon(root)
        shutil.rmtree(root, ignore_errors=True)


def task_image() -> tuple[str, str]:
    """A held-out toolz task's image on the default daemon (built if missing) and one of its test files."""
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.swebench.images import ensure_image

    instances, _ = load_instances(TASKS, split="heldout", strict=False)
    inst = instances[0]
    test_file = next(t.split("::")[0] for t in inst.FAIL_TO_PASS)
    return ensure_image(inst), test_file


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"Docker storage for sandboxes: {res['containers']} sandboxes in a row (start, the task's test file, "
             f"16 MB written, remove) on {res['image']}, {m['cpu_count']} CPUs, kernel {m['platform']}, "
             f"{m['date']}. One run.", "",
             "| variant | disk limit by | loop wall s | removals s | wait for the kernel s | fs threads CPU s | "
             "machine CPU s | per container: wall s / fs CPU s |", "|---|---|---|---|---|---|---|---|"]
    for name, r in res["variants"].items():
        n = r["containers"]
        lines.append(f"| {name} | {', '.join(map(str, r['disk_modes']))} | {r['loop_wall_s']:.1f} | "
                     f"{r['removal_wall_s']:.1f} | {r['settle_wall_s']:.1f} | {r['fs_threads_cpu_s']:.1f} | "
                     f"{r['machine_cpu_s']:.1f} | {(r['loop_wall_s'] + r['settle_wall_s']) / n:.2f} / "
                     f"{r['fs_threads_cpu_s'] / n:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--containers", type=int, default=12)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--image", default=None, help="an image on the default daemon (default: a toolz task's)")
    ap.add_argument("--test-file", default="toolz/tests", help="with --image: what the containers run")
    ap.add_argument("--root", type=Path, default=Path("/var/lib/srl-swe-bench-docker"))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "docker_storage.json")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if bad := [v for v in variants if v not in VARIANTS]:
        raise SystemExit(f"--variants: unknown {bad}; choose from {', '.join(VARIANTS)}")
    if os.geteuid() != 0:
        raise SystemExit("needs root: each variant is a Docker daemon of its own")
    image, test_file = (args.image, args.test_file) if args.image else task_image()
    res = {"machine": machine_info(), "image": image, "test_file": test_file, "containers": args.containers,
           "variants": {}}
    for v in variants:
        res["variants"][v] = measure(v, image, test_file, args)
        write_results(args.out, res, markdown(res))  # after each variant: a kill keeps what was measured
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
