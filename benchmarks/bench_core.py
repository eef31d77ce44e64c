"""Core benchmarks: reward throughput, environment step overhead, loading time (one run, JSON + Markdown).

    python benchmarks/bench_core.py [--data DIR] [--out benchmarks/results/core.json] [--quick] [--repeats N]

1. reward: ``srl_swe.rewards.sequence_similarity`` (C extension, else cydifflib) vs
   ``difflib.SequenceMatcher(None, p, e).ratio()``
   on real expert actions and seeded perturbations of them; values must be bit-identical. Target >= 3x.
2. env: ``env.step(output)`` of SRL-SWE-v0 (step mode; ``reset`` timed apart) vs the bare
   ``score_output(output, expert, "xml")`` on the same outputs, timed pairwise (see ``_paired``): each timed
   call follows a reset of its example. Target <= 1.10x; above it a cProfile is stored.
3. loading: ``load_trajectories(keep="all")`` + ``build_steps`` over every shared trajectory (target < 5 s),
   and GSM8K train as an extra figure.

Timings: best (and median) of ``--repeats`` passes with the garbage collector off, as ``timeit`` does; for
the env, best per example (noise on a shared VM only adds time).
"""

from __future__ import annotations

import argparse
import cProfile
import difflib
import gc
import pstats
import random
import re
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

import srl_swe  # noqa: F401  (registers the environments make_env asks for)
from srl_swe.actions import render
from srl_swe.paths import shared_data_dir
from srl_swe.rewards import MAX_SCORED_CHARS, score_output, sequence_similarity
from srl_swe.schema import ToolCall
from srl_swe.steps import build_steps, render_chatml
from srl_swe.trajectories import load_trajectories

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, profile_top, time_stats, timed, write_results

TARGETS = {"reward_speedup_min": 3.0, "env_step_ratio_max": 1.10, "load_seconds_max": 5.0}
KINDS, KIND_WEIGHTS = ("delete", "insert", "replace", "swap", "unrelated"), (3, 3, 3, 2, 1)
NOISE = string.ascii_letters + string.digits + string.punctuation + " \n"
WORDS = ("look", "at", "the", "file", "first", "then", "run", "tests", "and", "check", "which", "line", "fails")
BUCKETS = ((100, "<100"), (300, "100-299"), (1000, "300-999"), (None, ">=1000"))  # expert action length, chars
QUICK = {"pairs": 1000, "env_examples": 1000, "repeats": 3}
FULL = {"pairs": None, "env_examples": None, "repeats": 9}
Pair = tuple[str, str, str]  # (kind, predicted, expert)
Item = tuple[int, str, str]  # (env example index, model output, expert rendering)


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
    size = max(1, round(len(text) * rng.uniform(0.05, 0.30)))
    start = rng.randrange(max(1, len(text) - size + 1))
    noise = "".join(rng.choice(NOISE) for _ in range(size))
    if kind == "delete":
        return text[:start] + text[start + size :]
    return text[:start] + noise + text[start if kind == "insert" else start + size :]


def expert_calls(data: Path) -> list[ToolCall]:
    """Every expert action of the shared trajectories, in trajectory then step order."""
    return [s.action for t in load_trajectories(data / "trajectories", keep="all").trajectories for s in t.steps]


def make_pairs(calls: Sequence[ToolCall], limit: int | None = None, seed: int = 0) -> list[Pair]:
    """(kind, predicted, expert) over the rendered expert actions; seeded, so every run scores the same pairs."""
    rng = random.Random(seed)
    experts = [render(c, "xml") for c in calls]
    if limit is not None and limit < len(experts):
        experts = rng.sample(experts, limit)
    kinds = [rng.choices(KINDS, KIND_WEIGHTS)[0] for _ in experts]
    return [(k, perturb_text(e, rng, k, experts), e) for k, e in zip(kinds, experts, strict=True)]


def stdlib_similarity(predicted: str, expert: str) -> float:
    return difflib.SequenceMatcher(None, predicted, expert).ratio()


