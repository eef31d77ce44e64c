"""The training configuration: one flat, validated dataclass read from YAML plus ``key=value`` overrides.

Its keys are srl-swe's own (:class:`SRLKeys`: mode, model, data, dynamic sampling, step evaluation, runtime,
...) and every argument of TRL's ``GRPOConfig`` / ``SFTConfig``, read from the installed TRL by
:mod:`srl_swe.train.trl_schema` (so a new TRL option works without an edit here), with TRL's defaults except
where :data:`srl_swe.train.config_rules.TRL_DEFAULTS` (the SRL paper's, arXiv 2510.25992, and this project's)
says otherwise. ``trl_kwargs()`` passes on those the mode's TRL class takes.

Everything is checked before any model loads (and without importing torch, transformers or TRL): an unknown
key (with the closest valid one suggested), a value of the wrong type, or an impossible combination raises
:class:`ConfigError`, which names the key, where it came from (the file or ``override``), what was given and
what is allowed. Paths in ``train_data`` / ``eval_data`` may start with ``shared:``, meaning relative to
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
from srl_swe.tasks import TASKS
from srl_swe.train.coerce import Mismatch, coerce, describe
from srl_swe.train.config_rules import RANGES, SET_BY_RUN, TRL_DEFAULTS, choice_rules, combination_rules
from srl_swe.train.exec_env import is_exec_rlvr, names_hub_dataset
from srl_swe.train.trl_schema import config_fields, load_schema, trl_fields

GRPO_MODES = ("srl", "rlvr", "srl_then_rlvr")
SHARED_PREFIX = "shared:"
SHARED_PATH_FIELDS = ("train_data", "eval_data")
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
class SRLKeys:
    """srl-swe's own keys; :class:`TrainConfig` adds TRL's arguments to them."""

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
    task: str = "swe"  # a task kind of srl_swe.tasks.TASKS
    train_data: str | None = None  # None: the environment's bundled data
    eval_data: str | None = None  # held-out data; None: split eval_fraction off train_data
    eval_fraction: float = 0.0
    syntax: str | None = None  # None: the task's default (xml for swe; math is always text)
    window: int | Literal["default"] | None = "default"  # null: full prefix; default: 2 for swe, full for math
    max_observation_chars: int = 4000
    include_thoughts: bool = False
    require_think: bool = True  # False: an output with no <think> block is scored as all action (small models)
    think_prefill: bool = False  # srl: every prompt ends with "<think>\n", so the model writes thought then action
    keep: str = "resolved"
    max_prompt_length: int | None = None  # GRPO: longer prompts are skipped (TRL 1.x has no such argument)
    # -- run (TRL's keys spelled srl-swe's way) -------------------------------------------------------------
    report_to: tuple[str, ...] = ()  # TRL's report_to; [] or none: nowhere
    bf16: bool | Literal["auto"] = "auto"  # auto: bf16 where the device supports it
    gradient_checkpointing: bool = False  # TRL's default is on (about 20 % slower); renamed in transformers 5.20
    warmup_ratio: float = 0.0  # a share of the steps (transformers >= 5: passed as warmup_steps)
    eval_max_examples: int | None = None
    step_eval: bool = False  # held-out step reward before and after training (generation: slow on CPU)
    step_eval_samples: int = 2  # sampled outputs per held-out example (besides the greedy one)
    max_train_seconds: float | None = None  # stop after this much training (and save) per start; null: max_steps
    # -- GRPO ---------------------------------------------------------------------------------------------
    dynamic_sampling: bool = True
    dynamic_sampling_eps: float = 0.0  # groups whose reward std <= eps are dropped
    dynamic_sampling_max_tries: int = 4
    rlvr_reward: Literal["math", "swe"] | None = None  # None: the task's
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
    def trl_class(self) -> str:
        return "GRPOConfig" if self.is_grpo else "SFTConfig"

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
        return TASKS.get(self.task).env_id

    @property
    def generation_batch(self) -> int:
        """Completions per generation round, as GRPOConfig derives it (on one process)."""
        steps = getattr(self, "steps_per_generation", None) or self.gradient_accumulation_steps
        return self.generation_batch_size or self.per_device_train_batch_size * steps

    @property
    def step_window(self) -> int | None:
        """``window`` with ``"default"`` resolved: the paper's last 2 pairs for swe, the full prefix for math."""
        return TASKS.get(self.task).resolve_window(self.window)

    @property
    def has_eval(self) -> bool:
        return self.eval_data is not None or self.eval_fraction > 0

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``gym.make(cfg.env_id, mode="step", **cfg.env_kwargs())`` on the training data."""
        return {"data": self.train_data, "syntax": self.syntax, "window": self.window,
                "max_observation_chars": self.max_observation_chars, "include_thoughts": self.include_thoughts,
                "keep": self.keep}

    def trl_kwargs(self) -> dict[str, Any]:
        """Arguments for trl.GRPOConfig (GRPO modes) or trl.SFTConfig (sft): that class's keys not at TRL's
        default, plus what srl-swe's keys become where the config does not set the TRL key itself (SFT's
        max_length is the prompt + completion budget). bf16 and gradient_checkpointing are the caller's: it
        resolves ``"auto"`` with torch, and picks the checkpointing argument's name for its transformers."""
        theirs = TRL_CLASSES[self.trl_class]
        kw = {}
        for key in TRL_KEYS.keys() & theirs.keys():
            value = getattr(self, key)
            value = list(value) if isinstance(value, tuple) else value
            if value != theirs[key].default and not (key in PER_MODE and value is None):
                kw[key] = value
        derived: dict[str, Any] = {"report_to": list(self.report_to) or "none", "warmup_steps": self.warmup_ratio,
                                   "eval_strategy": "steps" if self.eval_steps else "no"}
        if self.exec_rlvr:
            derived["max_tool_calling_iterations"] = self.exec_max_steps
        if not self.is_grpo:
            derived["max_length"] = self.max_prompt_length and self.max_prompt_length + self.max_completion_length
        for key, value in derived.items():
            if key not in TRL_KEYS or getattr(self, key) == DEFAULTS[key]:
                kw[key] = value
        return dict(sorted(kw.items()))

    # -- checks ---------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError for an out-of-range value or an impossible combination (source ``TrainConfig``)."""
        for key, (ok, allowed) in RANGES.items():
            value = getattr(self, key)
            if not ok(value):
                raise ConfigError("TrainConfig", key, "out of range", value, allowed)
        for keys, ok, problem, allowed in [*choice_rules(self, CHOICES[self.trl_class], DEFAULTS),
                                              *combination_rules(self)]:
            if not ok:
                raise ConfigError("TrainConfig", keys, problem, {k: getattr(self, k) for k in keys}, allowed)

    def check_paths(self) -> None:
        """Raise ConfigError for a data or checkpoint path that does not exist (call before loading a model)."""
        for key in ("train_data", "eval_data", "init_checkpoint", "srl_output_dir"):
            value = getattr(self, key)
            if self.exec_rlvr and "data" in key and value is not None and names_hub_dataset(value):
                continue  # SWE-bench instances may come from the hub (loaded, and checked, before the model)
            if "data" in key and isinstance(value, str) and value.startswith("hf:"):
                continue  # a Hugging Face dataset of trajectories (srl_swe.trajectories.tabular), opened when read
            if value is not None and not Path(value).expanduser().exists():
                raise ConfigError("TrainConfig", key, "no such file or directory", value,
                                  "an existing path" + (", shared:REL under $SRL_SWE_DATA, or hf:NAME[:CONFIG]:SPLIT"
                                                        if "data" in key else ""))

    # -- serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """srl-swe's keys, the TRL keys of TRL_DEFAULTS, and every other TRL key not at TRL's default."""
        values = {name: getattr(self, name) for name in FIELDS}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()
                if k in OWN or k in TRL_DEFAULTS or v != DEFAULTS[k]}

    def __repr__(self) -> str:  # the 200 TRL keys at TRL's defaults would hide the rest
        return f"TrainConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def dump_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        path.write_text(f"# the resolved srl-swe training config of this run; every TRL argument not listed has "
                        f"the default of trl {TRL_VERSION}\n" + text, encoding="utf-8")
        return path


