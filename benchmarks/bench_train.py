"""Training benchmarks: GRPO step overhead and rollout throughput (one run, JSON + Markdown).

    python benchmarks/bench_train.py [--out benchmarks/results/train.json] [--quick] [--steps N] [--repeats R]

1. overhead: wall time of one GRPO optimizer step of ``SRLGRPOTrainer`` exactly as
   ``srl_swe.train.run.build_trainer`` wires it for ``mode: srl`` (``SRLReward`` + the weight-0 ``FormatRate``
   column, ``RunLog``), with dynamic sampling on (eps 0) and off, against plain ``trl.GRPOTrainer`` with a
   constant reward. Same tiny random Qwen2, data (bundled math steps), batch, generation length and seed;
   the first step is a warm-up, the next ``--steps`` are timed, ``--repeats`` fresh trainers per variant
   (interleaved). Dynamic sampling is measured on data where no group is filtered (``require_think: false``
   on a random model: every completion gets its own similarity), so it never refills; the run checks it.
   Target <= 1.10x; above it (or with ``--profile``) a cProfile breakdown per step is stored.
2. rollout: generated tokens/s of ``TransformersGenerator`` at batch 1 and 8 (SmolLM2-135M-Instruct, held-out
   GSM8K step prompts, temperature 1), counted from the generated ids; ``forced`` suppresses EOS
   (``min_new_tokens``), ``natural`` counts each row up to its first EOS. vLLM is not measured here.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from srl_swe.train.config import TrainConfig, load_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, profile_top, write_results
from _rollout import bench_rollout

REPO = Path(__file__).resolve().parents[1]
TINY_CFG, SRL_CFG = REPO / "configs" / "cpu-tiny-test.yaml", REPO / "configs" / "cpu-srl-gsm8k-smollm2.yaml"
TARGETS = {"step_ratio_max": 1.10}
QUICK = {"steps": 1, "repeats": 1, "hidden": 64, "layers": 2, "gen_len": 8, "new_tokens": 8, "prompts": 2}
FULL = {"steps": 6, "repeats": 5, "hidden": 128, "layers": 4, "gen_len": 32, "new_tokens": 64, "prompts": 8}
VARIANTS = ("trl", "srl_ds_on", "srl_ds_off")
# label -> "file suffix:function" whose cumulative time per step the profile reports
OWN_FUNCS = {"srl_generate_and_score": "srl_swe/train/grpo.py:_generate_and_score_completions",
             "trl_generate_and_score": "trl/trainer/grpo_trainer.py:_generate_and_score_completions",
             "calculate_rewards": "trl/trainer/grpo_trainer.py:_calculate_rewards",
             "SRLReward": "srl_swe/rewards.py:__call__", "FormatRate": "srl_swe/train/run.py:__call__",
             "merge_groups": "srl_swe/train/grpo.py:merge_groups", "group_std": "srl_swe/train/grpo.py:group_std",
             "RunLog.on_log": "srl_swe/train/run.py:on_log", "generate": "transformers/generation/utils.py:generate"}


def zero_reward(completions, **_):
    """The baseline's reward: constant, so every group has zero std (TRL still takes the step)."""
    return [0.0] * len(completions)


class StepTimer(TrainerCallback):
    """(``perf_counter``, ``process_time``) at train begin and at every step end, plus every log line."""

    def __init__(self):
        self.marks: list[tuple[float, float]] = []
        self.logs: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.marks = [(time.perf_counter(), time.process_time())]

    def on_step_end(self, args, state, control, **kwargs):
        self.marks.append((time.perf_counter(), time.process_time()))

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def overhead_config(model: Path | str, out: Path, steps: int, gen_len: int, dynamic: bool) -> TrainConfig:
    """cpu-tiny-test shaped like the CPU SRL config: 2 prompts x 4 rollouts a step, warm-up + ``steps``."""
    return load_config(TINY_CFG, [
        f"model={model}", f"output_dir={out}", f"max_steps={steps + 1}", "num_generations=4",
        "per_device_train_batch_size=8", f"max_completion_length={gen_len}", f"dynamic_sampling={str(dynamic).lower()}",
        "dynamic_sampling_eps=0.0", "dynamic_sampling_max_tries=4", "require_think=false", "eval_fraction=0.0",
        "eval_steps=null", "save_steps=1000000", "logging_steps=1"])


