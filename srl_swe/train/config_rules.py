"""srl-swe's choices over the training config's keys: its defaults for TRL's arguments, and the value ranges
and cross-field rules checked by ``TrainConfig.validate`` before any model loads. Each rule is ``(keys, ok,
problem, allowed)`` so the error names every key involved.

Choices of TRL's own arguments (``lr_scheduler_type``, ``optim``, ...) are not listed here: they come with
TRL's fields (:mod:`srl_swe.train.trl_schema`). The ranges of TRL arguments below are srl-swe's: TRL checks
most of them late (when the trainer is built, after the model has loaded) or not at all."""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

from srl_swe.actions import SYNTAXES
from srl_swe.tasks import TASKS
from srl_swe.train.exec_env import exec_config_rules
from srl_swe.trajectories import KEEP_CHOICES

if TYPE_CHECKING:
    from srl_swe.train.config import TrainConfig


_Rule = tuple[tuple[str, ...], bool, str, "str | None"]
# srl-swe's defaults for TRL's arguments; every other one keeps the default of the mode's TRL class.
TRL_DEFAULTS: dict[str, Any] = {
    # the paper's
    "learning_rate": 5e-7, "beta": 0.0, "temperature": 1.0, "num_generations": 8, "max_grad_norm": 1.0,
    # this project's (small runs save and log often; completions are tool calls with a thought)
    "lr_scheduler_type": "constant", "num_train_epochs": 1.0, "max_completion_length": 1024, "seed": 0,
    "output_dir": "runs/train", "logging_steps": 1, "save_steps": 100, "scale_rewards": "group",
    "log_completions": False,
    "max_length": None,  # sft: null means max_prompt_length + max_completion_length (see trl_kwargs)
}
# TRL arguments srl_swe.train.run sets itself: refused in a config, saying why
SET_BY_RUN = {"reward_weights": "the reward weights follow the mode", "use_cpu": "the GPU is used when there is one",
              "activation_checkpointing": "set gradient_checkpointing (srl-swe passes it under TRL's name)"}


def _num(ok: Any, allowed: str) -> tuple[Any, str]:
    """A rule for a number (a TRL type may also admit null, which such a rule refuses)."""
    return (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and ok(v)), allowed


