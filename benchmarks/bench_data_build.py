"""Step data at the paper's scale: `srl-swe data build` (streaming) at 1x, 10x and 40x copies of the shared
mini-swe-agent set, against the in-memory build it replaced, and what `gym.make("SRL-SWE-v0")` costs there.

    python benchmarks/bench_data_build.py [--copies 1,10,40] [--memory-copies 1,10] [--gym-copies 40]
        [--out benchmarks/results/data_build.json]

* Data: ``$SRL_SWE_DATA/trajectories/mini-swe-agent`` (103 trajectories with their harness reports) linked N
  times into a scratch folder (hard links where the file system allows: the same bytes, read N times), every
  trajectory kept (``--keep all``), xml syntax, the paper's window of 2 pairs.
* Each measurement is its own process, timed from outside (wall) with its peak RSS from ``wait4``: the CLI's
  ``data build`` (streaming: two passes over the files, rows written in Arrow record batches), the build it
  replaced (every trajectory and row in memory, then ``Dataset.from_list``; at 40x it overflows Arrow's 2 GB
  string offsets after 80 s at 8.2 GB, so it runs at the smaller sizes only), and ``gym.make`` + ``reset``.
* The streaming build at 1x and the in-memory one give the same fingerprint (checked here, and in
  tests/test_dataset_stream.py on every shared format).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results

REPO = Path(__file__).resolve().parents[1]

IN_MEMORY = """
import json, sys
from pathlib import Path
from srl_swe.dataset import build_dataset
from srl_swe.steps import StepConfig
from srl_swe.trajectories import load_trajectories
ds = build_dataset(load_trajectories(sys.argv[1], keep="all"), StepConfig(syntax="xml", window=2), progress=False)
ds.save_to_disk(sys.argv[2])
print(json.dumps({"examples": len(ds), "fingerprint": ds._fingerprint}))
"""

GYM = """
import json, sys, time
import gymnasium as gym
import srl_swe.envs  # noqa: F401 - registers the ids
t0 = time.perf_counter()
env = gym.make("SRL-SWE-v0", data=sys.argv[1], keep="all", window=2, mode="step")
made = time.perf_counter() - t0
env.reset(seed=0)
base = env.unwrapped
print(json.dumps({"make_s": made, "trajectories": len(base.trajectories),
                  "examples": sum(len(t.steps) for t in base.trajectories)}))