def make_trainer(variant: str, model: Path | str, out: Path, steps: int, gen_len: int):
    import torch
    import trl

    from srl_swe.models.loading import load_model_and_tokenizer
    from srl_swe.train.data import build_datasets
    from srl_swe.train.run import build_trainer

    cfg = overhead_config(model, out / variant, steps, gen_len, dynamic=variant == "srl_ds_on")
    if variant != "trl":
        return build_trainer(cfg, "srl", str(model), out / variant)
    train_ds, _ = build_datasets(cfg, "srl")
    net, tok = load_model_and_tokenizer(str(model), dtype=cfg.dtype)
    kw = {**cfg.trl_kwargs(), "output_dir": str(out / variant), "bf16": False,
          "use_cpu": not torch.cuda.is_available(), "eval_strategy": "no", "eval_steps": None}
    args = trl.GRPOConfig(**kw, scale_rewards="group", log_completions=False)
    return trl.GRPOTrainer(model=net, args=args, reward_funcs=[zero_reward], train_dataset=train_ds,
                           processing_class=tok)


def timed_run(variant: str, model: Path | str, out: Path, steps: int, gen_len: int,
              prof: cProfile.Profile | None = None) -> dict[str, Any]:
    """A fresh trainer: warm-up step, then ``steps`` timed steps (step end to step end); ``prof`` sees train()."""
    trainer = make_trainer(variant, model, out, steps, gen_len)
    timer = StepTimer()
    trainer.add_callback(timer)
    if prof:
        prof.enable()
    trainer.train()
    if prof:
        prof.disable()
    pairs = list(zip(timer.marks[1:], timer.marks[2:], strict=False))
    checkpointing = bool(trainer.args.gradient_checkpointing)
    logs = [rec for rec in timer.logs if "completions/mean_length" in rec]
    del trainer
    gc.collect()
    return {"warmup_s": timer.marks[1][0] - timer.marks[0][0], "step_s": [b[0] - a[0] for a, b in pairs],
            "step_cpu_s": [b[1] - a[1] for a, b in pairs], "gradient_checkpointing": checkpointing,
            "completion_tokens": [rec["completions/mean_length"] * 8 for rec in logs],
            "filtered_fraction": [rec.get("dynamic_sampling/filtered_fraction") for rec in logs],
            "refills": [rec.get("dynamic_sampling/refills") for rec in logs]}


def profile_run(variant: str, model: Path | str, out: Path, steps: int, gen_len: int, top: int = 25) -> dict:
    """cProfile of ``train()`` (warm-up step included): cumulative ms per step of the functions that differ."""
    prof = cProfile.Profile()
    timed_run(variant, model, out, steps, gen_len, prof)
    stats = pstats.Stats(prof)
    per_step = 1e3 / (steps + 1)
    found = {label: 0.0 for label in OWN_FUNCS}
    own_self = 0.0
    for (file, _, func), (_, _, tottime, cumtime, _) in stats.stats.items():
        file = file.replace(os.sep, "/")
        own_self += tottime if "/srl_swe/" in file else 0.0
        for label, where in OWN_FUNCS.items():
            suffix, name = where.split(":")
            if func == name and file.endswith(suffix):
                found[label] = max(found[label], cumtime * per_step)
    return {"ms_per_step": found, "srl_swe_self_ms_per_step": own_self * per_step,
            "top_cumulative": profile_top(stats, top)}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    steps = [s for r in runs for s in r["step_s"]]
    cpu = [s for r in runs for s in r["step_cpu_s"]]
    means = [statistics.fmean(r["step_s"]) for r in runs if r["step_s"]]
    cpu_means = [statistics.fmean(r["step_cpu_s"]) for r in runs if r["step_cpu_s"]]
    return {"best_s": min(means), "median_s": statistics.median(steps), "min_step_s": min(steps),
            "cpu_best_s": min(cpu_means), "cpu_median_s": statistics.median(cpu),
            "repeat_means_s": means, "warmup_s": [r["warmup_s"] for r in runs],
            "gradient_checkpointing": runs[0]["gradient_checkpointing"],
            "completion_tokens_per_step": statistics.fmean(t for r in runs for t in r["completion_tokens"]),
            "filtered_fraction_max": max((f for r in runs for f in r["filtered_fraction"] if f is not None),
                                         default=None),
            "refills_max": max((f for r in runs for f in r["refills"] if f is not None), default=None)}