def bench_reward(pairs: Sequence[Pair], repeats: int = 5) -> dict[str, Any]:
    cy_values = [sequence_similarity(p, e) for _, p, e in pairs]
    std_values = [stdlib_similarity(p, e) for _, p, e in tqdm(pairs, desc="difflib values", leave=False)]
    mismatches = sum(a != b for a, b in zip(cy_values, std_values, strict=True))
    buckets: dict[str, list[Pair]] = {label: [] for _, label in BUCKETS}
    for pair in pairs:
        buckets[next(label for hi, label in BUCKETS if hi is None or len(pair[2]) < hi)].append(pair)
    buckets = {label: group for label, group in buckets.items() if group}
    impls = {"difflib": stdlib_similarity, "cydifflib": sequence_similarity}  # label kept; see RATIO_BACKEND
    times = {b: {name: [] for name in impls} for b in buckets}
    for _ in tqdm(range(repeats), desc="reward timing", leave=False):  # interleaved, so drift hits both
        for b, group in buckets.items():
            for name, fn in impls.items():
                times[b][name].append(timed(lambda g=group, f=fn: [f(p, e) for _, p, e in g]))
    by_length = {}
    for b, group in buckets.items():
        best = {name: min(t) for name, t in times[b].items()}
        by_length[b] = {"pairs": len(group), "speedup": best["difflib"] / best["cydifflib"],
                        **{f"{name}_us_per_call": 1e6 * v / len(group) for name, v in best.items()}}
    cy, std = (time_stats([sum(times[b][name][r] for b in buckets) for r in range(repeats)], len(pairs))
               for name in ("cydifflib", "difflib"))
    return {
        "pairs": len(pairs), "kinds": {k: sum(kind == k for kind, _, _ in pairs) for k in KINDS}, "repeats": repeats,
        "expert_chars": {"total": sum(len(e) for _, _, e in pairs), "max": max(len(e) for _, _, e in pairs)},
        "identical": mismatches == 0, "mismatches": mismatches, "mean_similarity": statistics.fmean(cy_values),
        # the library cuts each side to MAX_SCORED_CHARS; identity with plain difflib is only owed below it
        "max_scored_chars": MAX_SCORED_CHARS, "pairs_over_max": sum(max(len(p), len(e)) > MAX_SCORED_CHARS
                                                                    for _, p, e in pairs),
        "cydifflib": cy, "difflib": std,
        "speedup": std["best_s"] / cy["best_s"], "speedup_median": std["median_s"] / cy["median_s"],
        "by_expert_length": by_length,
    }


def make_env(data: Path) -> gym.Env:
    return gym.make("SRL-SWE-v0", data=data / "trajectories", keep="all", mode="step")


def env_outputs(env: gym.Env, limit: int | None = None, seed: int = 0) -> list[Item]:
    """``<think>…</think>`` + a perturbed expert call for each (sampled) step example of the env."""
    rng, base = random.Random(seed), env.unwrapped
    indices = list(range(base.num_examples))
    if limit is not None and limit < len(indices):
        indices = sorted(rng.sample(indices, limit))
    calls = [base.trajectories[i].steps[k].action for i, k in base.index]
    out = []
    for idx in indices:
        call, kind = calls[idx], rng.choices(KINDS, KIND_WEIGHTS)[0]
        if kind == "unrelated":
            pred = rng.choice(calls)
        else:  # perturb the argument values, so the output stays one well-formed action
            pred = ToolCall(call.name, tuple((k, perturb_text(v, rng, kind, ())) for k, v in call.arguments))
        thought = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 200)))
        out.append((idx, f"<think>\n{thought}\n</think>\n{render(pred, 'xml')}", render(call, "xml")))
    return out


def _paired(env: gym.Env, items: Sequence[Item], passes: int, group: int = 1) -> dict[str, Any]:
    """Per example: ``group`` x (reset, step) and ``group`` x (reset, bare ``score_output``), timed call by call.

    Both timed calls follow a reset of the same example, so they start from the same cache state (a bare loop
    run back to back over warm caches flatters the bare side), and their order alternates between passes.
    Noise on a shared machine only ever adds time, so per example the best pass is kept; the ratio is the sum
    of the best step times over the sum of the best bare times (medians are reported too).
    """
    n = len(items)
    step_t, bare_t, reset_t = ([[0.0] * passes for _ in range(n)] for _ in range(3))
    rewards, expert_ok, clock = [0.0] * n, True, time.perf_counter
    for p in tqdm(range(passes), desc=f"env timing (G={group})", leave=False):
        gc.collect()
        gc.disable()
        try:
            for j, (idx, output, expert) in enumerate(items):
                st = bt = rt = 0.0
                for g in range(2 * group):
                    t0 = clock()
                    env.reset(options={"index": idx})
                    t1 = clock()
                    if (g + p) % 2 == 0:
                        res = env.step(output)
                        st += clock() - t1  # unpacked after the clock: the bare side's result is not touched
                        rewards[j] = res[1]
                        expert_ok = expert_ok and res[4]["expert_action"] == expert
                    else:
                        score_output(output, expert, "xml")
                        bt += clock() - t1
                    rt += t1 - t0
                step_t[j][p], bare_t[j][p], reset_t[j][p] = st, bt, rt / 2
        finally:
            gc.enable()
    calls = n * group
    out: dict[str, Any] = {"group": group, "passes": passes, "rewards": rewards, "expert_actions_match": expert_ok}
    for name, per in (("step", step_t), ("bare_reward", bare_t), ("reset", reset_t)):
        best, med = sum(map(min, per)), sum(map(statistics.median, per))
        out[name] = {"best_s": best, "median_s": med, "best_us_per_call": 1e6 * best / calls,
                     "median_us_per_call": 1e6 * med / calls}
    out["ratio"] = out["step"]["best_s"] / out["bare_reward"]["best_s"]
    out["ratio_median"] = out["step"]["median_s"] / out["bare_reward"]["median_s"]
    return out


