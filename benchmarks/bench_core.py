"""Core benchmarks: reward throughput, environment step overhead, loading time.

Run from the repository root (the shared data is found as in ``srl_swe.paths.shared_data_dir``)::

    python benchmarks/bench_core.py [--data DIR] [--out benchmarks/results/core.json] [--quick] [--repeats N]

1. ``reward``: ``srl_swe.rewards.sequence_similarity`` (cydifflib) against stdlib
   ``difflib.SequenceMatcher(None, pred, expert).ratio()`` on real expert actions and deterministic
   perturbations of them; every value must be bit-identical (``==``). Target: >= 3x faster.
2. ``env``: ``env.step(output)`` of ``SRL-SWE-v0`` (step mode) against the bare
   ``srl_swe.rewards.score_output(output, expert, "xml")`` on the same outputs. ``reset`` is timed
   separately. Target: step / bare <= 1.10. Above it, a cProfile of the step loop is stored.
3. ``loading``: ``load_trajectories(..., keep="all")`` + ``build_steps`` over every shared trajectory
   (target < 5 s), and GSM8K train as an extra figure.

Timings are the best (and the median) of ``--repeats`` passes with the garbage collector off, as
``timeit`` does. The JSON holds every figure; a Markdown summary is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import difflib
import gc
import io
import json
import os
import platform
import pstats
import random
import re
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

import srl_swe  # registers the environments
from srl_swe.actions import render
from srl_swe.paths import shared_data_dir
from srl_swe.rewards import score_output, sequence_similarity
from srl_swe.schema import ToolCall
from srl_swe.steps import build_steps
from srl_swe.trajectories import load_trajectories

TARGETS = {"reward_speedup_min": 3.0, "env_step_ratio_max": 1.10, "load_seconds_max": 5.0}
KINDS = ("delete", "insert", "replace", "swap", "unrelated")
KIND_WEIGHTS = (3, 3, 3, 2, 1)
NOISE = string.ascii_letters + string.digits + string.punctuation + " \n"
WORDS = "look at the file first then run the tests and check which line fails before editing".split()
QUICK = {"pairs": 400, "env_examples": 300, "repeats": 3}
FULL = {"pairs": None, "env_examples": None, "repeats": 5}
Pair = tuple[str, str, str]  # (kind, predicted, expert)


# -- deterministic perturbations ---------------------------------------------------------------------
def perturb_text(text: str, rng: random.Random, kind: str, pool: Sequence[str]) -> str:
    """Delete / insert / replace a random span of 5-30 % of the length, swap two tokens, or pick another text."""
    if kind == "unrelated":
        return rng.choice(pool)
    if kind == "swap":
        tokens = re.split(r"(\s+)", text)
        words = [i for i, tok in enumerate(tokens) if tok and not tok.isspace()]
        if len(words) >= 2:
            a, b = rng.sample(words, 2)
            tokens[a], tokens[b] = tokens[b], tokens[a]
            return "".join(tokens)
        kind = "replace"
    n = len(text)
    size = max(1, round(n * rng.uniform(0.05, 0.30)))
    start = rng.randrange(max(1, n - size + 1))
    noise = "".join(rng.choice(NOISE) for _ in range(size))
    if kind == "delete":
        return text[:start] + text[start + size :]
    if kind == "insert":
        return text[:start] + noise + text[start:]
    return text[:start] + noise + text[start + size :]


def expert_calls(data: Path) -> list[ToolCall]:
    """Every expert action of the shared trajectories, in trajectory then step order."""
    result = load_trajectories(data / "trajectories", keep="all")
    return [s.action for t in result.trajectories for s in t.steps]


def make_pairs(calls: Sequence[ToolCall], limit: int | None = None, seed: int = 0) -> list[Pair]:
    """(kind, predicted, expert) for the rendered expert actions; seeded, so every run scores the same pairs."""
    rng = random.Random(seed)
    experts = [render(c, "xml") for c in calls]
    if limit is not None and limit < len(experts):
        experts = rng.sample(experts, limit)
    pairs = []
    for expert in experts:
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        pairs.append((kind, perturb_text(expert, rng, kind, experts), expert))
    return pairs


# -- timing helpers ----------------------------------------------------------------------------------
def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def _stats(times: Sequence[float], n: int) -> dict[str, Any]:
    best, median = min(times), statistics.median(times)
    return {"best_s": best, "median_s": median, "runs_s": list(times), "best_us_per_call": 1e6 * best / max(n, 1)}


def stdlib_similarity(predicted: str, expert: str) -> float:
    return difflib.SequenceMatcher(None, predicted, expert).ratio()


# -- 1. reward throughput ----------------------------------------------------------------------------
def bench_reward(pairs: Sequence[Pair], repeats: int = 5) -> dict[str, Any]:
    cy_values = [sequence_similarity(p, e) for _, p, e in pairs]
    std_values = [stdlib_similarity(p, e) for _, p, e in tqdm(pairs, desc="difflib values", leave=False)]
    mismatches = [i for i, (a, b) in enumerate(zip(cy_values, std_values, strict=True)) if a != b]
    cy_times, std_times = [], []
    for _ in tqdm(range(repeats), desc="reward timing", leave=False):  # interleaved, so drift hits both
        std_times.append(_timed(lambda: [stdlib_similarity(p, e) for _, p, e in pairs]))
        cy_times.append(_timed(lambda: [sequence_similarity(p, e) for _, p, e in pairs]))
    cy, std = _stats(cy_times, len(pairs)), _stats(std_times, len(pairs))
    kinds = {k: sum(1 for kind, _, _ in pairs if kind == k) for k in KINDS}
    return {
        "pairs": len(pairs), "kinds": kinds, "repeats": repeats,
        "expert_chars": {"total": sum(len(e) for _, _, e in pairs), "max": max(len(e) for _, _, e in pairs)},
        "identical": not mismatches, "mismatches": len(mismatches), "mean_similarity": statistics.fmean(cy_values),
        "cydifflib": cy, "difflib": std,
        "speedup": std["best_s"] / cy["best_s"], "speedup_median": std["median_s"] / cy["median_s"],
    }


# -- 2. environment step vs bare reward --------------------------------------------------------------
def make_env(data: Path) -> gym.Env:
    return gym.make("SRL-SWE-v0", data=data / "trajectories", keep="all", mode="step")


def env_outputs(env: gym.Env, limit: int | None = None, seed: int = 0) -> list[tuple[int, str, str]]:
    """(example index, model output, expert rendering): ``<think>…</think>`` + a perturbed expert call."""
    rng = random.Random(seed)
    base = env.unwrapped
    indices = list(range(base.num_examples))
    if limit is not None and limit < len(indices):
        indices = sorted(rng.sample(indices, limit))
    calls = [base.trajectories[i].steps[k].action for i, k in base.index]
    out = []
    for idx in indices:
        call = calls[idx]
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        if kind == "unrelated":
            pred = rng.choice(calls)
        else:  # perturb the argument values so the output stays one well-formed action
            pred = ToolCall(call.name, tuple((k, perturb_text(v, rng, kind, ()) if v else v) for k, v in call.arguments))
        thought = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 200)))
        out.append((idx, f"<think>\n{thought}\n</think>\n{render(pred, 'xml')}", render(call, "xml")))
    return out


def bench_env(env: gym.Env, items: Sequence[tuple[int, str, str]], repeats: int = 5) -> dict[str, Any]:
    reset_times, step_times, bare_times = [], [], []
    env_rewards: list[float] = []
    expert_ok = True
    for r in tqdm(range(repeats), desc="env timing", leave=False):
        reset_t = step_t = bare_t = 0.0
        rewards = []
        gc.collect()
        gc.disable()
        try:
            for idx, output, expert in items:
                t0 = time.perf_counter()
                env.reset(options={"index": idx})
                t1 = time.perf_counter()
                _, reward, *_, info = env.step(output)
                t2 = time.perf_counter()
                reset_t, step_t = reset_t + t1 - t0, step_t + t2 - t1
                rewards.append(reward)
                if r == 0:
                    expert_ok = expert_ok and info["expert_action"] == expert
            for _, output, expert in items:
                t0 = time.perf_counter()
                score_output(output, expert, "xml")
                bare_t += time.perf_counter() - t0
        finally:
            gc.enable()
        reset_times.append(reset_t)
        step_times.append(step_t)
        bare_times.append(bare_t)
        env_rewards = rewards
    bare_scores = [score_output(o, e, "xml") for _, o, e in items]
    step, bare, reset = (_stats(x, len(items)) for x in (step_times, bare_times, reset_times))
    return {
        "examples": len(items), "of": env.unwrapped.num_examples, "repeats": repeats,
        "valid_outputs": sum(s.valid for s in bare_scores),
        "rewards_identical": env_rewards == [s.reward for s in bare_scores], "expert_actions_match": expert_ok,
        "step": step, "bare_reward": bare, "reset": reset,
        "ratio": step["best_s"] / bare["best_s"], "ratio_median": step["median_s"] / bare["median_s"],
        "reset_plus_step_ratio": (step["best_s"] + reset["best_s"]) / bare["best_s"],
    }


def profile_env(env: gym.Env, items: Sequence[tuple[int, str, str]], top: int = 25) -> list[str]:
    """cProfile of ``step`` only (reset runs outside the profiler): the top functions by cumulative time."""
    prof = cProfile.Profile()
    for idx, output, _ in items:
        env.reset(options={"index": idx})
        prof.enable()
        env.step(output)
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(top)
    return [line.rstrip() for line in buf.getvalue().splitlines() if line.strip()]


# -- 3. loading ------------------------------------------------------------------------------------------
def bench_loading(path: Path, repeats: int = 3) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = load_trajectories(path, keep="all")
        t1 = time.perf_counter()
        steps = build_steps(result.trajectories)
        t2 = time.perf_counter()
        runs.append({"load_s": t1 - t0, "build_steps_s": t2 - t1, "total_s": t2 - t0})
    best = min(runs, key=lambda x: x["total_s"])
    return {"path": str(path), "trajectories": len(result.trajectories), "skipped": len(result.skipped),
            "steps": len(steps), "first_total_s": runs[0]["total_s"], **best, "runs": runs}


# -- report -------------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0], "implementation": platform.python_implementation(),
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(), "cpu_affinity": affinity, "srl_swe": srl_swe.__version__,
        "cydifflib": version("cydifflib"), "gymnasium": version("gymnasium"),
    }


def run(data: Path, quick: bool = False, repeats: int | None = None, profile: bool | None = None) -> dict[str, Any]:
    """Every benchmark; ``profile=None`` profiles the env step only when it misses its target."""
    cfg = QUICK if quick else FULL
    repeats = repeats or cfg["repeats"]
    out: dict[str, Any] = {"machine": machine_info(), "data": str(data), "quick": quick, "targets": TARGETS}
    pairs = make_pairs(expert_calls(data), cfg["pairs"])
    out["reward"] = bench_reward(pairs, repeats)
    env = make_env(data)
    items = env_outputs(env, cfg["env_examples"])
    out["env"] = bench_env(env, items, repeats)
    if profile or (profile is None and out["env"]["ratio"] > TARGETS["env_step_ratio_max"]):
        out["env"]["profile"] = profile_env(env, items)
    env.close()
    out["loading"] = {"trajectories": bench_loading(data / "trajectories", 1 if quick else 3)}
    gsm8k = data / "math" / "gsm8k" / "train.jsonl"
    if gsm8k.is_file():
        out["loading"]["gsm8k_train"] = bench_loading(gsm8k, 1 if quick else 3)
    out["ok"] = {
        "values_identical": out["reward"]["identical"] and out["env"]["rewards_identical"],
        "reward_speedup": out["reward"]["speedup"] >= TARGETS["reward_speedup_min"],
        "env_step_ratio": out["env"]["ratio"] <= TARGETS["env_step_ratio_max"],
        "load_seconds": out["loading"]["trajectories"]["total_s"] < TARGETS["load_seconds_max"],
    }
    return out


def markdown(res: dict[str, Any]) -> str:
    rw, ev, ld, ok = res["reward"], res["env"], res["loading"], res["ok"]
    tr = ld["trajectories"]
    yes = {True: "yes", False: "**no**"}
    rows = [
        ("Reward: cydifflib vs difflib speed-up", f"{rw['speedup']:.2f}x ({rw['pairs']} pairs, "
         f"{rw['cydifflib']['best_us_per_call']:.1f} vs {rw['difflib']['best_us_per_call']:.1f} us/pair)",
         f">= {TARGETS['reward_speedup_min']:.0f}x", yes[ok["reward_speedup"]]),
        ("Reward values bit-identical", f"{rw['mismatches']} mismatches; env rewards == bare: "
         f"{ev['rewards_identical']}", "0", yes[ok["values_identical"]]),
        ("Env step / bare score_output", f"{ev['ratio']:.2f}x ({ev['step']['best_us_per_call']:.1f} vs "
         f"{ev['bare_reward']['best_us_per_call']:.1f} us; reset {ev['reset']['best_us_per_call']:.1f} us)",
         f"<= {TARGETS['env_step_ratio_max']:.2f}x", yes[ok["env_step_ratio"]]),
        ("Load + build_steps, shared trajectories", f"{tr['total_s']:.2f} s ({tr['trajectories']} traj, "
         f"{tr['steps']} steps)", f"< {TARGETS['load_seconds_max']:.0f} s", yes[ok["load_seconds"]]),
    ]
    if "gsm8k_train" in ld:
        g = ld["gsm8k_train"]
        rows.append(("Load + build_steps, GSM8K train", f"{g['total_s']:.2f} s ({g['trajectories']} problems, "
                     f"{g['steps']} steps)", "-", "-"))
    m = res["machine"]
    lines = [f"Python {m['python']}, {m['cpu_count']} CPUs, cydifflib {m['cydifflib']}, {m['date']}"
             + (" (quick)" if res["quick"] else ""), "",
             "| benchmark | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default: $SRL_SWE_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/core.json"))
    ap.add_argument("--quick", action="store_true", help="a subset, about 20 s")
    ap.add_argument("--repeats", type=int, default=None, help="timing passes (best and median are reported)")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                    help="store a cProfile of env.step (default: only when the ratio misses its target)")
    args = ap.parse_args(argv)
    data = args.data or shared_data_dir()
    if not (data / "trajectories").is_dir():
        ap.error(f"{data / 'trajectories'} not found: pass --data or set SRL_SWE_DATA")
    res = run(data, args.quick, args.repeats, args.profile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(markdown(res))
    if "profile" in res["env"]:
        print("\nenv.step profile (cumulative):\n" + "\n".join(res["env"]["profile"][:40]))
    print(f"\nwrote {args.out}")
    return 0 if res["ok"]["values_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
