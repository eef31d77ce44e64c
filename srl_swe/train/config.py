"""The training configuration: one flat, validated dataclass read from YAML plus ``key=value`` overrides.

Everything here is checked before any model loads (and without importing torch or transformers): an unknown
key (with the closest valid one suggested), a value of the wrong type, or an impossible combination raises
:class:`ConfigError`, which names the key, where it came from (the file or ``override``), what was given
and what is allowed. Defaults are the SRL paper's (arXiv 2510.25992): KL coefficient 0, temperature 1.0,
8 rollouts per prompt, learning rate 5e-7, max grad norm 1.0, bf16 where supported, dynamic sampling.

Paths in ``train_data`` / ``eval_data`` may start with ``shared:``, meaning relative to
:func:`srl_swe.paths.shared_data_dir` (``$SRL_SWE_DATA``); they are made absolute when the config is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml

from srl_swe.errors import SRLError
from srl_swe.paths import shared_data_dir
from srl_swe.steps import DEFAULT_WINDOW
from srl_swe.train.coerce import Mismatch, coerce, describe
from srl_swe.train.config_rules import RANGES, combination_rules
from srl_swe.train.exec_env import is_exec_rlvr, names_hub_dataset

GRPO_MODES = ("srl", "rlvr", "srl_then_rlvr")
SHARED_PREFIX = "shared:"
SHARED_PATH_FIELDS = ("train_data", "eval_data")
# transformers.SchedulerType values (kept here so validation needs no transformers import)
_MISSING = object()


class ConfigError(SRLError, ValueError):
    """A bad training config: ``source`` (file path, ``override`` or ``TrainConfig``), ``keys``, ``given``."""

    def __init__(self, source: str, keys: str | Sequence[str], problem: str, given: Any = _MISSING,
                 allowed: str | None = None):
        self.source, self.problem, self.given, self.allowed = source, problem, given, allowed
        self.keys = (keys,) if isinstance(keys, str) else tuple(keys)
        what = ", ".join(self.keys)
        if isinstance(given, dict):
            what = ", ".join(f"{k}={v!r}" for k, v in given.items())
        elif given is not _MISSING:
            what += f"={given!r}"
        super().__init__(f"{source}: {what}: {problem}" + (f"; allowed: {allowed}" if allowed else ""))


@dataclass(frozen=True)
class TrainConfig:
    # -- what to train ------------------------------------------------------------------------------------
    mode: Literal["srl", "rlvr", "sft", "srl_then_rlvr"] = "srl"
    model: str | None = None  # hub id, local folder, .gguf file, or an alias such as smollm2-135m-instruct
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    lora: bool = False
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    init_checkpoint: str | None = None  # start from this checkpoint (srl_then_rlvr: SRL's best)
    srl_output_dir: str | None = None  # srl_then_rlvr: the SRL run dir whose best checkpoint to start from
    # -- data (the environment's step examples) ------------------------------------------------------------
    task: Literal["swe", "math"] = "swe"
    train_data: str | None = None  # None: the environment's bundled data
    eval_data: str | None = None  # held-out data; None: split eval_fraction off train_data
    eval_fraction: float = 0.0
    syntax: str | None = None  # None: the task's default (xml for swe; math is always text)
    window: int | Literal["default"] | None = "default"  # null: full prefix; default: 2 for swe, full for math
    max_observation_chars: int = 4000
    include_thoughts: bool = False
    require_think: bool = True  # False: an output with no <think> block is scored as all action (small models)
    keep: str = "resolved"
    # -- run ----------------------------------------------------------------------------------------------
    output_dir: str = "runs/train"
    seed: int = 0
    report_to: tuple[str, ...] = ()
    logging_steps: int = 1
    save_steps: int = 100
    save_total_limit: int | None = None
    eval_steps: int | None = None  # None: no periodic evaluation
    eval_max_examples: int | None = None
    step_eval: bool = False  # held-out step reward before and after training (generation: slow on CPU)
    step_eval_samples: int = 2  # sampled outputs per held-out example (besides the greedy one)
    # -- optimisation -------------------------------------------------------------------------------------
    learning_rate: float = 5e-7
    lr_scheduler_type: str = "constant"
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    per_device_train_batch_size: int = 8  # completions (GRPO) or sequences (SFT) per device per micro-step
    gradient_accumulation_steps: int = 1
    max_steps: int = -1  # -1: run num_train_epochs
    num_train_epochs: float = 1.0
    bf16: bool | Literal["auto"] = "auto"  # auto: bf16 where the device supports it
    gradient_checkpointing: bool = False
    # -- GRPO ---------------------------------------------------------------------------------------------
    beta: float = 0.0  # KL coefficient
    temperature: float = 1.0
    top_p: float = 1.0
    num_generations: int = 8  # rollouts per prompt
    generation_batch_size: int | None = None  # None: per_device_train_batch_size * gradient_accumulation_steps
    max_prompt_length: int | None = None
    max_completion_length: int = 1024
    dynamic_sampling: bool = True
    dynamic_sampling_eps: float = 0.0  # groups whose reward std <= eps are dropped
    dynamic_sampling_max_tries: int = 4
    rlvr_reward: Literal["math", "swe"] | None = None  # None: the task's
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: float = 0.3
    # -- RLVR on SWE tasks (task: swe): rollouts use tools in sandboxes (srl_swe.train.exec_env) ----------
    runtime: str = "docker"  # docker | local (srl_swe.runtime.RUNTIMES)
    exec_max_steps: int = 30  # tool-calling rounds per rollout (TRL's max_tool_calling_iterations)
    exec_command_timeout: float | None = None  # seconds per bash command; null: the runtime's default
    exec_grading_workers: int = 1  # rollouts of a batch graded at once (threads; each grading has a sandbox)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce_field(f.name, getattr(self, f.name), "TrainConfig"))
        self.validate()

    # -- derived ------------------------------------------------------------------------------------------
    @property
    def is_grpo(self) -> bool:
        return self.mode in GRPO_MODES

    @property
    def reward(self) -> str | None:
        """``srl`` (step similarity), ``math`` / ``swe`` (outcome, RLVR modes) or None (sft)."""
        if self.mode == "srl":
            return "srl"
        return (self.rlvr_reward or self.task) if self.is_grpo else None

    @property
    def exec_rlvr(self) -> bool:
        """RLVR on SWE tasks: train_data holds SWE-bench instances, the reward is the environment's."""
        return is_exec_rlvr(self)

    @property
    def env_id(self) -> str:
        return "SRL-Math-v0" if self.task == "math" else "SRL-SWE-v0"

    @property
    def generation_batch(self) -> int:
        return self.generation_batch_size or self.per_device_train_batch_size * self.gradient_accumulation_steps

    @property
    def step_window(self) -> int | None:
        """``window`` with ``"default"`` resolved: the paper's last 2 pairs for swe, the full prefix for math."""
        return DEFAULT_WINDOW[self.task] if self.window == "default" else self.window  # type: ignore

    @property
    def has_eval(self) -> bool:
        return self.eval_data is not None or self.eval_fraction > 0

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``gym.make(cfg.env_id, mode="step", **cfg.env_kwargs())`` on the training data."""
        return {"data": self.train_data, "syntax": self.syntax, "window": self.window,
                "max_observation_chars": self.max_observation_chars, "include_thoughts": self.include_thoughts,
                "keep": self.keep}

    def trl_kwargs(self) -> dict[str, Any]:
        """Arguments for trl.GRPOConfig (GRPO modes) or trl.SFTConfig (sft), named as TRL names them.

        bf16 is left out: resolve ``"auto"`` where torch is imported. max_prompt_length is not a TRL 1.x
        argument either: GRPO examples with longer prompts are skipped by ``srl_swe.train.run.fit_prompts``.
        SFT's max_length is prompt + completion budget.
        """
        keys = ["output_dir", "seed", "learning_rate", "lr_scheduler_type", "max_grad_norm", "logging_steps",
                "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "num_train_epochs",
                "save_steps", "save_total_limit", "gradient_checkpointing", "eval_steps"]
        if self.is_grpo:
            keys += ["beta", "temperature", "top_p", "num_generations", "generation_batch_size", "use_vllm",
                     "max_completion_length", "vllm_mode", "vllm_server_base_url", "vllm_gpu_memory_utilization"]
        kw = {k: getattr(self, k) for k in keys}
        if self.exec_rlvr:
            kw["max_tool_calling_iterations"] = self.exec_max_steps
        # The caller sets it under the name its transformers knows (activation_checkpointing from 5.20 on).
        del kw["gradient_checkpointing"]
        kw.update(warmup_steps=self.warmup_ratio,  # transformers >= 5: a float in [0, 1) is a ratio of the steps
                  report_to=list(self.report_to) or "none", eval_strategy="steps" if self.eval_steps else "no")
        if not self.is_grpo:
            kw["max_length"] = self.max_prompt_length and self.max_prompt_length + self.max_completion_length
        return kw

    # -- checks ---------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError for an out-of-range value or an impossible combination (source ``TrainConfig``)."""
        for key, (ok, allowed) in RANGES.items():
            value = getattr(self, key)
            if not ok(value):
                raise ConfigError("TrainConfig", key, "out of range", value, allowed)
        for keys, ok, problem, allowed in combination_rules(self):
            if not ok:
                raise ConfigError("TrainConfig", keys, problem, {k: getattr(self, k) for k in keys}, allowed)

    def check_paths(self) -> None:
        """Raise ConfigError for a data or checkpoint path that does not exist (call before loading a model)."""
        for key in ("train_data", "eval_data", "init_checkpoint", "srl_output_dir"):
            value = getattr(self, key)
            if self.exec_rlvr and "data" in key and value is not None and names_hub_dataset(value):
                continue  # SWE-bench instances may come from the hub (loaded, and checked, before the model)
            if value is not None and not Path(value).expanduser().exists():
                raise ConfigError("TrainConfig", key, "no such file or directory", value,
                                  "an existing path" + (", or shared:REL under $SRL_SWE_DATA" if "data" in key else ""))

    # -- serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    def dump_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        path.write_text("# the resolved srl-swe training config of this run\n" + text, encoding="utf-8")
        return path


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TYPES = get_type_hints(TrainConfig)

