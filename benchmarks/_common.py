"""What every benchmark script shares: the machine record, timing with the collector off, cProfile text, and
writing results (JSON + Markdown side by side). Not a benchmark: the underscore keeps it out of ``bench_*``."""

from __future__ import annotations

import datetime
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import srl_swe
from srl_swe.rewards import RATIO_BACKEND


def package_version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Enough to tell two runs' machines and library versions apart."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0], "implementation": platform.python_implementation(),
        "platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "srl_swe": srl_swe.__version__, "ratio_backend": RATIO_BACKEND,
        "cydifflib": package_version("cydifflib"), "gymnasium": package_version("gymnasium"),
    }


def timed(fn: Callable[[], Any]) -> float:
    """Seconds for one call with the garbage collector off, as ``timeit`` does (a collection landing in one
    side of a comparison would be noise, not cost)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def time_stats(times: Sequence[float], n: int) -> dict[str, Any]:
    """Best and median of timing passes of ``n`` calls each; the best is the figure (noise only adds time)."""
    best = min(times)
    return {"best_s": best, "median_s": statistics.median(times), "runs_s": list(times),
            "best_us_per_call": 1e6 * best / max(n, 1)}


def profile_top(stats: pstats.Stats, top: int = 25) -> list[str]:
    """The ``top`` functions by cumulative time, one line each (for the results JSON)."""
    buf = io.StringIO()
    stats.stream = buf
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    return [line.rstrip() for line in buf.getvalue().splitlines() if line.strip()]


def write_results(out: Path, res: dict[str, Any], markdown: str) -> None:
    """``out`` (JSON) and ``out`` with ``.md`` (the same figures as a table), creating the folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown + "\n")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate k/n (95 % at z=1.96): unlike k/n +- 2 se it stays inside [0, 1] and is
    not zero-width at 0/n, the usual count of a small model."""
    if n <= 0:
        return (0.0, 1.0)
    p, zz = k / n, z * z
    centre, half = (p + zz / (2 * n)) / (1 + zz / n), z * ((p * (1 - p) + zz / (4 * n)) / n) ** 0.5 / (1 + zz / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
