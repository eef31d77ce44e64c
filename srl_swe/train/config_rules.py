"""The training config's value ranges and cross-field rules, checked by ``TrainConfig.validate`` before any
model loads. Each rule is ``(keys, ok, problem, allowed)`` so the error names every key involved."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from srl_swe.actions import SYNTAXES
from srl_swe.train.exec_env import exec_config_rules
from srl_swe.trajectories import KEEP_CHOICES

if TYPE_CHECKING:
    from srl_swe.train.config import TrainConfig

SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
              "warmup_stable_decay")

_pos = (lambda v: v > 0, "a number > 0")
_ge1 = (lambda v: v >= 1, "an integer >= 1")
_ge1_or_none = (lambda v: v is None or v >= 1, "null or an integer >= 1")
RANGES: dict[str, tuple[Any, str]] = {
    "learning_rate": _pos, "temperature": _pos, "num_train_epochs": _pos, "lora_alpha": _pos,
    "max_grad_norm": (lambda v: v >= 0, "a number >= 0 (0 disables clipping)"),
    "beta": (lambda v: v >= 0, "a number >= 0 (the paper uses 0)"),
    "dynamic_sampling_eps": (lambda v: v >= 0, "a number >= 0"),
    "top_p": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "eval_fraction": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "lora_dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "vllm_gpu_memory_utilization": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "window": (lambda v: v is None or v == "default" or v >= 0, "null (full prefix), 'default' or an integer >= 0"),
    "max_observation_chars": (lambda v: v >= 64, "an integer >= 64"),
    "max_steps": (lambda v: v == -1 or v >= 1, "-1 (use num_train_epochs) or an integer >= 1"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "syntax": (lambda v: v is None or v in SYNTAXES, f"null or one of {sorted(SYNTAXES)}"),
    "keep": (lambda v: v in KEEP_CHOICES, f"one of {list(KEEP_CHOICES)}"),
    "lr_scheduler_type": (lambda v: v in SCHEDULERS, f"one of {list(SCHEDULERS)}"),
    "model": (lambda v: v is None or v.strip() != "", "a hub id, a local path, a .gguf file or an alias"),
    "vllm_server_base_url": (lambda v: v is None or v.startswith(("http://", "https://")), "an http(s):// URL"),
    **{k: _ge1 for k in ("lora_r", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations",
                         "max_completion_length", "logging_steps", "save_steps", "dynamic_sampling_max_tries",
                         "exec_max_steps", "exec_grading_workers")},
    "step_eval_samples": (lambda v: v >= 0, "an integer >= 0 (0: greedy only)"),
    "exec_command_timeout": (lambda v: v is None or v > 0, "null or a number > 0"),
    **{k: _ge1_or_none for k in ("generation_batch_size", "max_prompt_length", "save_total_limit", "eval_steps",
                                 "eval_max_examples")},
}


def combination_rules(c: TrainConfig) -> list[tuple[tuple[str, ...], bool, str, str | None]]:
    """(keys, ok, problem, allowed) for every cross-field rule, in the order they are reported."""
    g = c.num_generations
    batch_keys = ("generation_batch_size",) if c.generation_batch_size else (
        "per_device_train_batch_size", "gradient_accumulation_steps")
    return [
        (("model",), c.model is not None, "required", "model=HUB_ID|PATH|FILE.gguf|ALIAS"),
        (("mode", "num_generations"), not c.is_grpo or g >= 2,
         "GRPO needs at least 2 rollouts per prompt to compute group advantages", "num_generations >= 2"),
        ((*batch_keys, "num_generations"), not c.is_grpo or c.generation_batch % g == 0,
         f"the generation batch ({c.generation_batch} completions) must hold whole groups of num_generations",
         f"a multiple of {g}, e.g. " + (f"generation_batch_size={math.lcm(g, c.per_device_train_batch_size)}"
                                        if c.generation_batch_size else f"per_device_train_batch_size={g}")),
        (("generation_batch_size", "per_device_train_batch_size"),
         not c.generation_batch_size or c.generation_batch_size % c.per_device_train_batch_size == 0,
         "generation_batch_size must be a multiple of per_device_train_batch_size", None),
        (("mode", "init_checkpoint", "srl_output_dir"),
         c.mode != "srl_then_rlvr" or bool(c.init_checkpoint or c.srl_output_dir),
         "srl_then_rlvr starts RLVR from SRL's best checkpoint", "init_checkpoint=PATH or srl_output_dir=SRL_RUN_DIR"),
        (("init_checkpoint", "srl_output_dir"), not (c.init_checkpoint and c.srl_output_dir),
         "give one starting point, not both", "init_checkpoint or srl_output_dir"),
        (("mode", "srl_output_dir"), c.srl_output_dir is None or c.mode == "srl_then_rlvr",
         "srl_output_dir is only read by mode=srl_then_rlvr", "srl_output_dir=null, or mode=srl_then_rlvr"),
        (("task", "rlvr_reward"), c.rlvr_reward in (None, c.task),
         f"a {c.task} task cannot be scored by the {c.rlvr_reward} outcome reward", f"rlvr_reward={c.task} or null"),
        (("task", "syntax"), c.syntax is None or (c.syntax == "text") == (c.task == "math"),
         "math steps are free text; SWE actions are tool calls",
         "syntax=text or null for math" if c.task == "math" else "syntax=xml|qwen|bash or null for swe"),
        (("use_vllm", "vllm_mode", "vllm_server_base_url"),
         not (c.use_vllm and c.vllm_mode == "server" and not c.vllm_server_base_url),
         "vllm_mode=server needs the server's URL", "vllm_server_base_url=http://HOST:8000, or vllm_mode=colocate"),
        (("eval_data", "eval_fraction"), c.eval_data is None or c.eval_fraction == 0,
         "held-out examples come from eval_data or from an eval_fraction split, not both", None),
        (("eval_steps", "eval_data", "eval_fraction"), c.eval_steps is None or c.has_eval,
         "periodic evaluation needs held-out examples", "eval_data=PATH or eval_fraction > 0, or eval_steps=null"),
        (("save_steps", "eval_steps"), c.eval_steps is None or c.save_steps % c.eval_steps == 0,
         "the best checkpoint must be a saved one, so save_steps must be a multiple of eval_steps", None),
        *exec_config_rules(c),
    ]