def _coerce_field(key: str, value: Any, source: str) -> Any:
    try:
        value = coerce(_TYPES[key], value)
    except Mismatch:
        raise ConfigError(source, key, "wrong type", value, describe(_TYPES[key])) from None
    if key in SHARED_PATH_FIELDS and isinstance(value, str) and value.startswith(SHARED_PREFIX):
        value = os.path.abspath(shared_data_dir().expanduser() / value[len(SHARED_PREFIX):].lstrip("/"))
    return value


# -- loading ----------------------------------------------------------------------------------------------
def _check_key(key: Any, source: str) -> None:
    if key not in FIELDS:
        near = difflib.get_close_matches(str(key), list(FIELDS), n=1)
        problem = f"unknown key; did you mean {near[0]!r}?" if near else "unknown key"
        raise ConfigError(source, str(key), problem, allowed=None if near else "one of " + ", ".join(FIELDS))


def _build(values: dict[str, Any], origins: dict[str, str], source: str) -> TrainConfig:
    for key in values:
        _check_key(key, origins.get(key, source))
        values[key] = _coerce_field(key, values[key], origins[key])
    try:
        return TrainConfig(**values)
    except ConfigError as e:
        # the file (also for keys left at their defaults) before the overrides
        where = sorted({origins.get(k, source) for k in e.keys}, key=lambda s: s == "override")
        raise ConfigError(" + ".join(where), e.keys, e.problem, e.given, e.allowed) from None


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value parsed as YAML: ``5e-7``, ``true``, ``null``, ``[wandb]``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("override", text, "expected key=value", allowed="e.g. learning_rate=1e-6 window=null")
    try:
        return key, yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError("override", key, f"value is not valid YAML ({e.__class__.__name__})", raw) from None


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML mapping (or nothing, for path=None), apply ``key=value`` overrides, validate.

    Without an ``output_dir`` in the file or the overrides, the run goes to ``runs/<config file stem>``.
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    source = "override"
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(source, "config", f"cannot read it as YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(source, "config", "the file must be a YAML mapping of key: value", type(data).__name__)
        for key, value in data.items():
            _check_key(key, source)
            values[key], origins[key] = value, source
        if "output_dir" not in values:
            values["output_dir"], origins["output_dir"] = f"runs/{Path(path).stem}", source
    for text in overrides:
        key, value = parse_override(text)
        _check_key(key, "override")
        values[key], origins[key] = value, "override"
    return _build(values, origins, source)
