"""Task generation at scale (issue 12): >= 300 validated SWE tasks from three real PyPI packages (JSON + Markdown).

For each package of :data:`srl_swe.taskgen.sources.PACKAGES`, ``srl-swe tasks make`` (the same function): sample
``--n`` procedural bugs for ``--seed``, validate each by running the package's own suite twice, keep those that
some passing test catches, write SWE-bench instances; then (``--experts``) the scripted expert per task. Reported
per package: tasks kept, candidates validated, yield per mutation family (kept / tried), why the others were
dropped, baseline size and time, validation time (test-run seconds summed over workers) and wall time, the
train/heldout split, expert trajectories kept. With ``--docker K``, the env image of each package is built (or
reused: its time is reported) and K gold patches per package are graded by the sandboxed harness.

Resumable: the output folders are ``tasks make`` folders, so a rerun (or a run after a kill) validates only
what is missing. Runs for hours on 2 cores at the default sizes; not a CI test.

    python benchmarks/bench_tasks.py [--out-dir runs/tasks] [--n 450 250 250] [--experts] [--docker 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results

TARGET_TASKS = 300
#: Candidates per package at the defaults, sized from a first run's yields so the total clears TARGET_TASKS.
DEFAULT_N = (200, 110, 130)


def _folder(spec) -> str:
    return f"{spec.package}-{spec.package_version}"


def _docker_check(folder: Path, spec, k: int) -> dict[str, Any]:
    from srl_swe.runtime.images import docker_client
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.swebench.grading import grade_with_harness
    from srl_swe.swebench.images import ensure_env_image, ensure_image
    from srl_swe.swebench.prediction import make_prediction

    client = docker_client()
    start = time.perf_counter()
    ensure_env_image(spec, client)
    env_s = time.perf_counter() - start
    tasks = load_instances(folder)[:k]
    start = time.perf_counter()
    for task in tasks:
        ensure_image(task, client)
    task_image_s = (time.perf_counter() - start) / max(1, len(tasks))
    preds = [make_prediction(t.instance_id, t.patch, "gold") for t in tasks]
    results = grade_with_harness(preds, tasks, run_id=f"bench-gold-{int(time.time())}", workdir=folder / "harness",
                                 client=client)
    return {"env_image_s": round(env_s, 2), "task_image_s": round(task_image_s, 2), "graded": len(results),
            "resolved": sum(r.resolved for r in results.values())}


def run(packages: list[str], ns: list[int], out_dir: Path, seed: int, workers: int, experts: bool,
        docker: int) -> dict[str, Any]:
    from srl_swe.cli.tasks import inspect
    from srl_swe.taskgen.run import generate
    from srl_swe.taskgen.sources import source_spec

    rows = []
    for src, n in zip(packages, ns, strict=True):
        spec = source_spec(src)
        folder = out_dir / _folder(spec)
        start = time.perf_counter()
        summary = generate(spec, folder, n=n, seed=seed, workers=workers)
        row = {"src": src, "repo": spec.repo, "n": n, "summary": summary, "inspect": inspect(folder),
               "wall_s_this_run": round(time.perf_counter() - start, 1)}
        if experts:
            from srl_swe.taskgen.expert import write_experts

            write_experts(folder, workers=workers)
            row["experts"] = json.loads((folder / "experts" / "summary.json").read_text())
        if docker:
            row["docker"] = _docker_check(folder, spec, docker)
        rows.append(row)
    total = sum(r["inspect"]["tasks"] for r in rows)
    return {"machine": machine_info(), "seed": seed, "workers": workers, "packages": rows, "total_tasks": total,
            "target": TARGET_TASKS, "met": total >= TARGET_TASKS and len(rows) >= 3}


def markdown(res: dict[str, Any]) -> str:
    lines = ["| package | tasks | validated | yield | train / heldout | baseline tests (s/run) | test-run s | "
             "experts kept |", "|---|---|---|---|---|---|---|---|"]
    families: dict[str, list[int]] = {}
    for row in res["packages"]:
        s, ins = row["summary"], row["inspect"]
        splits = s.get("splits", {}).get("counts", {})
        experts = row.get("experts", {}).get("kept", "-")
        lines.append(f"| {s['package']} {s['package_version']} | {ins['tasks']} | {s['validated']} | "
                     f"{s['kept'] / max(1, s['validated']):.0%} | {splits.get('train', 0)} / {splits.get('heldout', 0)}"
                     f" | {s['baseline']['passing']} ({s['baseline']['seconds']:.1f}) | {s['validation_seconds']:.0f}"
                     f" | {experts} |")
        for family, f in s["families"].items():
            families.setdefault(family, [0, 0])
            families[family][0] += f["kept"]
            families[family][1] += f["tried"]
    lines.append(f"| **all** | **{res['total_tasks']}** | | | | | | "
                 f"{sum(r.get('experts', {}).get('kept', 0) for r in res['packages'])} |")
    for row in res["packages"]:
        s, e, d = row["summary"], row.get("experts"), row.get("docker")
        notes = []
        if e:
            notes.append(f"experts {e['kept']} / {e['tried']} kept, {e['seconds_per_task']} s per task with grading "
                         f"({e['runtime']})")
        if d:
            notes.append(f"Docker: env image {d['env_image_s']} s (built once, then reused), task image "
                         f"{d['task_image_s']} s, gold {d['resolved']} / {d['graded']} resolved by the harness")
        if notes:
            lines.append(f"\n{s['package']}: " + "; ".join(notes) + ".")
    lines += ["", "| mutation family | kept / tried | yield |", "|---|---|---|"]
    lines += [f"| {fam} | {k} / {t} | {k / max(1, t):.0%} |" for fam, (k, t) in sorted(families.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from srl_swe.taskgen.sources import PACKAGES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packages", nargs="+", default=list(PACKAGES))
    ap.add_argument("--n", nargs="+", type=int, default=list(DEFAULT_N), help="candidates per package")
    ap.add_argument("--out-dir", type=Path, default=Path("runs/tasks"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/tasks.json"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--experts", action="store_true", help="also write the scripted expert trajectories")
    ap.add_argument("--docker", type=int, default=0, metavar="K", help="grade K gold patches per package on Docker")
    args = ap.parse_args(argv)
    if len(args.n) != len(args.packages):
        ap.error(f"--n needs one count per package ({len(args.packages)})")
    res = run(args.packages, args.n, args.out_dir, args.seed, args.workers, args.experts, args.docker)
    write_results(args.results, res, markdown(res))
    print(markdown(res))
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