def bench_env(env: gym.Env, items: Sequence[Item], repeats: int = 5) -> dict[str, Any]:
    """Single-step mode, one output per example, then GRPO-shaped (G = 8 outputs scored per example)."""
    res = _paired(env, items, repeats)
    bare_scores = [score_output(o, e, "xml") for _, o, e in items]
    grpo = _paired(env, items, repeats, group=8)
    grpo.pop("rewards")
    step, bare, reset = res["step"], res["bare_reward"], res["reset"]
    return {
        "examples": len(items), "of": env.unwrapped.num_examples, "repeats": repeats,
        "timing": "paired: each timed call follows a reset of its example; order alternates; best pass per example",
        "valid_outputs": sum(s.valid for s in bare_scores),
        "rewards_identical": res.pop("rewards") == [s.reward for s in bare_scores],
        **res, "grpo": grpo,
        "reset_plus_step_ratio": (step["best_s"] + reset["best_s"]) / bare["best_s"],
        "overhead_us_per_step": step["best_us_per_call"] - bare["best_us_per_call"],
    }


def env_breakdown(env: gym.Env, items: Sequence[Item], repeats: int = 3) -> dict[str, float]:
    """Profiler-free cost (best us per step) of what ``step`` does beyond the reward: the next observation."""
    base = env.unwrapped
    nxt = [(i, k + 1) for i, k in (base.index[idx] for idx, _, _ in items)]
    msgs = [base.builder.prompt(i, k) for i, k in nxt]
    parts: dict[str, Callable[[], Any]] = {
        "next_prompt_messages": lambda: [base.builder.prompt(i, k) for i, k in nxt],
        "render_chatml": lambda: [render_chatml(m) for m in msgs],
        "message_dicts": lambda: [tuple({"role": r, "content": c} for r, c in m) for m in msgs],
    }
    out = {name: 1e6 * min(timed(fn) for _ in range(repeats)) / len(items) for name, fn in parts.items()}
    return {**out, "prompt_chars_mean": statistics.fmean(len(render_chatml(m)) for m in msgs)}


def profile_env(env: gym.Env, items: Sequence[Item], top: int = 25) -> list[str]:
    """cProfile of ``step`` only (reset runs outside the profiler): the top functions by cumulative time."""
    prof = cProfile.Profile()
    for idx, output, _ in items:
        env.reset(options={"index": idx})
        prof.enable()
        env.step(output)
        prof.disable()
    return profile_top(pstats.Stats(prof), top)


def bench_loading(path: Path, repeats: int = 3) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = load_trajectories(path, keep="all")
        t1 = time.perf_counter()
        steps = build_steps(result.trajectories)
        t2 = time.perf_counter()
        runs.append({"load_s": t1 - t0, "build_steps_s": t2 - t1, "total_s": t2 - t0})
    return {"path": str(path), "trajectories": len(result.trajectories), "skipped": len(result.skipped),
            "steps": len(steps), "first_total_s": runs[0]["total_s"], **min(runs, key=lambda x: x["total_s"]),
            "runs": runs}