def bench_overhead(model: Path | str, steps: int, repeats: int, gen_len: int, profile: bool | None = None,
                   out: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        timed_run("trl", model, Path(tmp) / "process-warmup", 1, gen_len)  # first-in-process costs (imports, ...)
        for r in range(repeats):  # interleaved and rotated, so drift and position hit every variant alike
            for v in VARIANTS[r % 3:] + VARIANTS[: r % 3]:
                runs[v].append(timed_run(v, model, Path(tmp) / f"r{r}", steps, gen_len))
        res: dict[str, Any] = {"steps": steps, "repeats": repeats, "completions_per_step": 8, "num_generations": 4,
                               "max_completion_length": gen_len, **{v: _summary(runs[v]) for v in VARIANTS}}
        base = res["trl"]
        for v in VARIANTS[1:]:
            res[v]["ratio"] = res[v]["best_s"] / base["best_s"]
            res[v]["ratio_median"] = res[v]["median_s"] / base["median_s"]
            res[v]["cpu_ratio"] = res[v]["cpu_best_s"] / base["cpu_best_s"]
            res[v]["cpu_ratio_median"] = res[v]["cpu_median_s"] / base["cpu_median_s"]
        # Same first step everywhere; later steps differ once the SRL reward has moved the weights (the constant
        # reward never does), so a completion may stop at EOS in one variant and not another: report the spread.
        tokens = [res[v]["completion_tokens_per_step"] for v in VARIANTS]
        res["completion_tokens_spread"] = (max(tokens) - min(tokens)) / max(tokens)
        res["no_group_filtered"] = res["srl_ds_on"]["filtered_fraction_max"] == 0.0
        if profile or (profile is None and res["srl_ds_on"]["ratio"] > TARGETS["step_ratio_max"]):
            res["profile"] = {v: profile_run(v, model, Path(tmp) / "prof", min(steps, 3), gen_len)
                              for v in ("trl", "srl_ds_on")}
    return res


def rollout_prompts(quick: bool, model: str, count: int) -> list[list[dict[str, str]]]:
    from srl_swe.train.data import held_out_steps

    cfg = load_config(TINY_CFG, [f"model={model}"]) if quick else load_config(SRL_CFG)
    return [list(r["prompt"]) for r in held_out_steps(cfg)[:count]]


def run(quick: bool = False, steps: int | None = None, repeats: int | None = None, profile: bool | None = None,
        rollout_model: str | None = None, workdir: Path | None = None, threads: int | None = None) -> dict[str, Any]:
    import torch

    from srl_swe.models.tiny import make_tiny_qwen2

    if threads:
        torch.set_num_threads(threads)
    c = QUICK if quick else FULL
    out: dict[str, Any] = {"machine": {**machine_info(), "torch_threads": torch.get_num_threads(),
                                       "loadavg_start": os.getloadavg()}, "quick": quick, "targets": TARGETS}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tiny = make_tiny_qwen2(Path(tmp) / "tiny", hidden_size=c["hidden"], layers=c["layers"])
        out["overhead"] = bench_overhead(tiny, steps or c["steps"], repeats or c["repeats"], c["gen_len"], profile,
                                         Path(tmp))
        out["overhead"]["model"] = {"kind": "make_tiny_qwen2", "hidden_size": c["hidden"], "layers": c["layers"]}
        spec = rollout_model or (str(tiny) if quick else "smollm2-135m-instruct")
        prompts = rollout_prompts(quick, str(tiny), c["prompts"])
        # vLLM's engine takes ~40 s to start: measured in full runs only
        out["rollout"] = bench_rollout(spec, prompts, c["new_tokens"], 1 if quick else 3, vllm=not quick)
    out["machine"]["loadavg_end"] = os.getloadavg()
    out["ok"] = {"step_ratio": out["overhead"]["srl_ds_on"]["ratio"] <= TARGETS["step_ratio_max"]}
    return out


def markdown(res: dict[str, Any]) -> str:
    ov, ro, m = res["overhead"], res["rollout"], res["machine"]
    yes = {True: "yes", False: "**no**"}
    lines = [f"Python {m['python']}, {m['cpu_count']} CPUs, torch threads {m['torch_threads']}, load "
             f"{m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}, {m['date']}" + (" (quick)" if res["quick"]
                                                                                          else ""), "",
             f"GRPO step, tiny Qwen2 (hidden {ov['model']['hidden_size']}, {ov['model']['layers']} layers), 8 "
             f"completions (2 prompts x 4) x {ov['max_completion_length']} tokens, {ov['steps']} timed steps x "
             f"{ov['repeats']} repeats after 1 warm-up step:", "",
             "| trainer | best s/step | median s/step | ratio (best) | ratio (median) | CPU ratio (best / median) | "
             "target | met |", "|---|---|---|---|---|---|---|---|"]
    names = {"trl": "trl.GRPOTrainer, constant reward", "srl_ds_on": "SRLGRPOTrainer srl, dynamic sampling on (eps 0)",
             "srl_ds_off": "SRLGRPOTrainer srl, dynamic sampling off"}
    for v in VARIANTS:
        r, t = ov[v], TARGETS["step_ratio_max"]
        ratio = (f"{r['ratio']:.3f}x | {r['ratio_median']:.3f}x | {r['cpu_ratio']:.3f}x / {r['cpu_ratio_median']:.3f}x"
                 f" | <= {t:.2f}x | {yes[r['ratio'] <= t]}") if "ratio" in r else "1 | 1 | 1 | - | -"
        lines.append(f"| {names[v]} | {r['best_s']:.3f} | {r['median_s']:.3f} | {ratio} |")
    lines += ["", f"Dynamic sampling filtered fraction (max over steps): {ov['srl_ds_on']['filtered_fraction_max']}; "
              f"refills: {ov['srl_ds_on']['refills_max']}; completion tokens per step: "
              + ", ".join(f"{v} {ov[v]['completion_tokens_per_step']:.1f}" for v in VARIANTS)
              + f"; gradient checkpointing {ov['trl'].get('gradient_checkpointing')}", "",
              f"Rollout, {ro['model']}, {ro['prompts']} prompts (mean {ro['prompt_tokens_mean']:.0f} prompt tokens), "
              f"{ro['max_new_tokens']} new tokens, T={ro['temperature']}, best of {ro['repeats']}; generated "
              "tokens/s counted from the ids:", "",
              "| batch | transformers, EOS suppressed | transformers, natural stop | vllm |", "|---|---|---|---|"]
    for name, row in ro["transformers"].items():
        f, n = row["forced"], row["natural"]
        lines.append(f"| {name.split('_')[1]} | {f['tokens_per_s']:.1f} tok/s ({f['generated_tokens'][0]} tokens) | "
                     f"{n['tokens_per_s']:.1f} tok/s ({n['generated_tokens'][0]} tokens) | "
                     + (f"{ro['vllm'][name]['tokens_per_s']:.1f} tok/s (EOS ignored) |" if ro["vllm"].get("measured")
                        else f"{ro['vllm']['note']} |"))
    for v, p in ov.get("profile", {}).items():  # cProfile (it slows Python code down, so an upper bound)
        lines += ["", f"cProfile {v}, ms/step: " + ", ".join(
            f"{k} {x:.2f}" for k, x in p["ms_per_step"].items() if x) + f"; srl_swe self time "
                  f"{p['srl_swe_self_ms_per_step']:.2f}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/train.json"))
    ap.add_argument("--quick", action="store_true", help="tiny model, one timed step, no SmolLM2 (tests)")
    ap.add_argument("--steps", type=int, default=None, help="timed optimizer steps per trainer (after 1 warm-up)")
    ap.add_argument("--repeats", type=int, default=None, help="fresh trainers per variant")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--rollout-model", default=None, help="model for the rollout benchmark (default: SmolLM2)")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                    help="store a cProfile breakdown (default: only when the step ratio misses its target)")
    args = ap.parse_args(argv)
    res = run(args.quick, args.steps, args.repeats, args.profile, args.rollout_model, threads=args.threads)
    write_results(args.out, res, markdown(res))
    print(markdown(res))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
