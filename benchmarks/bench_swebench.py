"""SWE-bench evaluation benchmark (one run, JSON + Markdown): srl-swe's grading vs the bare harness.

1. images: a task image built cold (``ensure_image(rebuild=True)``: no layer cache, the debootstrap base
   image and the cached sdist/wheels already present) and warm (``ensure_image`` on the existing image).
2. grading: per-instance wall time of ``srl_swe.swebench.grading.grade_with_harness`` (dataset and
   prediction files written, images ensured, the harness run in a subprocess, reports read back) against the
   bare ``python -m swebench.harness.run_evaluation`` on the same images and the same files. Each repeat uses
   a fresh run id, so both really grade; gold predictions for the two marshmallow tasks, one worker. srl-swe's
   path runs the harness in its hardened containers (``srl_swe.swebench.harness_sandbox``); the bare harness
   runs its own (root with CAP_SYS_ADMIN), acceptable here only because the patches are the gold ones.

Target (issue 4): per-instance evaluation wall time <= 1.2x the bare harness. Needs a Docker daemon.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results

TARGET_RATIO = 1.2


def _harness_files(instances: list, work: Path) -> tuple[Path, Path]:
    from srl_swe.swebench.prediction import make_prediction
    from srl_swe.swebench.specs import harness_record

    dataset, preds = work / "dataset.jsonl", work / "preds.jsonl"
    dataset.write_text("".join(json.dumps(harness_record(i)) + "\n" for i in instances))
    preds.write_text("".join(json.dumps(make_prediction(i.instance_id, i.patch, "gold").to_dict()) + "\n"
                             for i in instances))
    return dataset, preds


def bare_harness(dataset: Path, preds: Path, work: Path, run_id: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "swebench.harness.run_evaluation", "-d", str(dataset), "-s", "test",
                    "-p", str(preds), "-id", run_id, "--max_workers", "1", "--report_dir", "."],
                   cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def ours(instances: list, work: Path, run_id: str) -> tuple[float, int]:
    from srl_swe.swebench.grading import grade_with_harness
    from srl_swe.swebench.prediction import make_prediction

    preds = [make_prediction(i.instance_id, i.patch, "gold") for i in instances]
    start = time.perf_counter()
    results = grade_with_harness(preds, instances, run_id=run_id, workdir=work, max_workers=1)
    return time.perf_counter() - start, sum(r.resolved for r in results.values())


def bench_images(instances: list, cold: bool) -> dict[str, Any]:
    from srl_swe.runtime.images import docker_client
    from srl_swe.swebench.images import ensure_image

    client = docker_client()
    out: dict[str, Any] = {}
    if cold:
        start = time.perf_counter()
        ensure_image(instances[0], client, rebuild=True)
        out["cold_build_s"] = time.perf_counter() - start
    warm = []
    for _ in range(5):
        start = time.perf_counter()
        for inst in instances:
            ensure_image(inst, client)
        warm.append((time.perf_counter() - start) / len(instances))
    out["warm_ensure_s"] = min(warm)
    return out


def bench_grading(instances: list, repeats: int) -> dict[str, Any]:
    from srl_swe.swebench.images import ensure_image

    for inst in instances:  # both sides grade on the same, existing images
        ensure_image(inst)
    bare_t, ours_t, resolved = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-swebench-") as tmp:
        work = Path(tmp)
        dataset, preds = _harness_files(instances, work)
        for r in range(repeats):  # interleaved, so drift on a shared machine hits both sides alike
            bare_t.append(bare_harness(dataset, preds, work, f"bare{r}") / len(instances))
            t, n = ours(instances, work, f"ours{r}")
            ours_t.append(t / len(instances))
            resolved.append(n)
    res = {"instances": len(instances), "repeats": repeats, "bare_s_per_instance": bare_t,
           "ours_s_per_instance": ours_t, "resolved_each_run": resolved,
           "bare_median_s": statistics.median(bare_t), "ours_median_s": statistics.median(ours_t)}
    res["ratio_median"] = res["ours_median_s"] / res["bare_median_s"]
    res["ratio_best"] = min(ours_t) / min(bare_t)
    res["target"] = TARGET_RATIO
    res["met"] = res["ratio_median"] <= TARGET_RATIO
    return res


def run(tasks: Path, repeats: int = 5, cold: bool = True) -> dict[str, Any]:
    from srl_swe.swebench.datasets import load_instances

    instances = load_instances(tasks)
    return {"machine": machine_info(),
            "images": bench_images(instances, cold), "grading": bench_grading(instances, repeats)}


def markdown(res: dict[str, Any]) -> str:
    g, im = res["grading"], res["images"]
    rows = [("Per-instance grading: srl-swe / bare harness (median)",
             f"{g['ratio_median']:.2f}x ({g['ours_median_s']:.2f} vs {g['bare_median_s']:.2f} s; "
             f"{g['instances']} instances x {g['repeats']} runs)", f"<= {g['target']}x",
             "yes" if g["met"] else "**no**"),
            ("Task image, warm (ensure_image on an existing image)", f"{im['warm_ensure_s'] * 1000:.1f} ms", "-", "-")]
    if "cold_build_s" in im:
        rows.append(("Task image, cold (no layer cache)", f"{im['cold_build_s']:.1f} s", "-", "-"))
    lines = ["| benchmark | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=Path, default=None, help="local_tasks folder (default: $SRL_SWE_DATA/local_tasks)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/swebench.json"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-cold", action="store_true", help="skip the cold image build")
    args = ap.parse_args(argv)
    from srl_swe.paths import shared_data_dir

    res = run(args.tasks or shared_data_dir() / "local_tasks", args.repeats, cold=not args.no_cold)
    write_results(args.out, res, markdown(res))
    print(markdown(res))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