def run(data: Path, quick: bool = False, repeats: int | None = None, profile: bool | None = None) -> dict[str, Any]:
    """Every benchmark; ``profile=None`` profiles the env step only when it misses its target."""
    cfg = QUICK if quick else FULL
    repeats = repeats or cfg["repeats"]
    out: dict[str, Any] = {"machine": machine_info(), "data": str(data), "quick": quick, "targets": TARGETS}
    out["reward"] = bench_reward(make_pairs(expert_calls(data), cfg["pairs"]), repeats)
    env = make_env(data)
    items = env_outputs(env, cfg["env_examples"])
    out["env"] = ev = bench_env(env, items, repeats)
    ev["overhead_parts_us"] = env_breakdown(env, items, repeats)
    if profile or (profile is None and ev["ratio"] > TARGETS["env_step_ratio_max"]):
        ev["profile"] = profile_env(env, items)
    env.close()
    out["loading"] = {"trajectories": bench_loading(data / "trajectories", 1 if quick else 3)}
    if (gsm8k := data / "math" / "gsm8k" / "train.jsonl").is_file():
        out["loading"]["gsm8k_train"] = bench_loading(gsm8k, 1 if quick else 3)
    out["ok"] = {
        "values_identical": out["reward"]["identical"] and ev["rewards_identical"],
        "reward_speedup": out["reward"]["speedup"] >= TARGETS["reward_speedup_min"],
        "env_step_ratio": ev["ratio"] <= TARGETS["env_step_ratio_max"],
        "load_seconds": out["loading"]["trajectories"]["total_s"] < TARGETS["load_seconds_max"],
    }
    return out


def markdown(res: dict[str, Any]) -> str:
    rw, ev, ld, ok, m = res["reward"], res["env"], res["loading"], res["ok"], res["machine"]
    tr, yes = ld["trajectories"], {True: "yes", False: "**no**"}
    us = "best_us_per_call"
    rows = [
        (f"Reward: srl-swe ({m['ratio_backend']}) vs stdlib difflib", f"{rw['speedup']:.2f}x ({rw['pairs']} pairs, "
         f"{rw['cydifflib'][us]:.1f} vs {rw['difflib'][us]:.1f} us/pair)",
         f">= {TARGETS['reward_speedup_min']:.0f}x", yes[ok["reward_speedup"]]),
        ("Reward values bit-identical", f"{rw['mismatches']} mismatches; env rewards == bare: "
         f"{ev['rewards_identical']}", "0", yes[ok["values_identical"]]),
        ("Env step / bare score_output", f"{ev['ratio']:.2f}x ({ev['step'][us]:.1f} vs {ev['bare_reward'][us]:.1f} "
         f"us; reset {ev['reset'][us]:.1f} us)", f"<= {TARGETS['env_step_ratio_max']:.2f}x", yes[ok["env_step_ratio"]]),
        (f"Env step / bare score_output, GRPO-shaped (G={ev['grpo']['group']} per example)",
         f"{ev['grpo']['ratio']:.2f}x ({ev['grpo']['step'][us]:.1f} vs {ev['grpo']['bare_reward'][us]:.1f} us)",
         f"<= {TARGETS['env_step_ratio_max']:.2f}x", yes[ev["grpo"]["ratio"] <= TARGETS["env_step_ratio_max"]]),
        ("Load + build_steps, shared trajectories", f"{tr['total_s']:.2f} s ({tr['trajectories']} traj, "
         f"{tr['steps']} steps)", f"< {TARGETS['load_seconds_max']:.0f} s", yes[ok["load_seconds"]]),
    ]
    if g := ld.get("gsm8k_train"):
        rows.append(("Load + build_steps, GSM8K train",
                     f"{g['total_s']:.2f} s ({g['trajectories']} problems, {g['steps']} steps)", "-", "-"))
    head = f"Python {m['python']}, {m['cpu_count']} CPUs, reward backend {m['ratio_backend']}, {m['date']}"
    lines = [head + (" (quick)" if res["quick"] else ""), "", "| benchmark | measured | target | met |",
             "|---|---|---|---|", *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data (default: $SRL_SWE_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/core.json"))
    ap.add_argument("--quick", action="store_true", help="a subset: a few seconds (CI)")
    ap.add_argument("--repeats", type=int, default=None, help="timing passes (best and median are reported)")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                    help="store a cProfile of env.step (default: only when the ratio misses its target)")
    args = ap.parse_args(argv)
    data = args.data or shared_data_dir()
    if not (data / "trajectories").is_dir():
        ap.error(f"{data / 'trajectories'} not found: pass --data or set SRL_SWE_DATA")
    res = run(data, args.quick, args.repeats, args.profile)
    write_results(args.out, res, markdown(res))
    print(markdown(res))
    if "profile" in res["env"]:
        print("\nenv.step profile (cumulative):\n" + "\n".join(res["env"]["profile"]))
    print(f"\nwrote {args.out}")
    return 0 if res["ok"]["values_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