_pos = _num(lambda v: v > 0, "a number > 0")
_ge1 = _num(lambda v: v >= 1 and v == int(v), "an integer >= 1")  # TRL types some step counts as float
_ge1_or_none = (lambda v: v is None or _ge1[0](v), "null or an integer >= 1")
RANGES: dict[str, tuple[Any, str]] = {
    "learning_rate": _pos, "temperature": _pos, "num_train_epochs": _pos, "lora_alpha": _pos,
    "max_grad_norm": _num(lambda v: v >= 0, "a number >= 0 (0 disables clipping)"),
    "beta": _num(lambda v: v >= 0, "a number >= 0 (the paper uses 0)"),
    "dynamic_sampling_eps": _num(lambda v: v >= 0, "a number >= 0"),
    "top_p": _num(lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "eval_fraction": _num(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "warmup_ratio": _num(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "lora_dropout": _num(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "vllm_gpu_memory_utilization": _num(lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "task": (lambda v: v in TASKS, f"one of {', '.join(TASKS.names())}"),
    "window": (lambda v: v is None or v == "default" or v >= 0, "null (full prefix), 'default' or an integer >= 0"),
    "max_observation_chars": _num(lambda v: v >= 64, "an integer >= 64"),
    "max_train_seconds": (lambda v: v is None or _pos[0](v), "null or a number of seconds > 0"),
    "max_steps": _num(lambda v: v == -1 or v >= 1, "-1 (use num_train_epochs) or an integer >= 1"),
    "seed": _num(lambda v: v >= 0, "an integer >= 0"),
    "syntax": (lambda v: v is None or v in SYNTAXES, f"null or one of {sorted(SYNTAXES)}"),
    "keep": (lambda v: v in KEEP_CHOICES, f"one of {list(KEEP_CHOICES)}"),
    "model": (lambda v: v is None or v.strip() != "", "a hub id, a local path, a .gguf file or an alias"),
    # TRL types vllm_mode as a plain str and reads it only when the trainer starts vLLM; these are the two
    # modes srl-swe's rules (and configs) are written for.
    "vllm_mode": (lambda v: v in ("colocate", "server"), "'colocate' or 'server'"),
    "vllm_server_base_url": (lambda v: v is None or v.startswith(("http://", "https://")), "an http(s):// URL"),
    **{k: _ge1 for k in ("lora_r", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations",
                         "max_completion_length", "logging_steps", "save_steps", "dynamic_sampling_max_tries",
                         "exec_max_steps", "exec_grading_workers")},
    "step_eval_samples": _num(lambda v: v >= 0, "an integer >= 0 (0: greedy only)"),
    "exec_command_timeout": (lambda v: v is None or v > 0, "null or a number > 0"),
    **{k: _ge1_or_none for k in ("generation_batch_size", "max_prompt_length", "save_total_limit", "eval_steps",
                                 "eval_max_examples")},
}


def choice_rules(c: TrainConfig, choices: dict[str, tuple[Any, ...]], defaults: dict[str, Any]) -> list[_Rule]:
    """A rule for each TRL argument whose value is not among TRL's choices (an enum's values, such as
    transformers' SchedulerType for lr_scheduler_type, or HfArgumentParser's ``choices``): null and the
    default pass (TRL decides about those)."""
    rules = []
    for key, allowed in choices.items():
        v = getattr(c, key)
        if v is not None and v != defaults[key] and v not in allowed:
            near = difflib.get_close_matches(str(v), [str(a) for a in allowed], n=1)
            rules.append(((key,), False, "out of range" + (f"; did you mean {near[0]!r}?" if near else ""),
                          f"one of {list(allowed)}"))
    return rules


def combination_rules(c: TrainConfig) -> list[_Rule]:
    """(keys, ok, problem, allowed) for every cross-field rule, in the order they are reported."""
    g, kind = c.num_generations, TASKS.get(c.task)
    spg = "steps_per_generation" if getattr(c, "steps_per_generation", None) else "gradient_accumulation_steps"
    batch_keys = ("generation_batch_size",) if c.generation_batch_size else ("per_device_train_batch_size", spg)
    return [
        (("model",), c.model is not None, "required", "model=HUB_ID|PATH|FILE.gguf|ALIAS"),
        # GRPOConfig.__post_init__ checks the group sizes too, but only once the trainer is built (after the
        # model has loaded) and in its own terms; checked here first so the error names these keys and a fix.
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
        (("task", "syntax"), c.syntax is None or c.syntax in kind.syntaxes, kind.actions_are,
         f"syntax={'|'.join(kind.syntaxes)} or null for {c.task}"),
        (("use_vllm", "vllm_mode", "vllm_server_base_url"),
         not (c.use_vllm and c.vllm_mode == "server" and not c.vllm_server_base_url),
         "vllm_mode=server needs the server's URL", "vllm_server_base_url=http://HOST:8000, or vllm_mode=colocate"),
        (("warmup_ratio", "warmup_steps"), not (c.warmup_ratio and getattr(c, "warmup_steps", 0)),
         "give the warmup once", "warmup_ratio=R (a share of the steps) or warmup_steps=N"),
        (("eval_data", "eval_fraction"), c.eval_data is None or c.eval_fraction == 0,
         "held-out examples come from eval_data or from an eval_fraction split, not both", None),
        (("eval_steps", "eval_data", "eval_fraction"), c.eval_steps is None or c.has_eval,
         "periodic evaluation needs held-out examples", "eval_data=PATH or eval_fraction > 0, or eval_steps=null"),
        (("save_steps", "eval_steps"), c.eval_steps is None or c.save_steps % c.eval_steps == 0,
         "the best checkpoint must be a saved one, so save_steps must be a multiple of eval_steps", None),
        (("mode", "think_prefill"), not c.think_prefill or c.mode == "srl",
         "the <think> prefill opens the step examples' replies in SRL's GRPO (SFT learns the whole reply; RLVR's "
         "rollouts are the model's own tool-calling turns)", "think_prefill=false, or mode=srl"),
        (("think_prefill", "require_think"), not (c.think_prefill and not c.require_think),
         "with the prefill every reply has a <think> block, so it is scored in the paper's strict format",
         "require_think=true (the default)"),
        *exec_config_rules(c),
    ]
