"""Learning benchmark: SRL vs SFT vs no training, held-out GSM8K step reward (SmolLM2-135M-Instruct, CPU).

    python benchmarks/bench_learning.py --budget-steps N [--minutes-cap M] [--cpu-minutes-cap C] [--eval-examples E]
        [--samples S]
        [--methods untrained,srl,sft] [--run-dir runs/bench-learning] [--out benchmarks/results/learning.json]
        [--set srl.learning_rate=5e-5 ...]

* SRL: ``configs/cpu-srl-gsm8k-smollm2.yaml``, SFT: ``configs/cpu-sft-gsm8k-smollm2.yaml``, each trained through
  ``srl_swe.train.run.build_trainer`` for the same budget: ``--budget-steps`` optimizer steps, stopped early
  when ``--minutes-cap`` minutes of training wall time or ``--cpu-minutes-cap`` minutes of process CPU time
  have passed (whichever comes first; all recorded).
  Wall time (``perf_counter``) and CPU time (``process_time``, all threads) are kept per method.
* untrained: the base model, no training.
* All three are scored by ``srl_swe.train.run.step_eval`` with one evaluation config (the SRL config's: same
  held-out rows, greedy + sampled, ``max_completion_length`` tokens, seed) and ``require_think: false``.

Target (the issue): SRL >= 20 % relative above untrained and above SFT. Whatever comes out is written to
``learning.json`` and ``learning.md`` after every method.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from srl_swe.train.config import TrainConfig, load_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {m: REPO / "configs" / f"cpu-{m}-gsm8k-smollm2.yaml" for m in ("srl", "sft")}
TARGET_REL = 0.20
NOTES = {
    "require_think": "require_think=false for all three: SmolLM2-135M-Instruct never writes a <think> block, so "
    "under the paper's strict format every output of the base model scores -1 (no signal for GRPO and a floor for "
    "the evaluation); with it off an output without the block is scored as all step. An output that does have "
    "a <think> block (SFT's target format) is scored on what follows it. Not the paper's format.",
    "sft_thought": "GSM8K steps carry no expert reasoning, so SFT's completions are '<think>\\nI take the next "
    "step.\\n</think>\\n{step}' (the placeholder thought of srl_swe.dataset.step_rows).",
    "batch": "One optimizer step: SRL = 2 prompts x 4 rollouts (8 completions, generated and scored), SFT = 8 "
    "expert steps (teacher forcing), so a step costs SRL far more CPU; the CPU and wall times are reported.",
    "checkpoints": "Intermediate checkpoints (with optimizer state) are not written; the final weights are saved "
    "once, outside the timed training, and evaluated from disk.",
}


class Budget(TrainerCallback):
    """Stops training once ``seconds`` of wall time or ``cpu_seconds`` of this process's CPU time (all threads)
    have passed since train begin; suppresses checkpoint saves. The CPU cap is the issue's budget (CPU-minutes)
    and does not shrink when something else shares the machine."""

    def __init__(self, seconds: float | None, cpu_seconds: float | None = None):
        self.seconds, self.cpu_seconds, self.t0, self.c0, self.capped = seconds, cpu_seconds, 0.0, 0.0, False

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_step_end(self, args, state, control, **kwargs):
        control.should_save = False
        over = (self.seconds and time.perf_counter() - self.t0 >= self.seconds) or \
            (self.cpu_seconds and time.process_time() - self.c0 >= self.cpu_seconds)
        if over and not control.should_training_stop:
            control.should_training_stop = self.capped = True


def method_config(method: str, run_dir: Path, steps: int, eval_examples: int, samples: int,
                  model: str | None, extra: Sequence[str] = ()) -> TrainConfig:
    overrides = [f"output_dir={run_dir / method}", f"max_steps={steps}", "require_think=false", "step_eval=false",
                 "eval_steps=null", "save_steps=1000000", f"eval_max_examples={eval_examples}",
                 f"step_eval_samples={samples}"] + ([f"model={model}"] if model else [])
    return load_config(CONFIGS[method], [*overrides, *extra])


def split_sets(sets: Sequence[str]) -> dict[str, list[str]]:
    """``--set srl.learning_rate=5e-5`` -> ``{"srl": ["learning_rate=5e-5"]}`` (config keys, as on the CLI)."""
    out: dict[str, list[str]] = {"srl": [], "sft": []}
    for item in sets:
        method, _, override = item.partition(".")
        if method not in out or "=" not in override:
            raise SystemExit(f"--set {item!r}: expected srl.KEY=VALUE or sft.KEY=VALUE")
        out[method].append(override)
    return out


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def train_method(cfg: TrainConfig, cap_s: float | None, cpu_cap_s: float | None = None) -> dict[str, Any]:
    """Train ``cfg`` within the budget; the final weights go to ``<output_dir>/final``."""
    from srl_swe.train.run import build_trainer

    run_dir = Path(cfg.output_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    cfg.dump_yaml(run_dir / "config.yaml")
    w0 = time.perf_counter()
    trainer = build_trainer(cfg, cfg.mode, cfg.model, run_dir)
    budget = Budget(cap_s, cpu_cap_s)
    trainer.add_callback(budget)
    w1, c1 = _clock()
    trainer.train()
    w2, c2 = _clock()
    final = run_dir / "final"
    trainer.save_model(str(final))
    trainer.processing_class.save_pretrained(str(final))
    steps, checkpointing = trainer.state.global_step, bool(trainer.args.gradient_checkpointing)
    del trainer
    gc.collect()
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    key = "reward" if cfg.mode == "srl" else "loss"
    curve = [rec[key] for rec in logs if key in rec]
    k = max(1, min(5, len(curve) // 2))
    return {"final_model": str(final), "optimizer_steps": steps, "max_steps": cfg.max_steps, "stopped_by_cap":
            budget.capped, "setup_wall_s": w1 - w0, "train_wall_s": w2 - w1, "train_cpu_s": c2 - c1,
            "wall_s_per_step": (w2 - w1) / max(steps, 1), "learning_rate": cfg.learning_rate,
            "lr_scheduler_type": cfg.lr_scheduler_type, "per_device_train_batch_size": cfg.per_device_train_batch_size,
            "gradient_checkpointing": checkpointing,
            f"train_{key}_first{k}": statistics.fmean(curve[:k]) if curve else None,
            f"train_{key}_last{k}": statistics.fmean(curve[-k:]) if curve else None, f"train_{key}_curve": curve}


def _se(values: list[float]) -> float | None:
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None


def evaluate(eval_cfg: TrainConfig, spec: str, out_dir: Path, backend: str = "transformers") -> dict[str, Any]:
    """``step_eval`` plus per-example rewards (for standard errors and paired differences)."""
    from srl_swe.train.run import step_eval

    w0, c0 = _clock()
    res = step_eval(eval_cfg, spec, out_dir, backend)
    w1, c1 = _clock()
    recs = [json.loads(line) for line in (out_dir / "step_samples.jsonl").read_text().splitlines()]
    greedy = [r["greedy_reward"] for r in recs]
    sampled = [statistics.fmean(r["sampled_rewards"]) for r in recs if r["sampled_rewards"]]
    return {**res, "eval_wall_s": w1 - w0, "eval_cpu_s": c1 - c0, "greedy_se": _se(greedy),
            "sampled_se": _se(sampled), "per_example": {"greedy": greedy, "sampled_mean": sampled}}


def _rel(a: float, b: float) -> float | None:
    return (a - b) / abs(b) if b else None


def compare(results: dict[str, Any]) -> dict[str, Any]:
    """Relative gains (a - b) / |b| and paired per-example differences (mean, standard error)."""
    out: dict[str, Any] = {}
    for a, b in (("srl", "untrained"), ("srl", "sft"), ("sft", "untrained")):
        if a not in results or b not in results:
            continue
        ea, eb = results[a]["eval"], results[b]["eval"]
        row: dict[str, Any] = {}
        for mode, per in (("greedy", "greedy"), ("sampled", "sampled_mean")):
            if not (ea.get(mode) and eb.get(mode)):
                continue
            diffs = [x - y for x, y in zip(ea["per_example"][per], eb["per_example"][per], strict=True)]
            row[mode] = {"relative": _rel(ea[mode]["mean_reward"], eb[mode]["mean_reward"]),
                         "paired_diff": statistics.fmean(diffs), "paired_diff_se": _se(diffs)}
        out[f"{a}_vs_{b}"] = row
    return out


def targets(cmp: dict[str, Any]) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    for pair in ("srl_vs_untrained", "srl_vs_sft"):
        for mode in ("greedy", "sampled"):
            rel = cmp.get(pair, {}).get(mode, {}).get("relative")
            out[f"{pair}_{mode}"] = None if rel is None else rel >= TARGET_REL
    return out


def _pm(se: float | None) -> str:
    return f" ± {se:.3f}" if se is not None else ""


def markdown(res: dict[str, Any]) -> str:
    m, s = res["machine"], res["settings"]
    caps = " / ".join(c for c in (s["minutes_cap"] and f"{s['minutes_cap']:g} wall-min cap",
                                  s.get("cpu_minutes_cap") and f"{s['cpu_minutes_cap']:g} CPU-min cap") if c)
    lines = [f"Learning benchmark, {s['model']}, budget {s['budget_steps']} optimizer steps / {caps or 'no cap'}, "
             f"held-out GSM8K: {s['eval_examples']} step examples, greedy + {s['samples']} sampled (T="
             f"{s['temperature']}), {s['max_new_tokens']} new tokens, require_think=false. Python {m['python']}, "
             f"{m['cpu_count']} CPUs, {m['date']}.", "",
             "| method | steps | train wall s | train CPU s | greedy reward | sampled reward | format viol. g / s |",
             "|---|---|---|---|---|---|---|"]
    for name in ("untrained", "srl", "sft"):
        if name not in res["methods"]:
            continue
        r = res["methods"][name]
        t, e = r.get("train", {}), r["eval"]
        g, sm = e["greedy"], e["sampled"] or {}
        lines.append(f"| {name} | {t.get('optimizer_steps', 0)}{' (cap)' if t.get('stopped_by_cap') else ''} | "
                     f"{t.get('train_wall_s', 0):.0f} | {t.get('train_cpu_s', 0):.0f} | {g['mean_reward']:.3f}"
                     f"{_pm(e['greedy_se'])} | {sm.get('mean_reward', float('nan')):.3f}{_pm(e['sampled_se'])} | "
                     f"{g['format_violation_rate']:.2f} / {sm.get('format_violation_rate', float('nan')):.2f} |")
    lines.append("")
    for name in ("srl", "sft"):
        if t := res["methods"].get(name, {}).get("train"):
            curve = " -> ".join(f"{v:.3f}" for k, v in t.items() if k.split("_")[-1][:4] in ("firs", "last"))
            lines.append(f"* {name}: lr {t['learning_rate']:g} ({t['lr_scheduler_type']}), batch "
                         f"{t['per_device_train_batch_size']}, {t['wall_s_per_step']:.1f} s/step, gradient "
                         f"checkpointing {t.get('gradient_checkpointing', 'not recorded')}; training "
                         f"{'reward' if name == 'srl' else 'loss'}, mean of the first -> last 5 steps: {curve}")
    lines += ["", "| comparison | greedy: relative, paired diff ± se | sampled: relative, paired diff ± se |",
              "|---|---|---|"]
    for pair, row in res["comparison"].items():
        cells = []
        for mode in ("greedy", "sampled"):
            c = row.get(mode)
            rel = "n/a" if not c or c["relative"] is None else f"{100 * c['relative']:+.1f} %"
            cells.append(f"{rel}, {c['paired_diff']:+.3f} ± {c['paired_diff_se'] or 0:.3f}" if c else "-")
        lines.append(f"| {pair.replace('_', ' ')} | {cells[0]} | {cells[1]} |")
    met = {True: "yes", False: "**no**", None: "n/a"}
    lines += ["", f"Target: SRL >= {100 * TARGET_REL:.0f} % relative above untrained and above SFT: " + ", ".join(
        f"{k} {met[v]}" for k, v in res["targets_met"].items()), "", *(f"* {v}" for v in res["notes"].values())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-steps", type=int, required=True, help="optimizer steps per trained method")
    ap.add_argument("--minutes-cap", type=float, default=None, help="training wall-clock cap per method")
    ap.add_argument("--cpu-minutes-cap", type=float, default=None,
                    help="training CPU-time cap per method (process CPU time, all threads)")
    ap.add_argument("--eval-examples", type=int, default=32, help="held-out GSM8K step examples")
    ap.add_argument("--samples", type=int, default=2, help="sampled outputs per held-out example")
    ap.add_argument("--methods", default="untrained,srl,sft")
    ap.add_argument("--model", default=None, help="override the configs' model (tests: a tiny model)")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/bench-learning"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/learning.json"))
    ap.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                    help="a config override for one method, e.g. srl.learning_rate=5e-5 (repeatable)")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    sets = split_sets(args.set)
    cfgs = {m: method_config(m, args.run_dir, args.budget_steps, args.eval_examples, args.samples, args.model,
                             sets[m]) for m in ("srl", "sft")}
    eval_cfg = cfgs["srl"]
    settings = {"model": eval_cfg.model, "budget_steps": args.budget_steps, "minutes_cap": args.minutes_cap,
                "cpu_minutes_cap": args.cpu_minutes_cap,
                "eval_examples": args.eval_examples, "samples": args.samples, "temperature": eval_cfg.temperature,
                "max_new_tokens": eval_cfg.max_completion_length, "seed": eval_cfg.seed, "eval_data":
                eval_cfg.eval_data, "configs": {m: str(CONFIGS[m].relative_to(REPO)) for m in CONFIGS},
                "overrides": sets,
                "require_think": False, "nice": os.nice(0)}
    res: dict[str, Any] = {"machine": {**machine_info(), "loadavg_start": os.getloadavg()}, "settings": settings,
                           "methods": {}, "notes": NOTES}
    cap_s = args.minutes_cap * 60 if args.minutes_cap else None
    cpu_cap_s = args.cpu_minutes_cap * 60 if args.cpu_minutes_cap else None
    for method in methods:
        entry: dict[str, Any] = {}
        spec = eval_cfg.model
        if method != "untrained":
            entry["train"] = train_method(cfgs[method], cap_s, cpu_cap_s)
            spec = entry["train"]["final_model"]
        entry["eval"] = evaluate(eval_cfg, spec, args.run_dir / method / "step_eval")
        res["methods"][method] = entry
        res["comparison"] = compare(res["methods"])
        res["targets_met"] = targets(res["comparison"])
        res["machine"]["loadavg_end"] = os.getloadavg()
        write_results(args.out, res, markdown(res))
        print(f"[{method}] {json.dumps({k: v for k, v in entry['eval'].items() if k != 'per_example'})}", flush=True)
    print(markdown(res))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