# -- TRL's arguments as fields ----------------------------------------------------------------------------
_SCHEMA = load_schema()
TRL_VERSION: str = _SCHEMA["trl"]
TRL_CLASSES = trl_fields(_SCHEMA)
OWN = {f.name for f in dataclasses.fields(SRLKeys)}
# srl-swe's keys (and its properties and methods) hide a TRL argument of the same name; where a range rule
# below refuses null, so does the type (an integer where TRL also takes null: "wrong type", as for our keys)
TRL_KEYS, PER_MODE, _SPECS = config_fields(
    TRL_CLASSES, TRL_DEFAULTS, hidden=lambda k: k in SET_BY_RUN or hasattr(SRLKeys, k) or k in OWN,
    not_null=lambda k: k in RANGES and not RANGES[k][0](None), required=(TRL_DEFAULTS.keys() | RANGES.keys()) - OWN)
TrainConfig = dataclasses.make_dataclass("TrainConfig", _SPECS, bases=(SRLKeys,), frozen=True, repr=False)
TrainConfig.__module__ = __name__
TrainConfig.__doc__ = "srl-swe's keys (SRLKeys) and TRL's GRPOConfig / SFTConfig arguments, coerced and validated."
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TYPES = {**get_type_hints(SRLKeys), **{name: tp for name, tp, _ in _SPECS}}
DEFAULTS = {name: coerce(_TYPES[name], f.default_factory() if f.default is dataclasses.MISSING else f.default)
            for name, f in FIELDS.items()}
# per TRL class: SFTConfig's loss_type has choices, GRPOConfig's is any string
CHOICES = {cls: {k: f.choices for k, f in fs.items() if f.choices and k in TRL_KEYS} for cls, fs in TRL_CLASSES.items()}


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
    if key in SET_BY_RUN:
        raise ConfigError(source, str(key), f"set by srl-swe, not by a config: {SET_BY_RUN[key]}")
    if key not in FIELDS:
        near = difflib.get_close_matches(str(key), list(FIELDS), n=1)
        problem = f"unknown key; did you mean {near[0]!r}?" if near else "unknown key"
        listed = ", ".join([*OWN, *TRL_DEFAULTS]) + f", or any argument of TRL {TRL_VERSION}'s GRPOConfig / SFTConfig"
        raise ConfigError(source, str(key), problem, allowed=None if near else "one of " + listed)


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
