"""Where a GRPO step's time and memory go on a CPU, for the SWE config (one run, JSON + Markdown).

    python benchmarks/bench_grpo_step.py [--config configs/cpu-srl-swe-smollm2.yaml] [--steps 3]
                                         [--variants base,lora,...] [--out benchmarks/results/grpo_step.json]

Each variant is the config plus a few overrides (:data:`VARIANTS`), trained for ``--steps`` optimizer steps in
its own process (so its peak RSS is its own) with the trainer exactly as ``srl-swe train`` builds it
(:func:`srl_swe.train.run.build_trainer`). The phases are timed by wrapping the trainer's own methods:

* ``generate``: TRL's ``_generate_single_turn`` (``model.generate`` for the group's completions);
* ``reward``: ``_calculate_rewards`` (the environment's step similarity);
* ``forward``: ``_get_per_token_logps_and_entropies`` with grad (the loss's forward pass); ``logps_no_grad``
  the same without grad (old/reference log-probs, when the config needs them);
* ``backward``: ``accelerator.backward``; ``optimizer``: the optimizer's ``step``.

The first step is a warm-up and is left out of the per-step figures. ``peak_rss_gb`` is the process's maximum
resident set (``ru_maxrss``) over the whole run, model load included.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results  # noqa: E402

CONFIG = REPO / "configs" / "cpu-srl-swe-smollm2.yaml"
#: name -> (overrides, why it is measured)
VARIANTS: dict[str, tuple[list[str], str]] = {
    "base": ([], "the config as written"),
    "trl_fused_head": ([], "log-probs through TRL's fused LM head, which on CPU projects every prompt position"),
    "all_at_once": (["per_device_train_batch_size=4", "gradient_accumulation_steps=1"],
                    "the loss over all 4 sequences at once instead of one at a time"),
    "no_grad_ckpt": (["gradient_checkpointing=false"], "activations stored for the backward pass"),
    "lora": (["lora=true", "learning_rate=2e-4"], "LoRA r=16 on every linear layer: no full-model optimizer"),
    "two_prompts": (["per_device_train_batch_size=2"], "2 prompts x 4 rollouts a step"),
}
DEFAULT_VARIANTS = ("base", "trl_fused_head", "all_at_once", "no_grad_ckpt")
PHASES = ("generate", "reward", "forward", "logps_no_grad", "backward", "optimizer")


def _peak_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def _measure(config: Path, overrides: list[str], steps: int) -> dict[str, Any]:
    """Train ``steps`` steps in this process and time the phases of each."""
    import warnings

    import torch
    from transformers import TrainerCallback

    from srl_swe.train.config import load_config
    from srl_swe.train.run import VLLM_VERSION_WARNING, build_trainer
    warnings.filterwarnings("ignore", message=VLLM_VERSION_WARNING)
    phases: dict[str, list[float]] = defaultdict(list)  # phase -> seconds per step
    current: dict[str, float] = defaultdict(float)
    peaks: dict[str, float] = {}  # phase -> the process's peak RSS (GB) right after its first call
    tokens: dict[str, list[int]] = defaultdict(list)

    def timed(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                key = name if name != "forward" or torch.is_grad_enabled() else "logps_no_grad"
                current[key] += time.perf_counter() - start
                peaks.setdefault(key, _peak_gb())
        return wrapper

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [*overrides, f"output_dir={tmp}", f"max_steps={steps}", "save_steps=100000",
                                   "step_eval=false"])
        peaks["imports"] = _peak_gb()
        start = time.perf_counter()
        trainer = build_trainer(cfg, cfg.mode, cfg.model, Path(tmp))
        build_s = time.perf_counter() - start
        peaks["model_and_data"] = _peak_gb()
        trainer._generate_single_turn = timed("generate", trainer._generate_single_turn)
        trainer._calculate_rewards = timed("reward", trainer._calculate_rewards)
        trainer._get_per_token_logps_and_entropies = timed("forward", trainer._get_per_token_logps_and_entropies)
        trainer.accelerator.backward = timed("backward", trainer.accelerator.backward)
        step_times: list[float] = []

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                current.clear()
                self.t = time.perf_counter()
                opt = kw.get("optimizer")
                if opt is not None and not getattr(opt, "_timed", False):
                    opt.step, opt._timed = timed("optimizer", opt.step), True

            def on_step_end(self, args, state, control, **kw):
                step_times.append(time.perf_counter() - self.t)
                for p in PHASES:
                    phases[p].append(current.get(p, 0.0))

            def on_log(self, args, state, control, logs=None, **kw):
                if logs and "completions/mean_length" in logs:
                    tokens["completion_mean"].append(logs["completions/mean_length"])

        trainer.add_callback(Clock())
        trainer.train()
    timed_steps = step_times[1:] or step_times
    per_phase = {p: sum(v[1:] or v) / len(v[1:] or v) for p, v in phases.items()}
    mean_step = sum(timed_steps) / len(timed_steps)
    return {"overrides": overrides, "build_s": round(build_s, 2), "steps": steps,
            "step_s": [round(s, 2) for s in step_times], "mean_step_s": round(mean_step, 2),
            "phases_s": {p: round(v, 2) for p, v in per_phase.items()},
            "other_s": round(mean_step - sum(per_phase.values()), 2),
            "completion_mean_tokens": tokens["completion_mean"],
            "peak_rss_gb": _peak_gb(), "peak_rss_after_first_gb": peaks,
            "torch_threads": torch.get_num_threads()}


def _markdown(res: dict[str, Any]) -> str:
    lines = [f"# GRPO step profile ({Path(res['config']).name}, {res['steps']} steps, first is warm-up)", "",
             "| variant | step s | " + " | ".join(PHASES) + " | other | peak RSS GB | what |",
             "|---|---|" + "---|" * len(PHASES) + "---|---|---|"]
    for name, v in res["variants"].items():
        if "error" in v:
            lines.append(f"| {name} | error: {v['error'][:80]} |")
            continue
        ph = " | ".join(f"{v['phases_s'].get(p, 0):.1f}" for p in PHASES)
        lines.append(f"| {name} | {v['mean_step_s']:.1f} | {ph} | {v['other_s']:.1f} | {v['peak_rss_gb']:.2f} | "
                     f"{VARIANTS[name][1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "grpo_step.json")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this variant here, print JSON
    args = ap.parse_args(argv)
    if args.one:
        if args.one == "trl_fused_head":  # srl_swe.train.logps off: TRL's own path
            import srl_swe.train.logps as logps

            logps.applies = lambda *a, **k: False
        print("RESULT " + json.dumps(_measure(args.config, VARIANTS[args.one][0], args.steps)))
        return 0
    res: dict[str, Any] = {"machine": machine_info(), "config": str(args.config), "steps": args.steps,
                           "variants": {}}
    for name in args.variants.split(","):
        if name not in VARIANTS:
            ap.error(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--config", str(args.config),
                               "--steps", str(args.steps)], capture_output=True, text=True)
        found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not found:
            res["variants"][name] = {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
        else:
            res["variants"][name] = json.loads(found[-1][len("RESULT "):])
        print(name, json.dumps(res["variants"][name]), flush=True)
    write_results(args.out, res, _markdown(res))
    print(_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