"""


def measured(cmd: list[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, peak RSS (GB, from wait4: the process and nothing else), exit status and
    the JSON it printed last (if any)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    last = next((line for line in reversed(text.splitlines()) if line.startswith("{")), None)
    res = {"wall_s": round(wall, 2), "peak_rss_gb": round(usage.ru_maxrss / 1e6, 3), "exit": code,
           **(json.loads(last) if last else {})}
    if code:
        res["error"] = (errors.strip().splitlines() or ["(no output)"])[-1][:400]
    return res


def make_copies(src: Path, n: int, root: Path) -> Path:
    """``n`` copies of ``src`` under ``root/x<n>``, as hard links when possible."""
    dest = root / f"x{n}"
    if dest.is_dir():
        return dest
    for k in range(n):
        shutil.copytree(src, dest / f"copy{k:03d}", copy_function=_link)
    return dest


def _link(a: str, b: str) -> None:
    try:
        os.link(a, b)
    except OSError:
        shutil.copy2(a, b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", default="1,10,40", help="sizes of the streaming build (copies of the set)")
    ap.add_argument("--memory-copies", default="1,10", help="sizes of the in-memory build it replaced")
    ap.add_argument("--gym-copies", default="40", help="sizes at which gym.make is measured")
    ap.add_argument("--data", type=Path, default=None, help="the set to copy (default: the shared mini-swe-agent)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "data_build.json")
    args = ap.parse_args(argv)
    from srl_swe.paths import shared_data_dir

    src = (args.data or shared_data_dir() / "trajectories" / "mini-swe-agent").resolve()
    if not src.is_dir():
        raise SystemExit(f"{src}: not found (set SRL_SWE_DATA or pass --data)")
    sizes = {name: [int(x) for x in getattr(args, name).split(",") if x]
             for name in ("copies", "memory_copies", "gym_copies")}
    size_mb = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) / 1e6
    res: dict[str, Any] = {"machine": machine_info(), "settings": {"data": str(src), "data_mb": round(size_mb, 1),
                                                                  "keep": "all", "syntax": "xml", "window": 2},
                           "streaming": {}, "in_memory": {}, "gym_make": {}}
    cli = [sys.executable, "-m", "srl_swe.cli", "data", "build"]
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        root = Path(tmp)
        for n in sorted({*sizes["copies"], *sizes["memory_copies"], *sizes["gym_copies"]}):
            data = make_copies(src, n, root)
            if n in sizes["copies"]:
                out = root / f"built{n}"
                r = measured([*cli, str(data), "--out", str(out), "--keep", "all", "--syntax", "xml", "--window",
                              "2", "--quiet"])
                if not r["exit"]:
                    info = json.loads((out / "build_info.json").read_text())
                    r.update(examples=info["examples"], trajectories=info["trajectories"],
                             fingerprint=info["fingerprint"], disk_mb=round(sum(
                                 p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6, 1))
                shutil.rmtree(out, ignore_errors=True)
                res["streaming"][str(n)] = r
                print(f"streaming x{n}: {r}", flush=True)
            if n in sizes["memory_copies"]:
                r = measured([sys.executable, "-c", IN_MEMORY, str(data), str(root / f"mem{n}")])
                shutil.rmtree(root / f"mem{n}", ignore_errors=True)
                res["in_memory"][str(n)] = r
                print(f"in memory x{n}: {r}", flush=True)
            if n in sizes["gym_copies"]:
                r = measured([sys.executable, "-c", GYM, str(data)])
                res["gym_make"][str(n)] = r
                print(f"gym.make x{n}: {r}", flush=True)
    for n, r in res["streaming"].items():
        if n in res["in_memory"] and "fingerprint" in r and "fingerprint" in res["in_memory"][n]:
            r["same_fingerprint_as_in_memory"] = r["fingerprint"] == res["in_memory"][n]["fingerprint"]
    write_results(args.out, res, markdown(res))
    print(markdown(res))
    return 0


def markdown(res: dict[str, Any]) -> str:
    s, m = res["settings"], res["machine"]
    lines = [f"Step data build: copies of {s['data']} ({s['data_mb']} MB each), keep all, {s['syntax']}, window "
             f"{s['window']}; {m['cpu_count']} CPUs, {m['date']}.", "",
             "| build | copies | trajectories | step examples | wall s | peak RSS GB | us / example | note |",
             "|---|---|---|---|---|---|---|---|"]
    for name, key in (("streaming (`srl-swe data build`)", "streaming"), ("in memory (before)", "in_memory")):
        for n, r in sorted(res[key].items(), key=lambda kv: int(kv[0])):
            per = f"{1e6 * r['wall_s'] / r['examples']:.0f}" if r.get("examples") else "-"
            note = r.get("error", "") if r["exit"] else ("same fingerprint" if r.get("same_fingerprint_as_in_memory")
                                                        else "")
            lines.append(f"| {name} | {n} | {r.get('trajectories', '-')} | {r.get('examples', '-')} | {r['wall_s']} | "
                         f"{r['peak_rss_gb']} | {per} | {note} |")
    for n, r in sorted(res["gym_make"].items(), key=lambda kv: int(kv[0])):
        if r["exit"]:
            lines += ["", f"gym.make at {n} copies failed: {r.get('error')}"]
            continue
        lines += ["", f"`gym.make(\"SRL-SWE-v0\")` at {n} copies ({r['trajectories']} trajectories, "
                      f"{r['examples']} step examples): {r['make_s']:.1f} s to make, {r['wall_s']} s with "
                      f"interpreter start and reset, peak "
                      f"RSS {r['peak_rss_gb']} GB ({1e6 * r['make_s'] / r['examples']:.0f} us and "
                      f"{1e9 * r['peak_rss_gb'] / r['examples'] / 1e3:.1f} kB per step example)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
