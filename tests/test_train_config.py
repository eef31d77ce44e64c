"""The training config: every shipped config validates; overrides are typed; bad input fails before any model
loads (and without torch), naming the key, where it came from, what was given and what is allowed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from srl_swe.errors import SRLError
from srl_swe.train.config import ConfigError, TrainConfig, load_config, parse_override

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
TINY = REPO / "configs" / "cpu-tiny-test.yaml"


def _error(path, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return info.value


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ shipped configs
def test_the_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"srl-math-qwen2.5-7b.yaml", "srl-swe-qwen2.5-coder-7b.yaml", "rlvr-math-qwen2.5-7b.yaml",
            "sft-swe-qwen2.5-coder-7b.yaml", "srl-then-rlvr-math-qwen2.5-7b.yaml", "cpu-srl-gsm8k-smollm2.yaml",
            "cpu-sft-gsm8k-smollm2.yaml", "cpu-rlvr-gsm8k-smollm2.yaml", "cpu-tiny-test.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_validates_and_round_trips(path: Path, tmp_path: Path):
    assert path.read_text(encoding="utf-8").startswith("# "), "each config starts with a comment on what it is"
    cfg = load_config(path)
    cfg.validate()
    assert cfg.output_dir == f"runs/{path.stem}"
    dumped = cfg.dump_yaml(tmp_path / "run" / "config.yaml")
    assert load_config(dumped) == cfg


def test_paper_settings_in_the_gpu_configs():
    swe = load_config(REPO / "configs" / "srl-swe-qwen2.5-coder-7b.yaml")
    assert (swe.model, swe.task, swe.window, swe.step_window) == ("Qwen/Qwen2.5-Coder-7B-Instruct", "swe", 2, 2)
    assert swe.generation_batch == 512 and swe.num_generations == 8
    math_ = load_config(REPO / "configs" / "srl-math-qwen2.5-7b.yaml")
    assert (math_.model, math_.task, math_.reward) == ("Qwen/Qwen2.5-7B-Instruct", "math", "srl")
    for cfg in (swe, math_):
        assert (cfg.beta, cfg.temperature, cfg.learning_rate, cfg.max_grad_norm) == (0.0, 1.0, 5e-7, 1.0)
        assert cfg.use_vllm and cfg.dynamic_sampling and cfg.bf16 == "auto"
    rlvr = load_config(REPO / "configs" / "rlvr-math-qwen2.5-7b.yaml")
    assert (rlvr.mode, rlvr.reward, rlvr.generation_batch) == ("rlvr", "math", 128)
    sft = load_config(REPO / "configs" / "sft-swe-qwen2.5-coder-7b.yaml")
    assert (sft.mode, sft.learning_rate, sft.lr_scheduler_type, sft.reward) == ("sft", 5e-6, "cosine", None)
    chain = load_config(REPO / "configs" / "srl-then-rlvr-math-qwen2.5-7b.yaml")
    assert chain.mode == "srl_then_rlvr" and chain.srl_output_dir == "runs/srl-math-qwen2.5-7b"


@pytest.mark.parametrize("name", ["cpu-srl-gsm8k-smollm2", "cpu-sft-gsm8k-smollm2", "cpu-rlvr-gsm8k-smollm2"])
def test_cpu_configs_are_small(name: str, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SRL_SWE_DATA", str(tmp_path / "shared"))
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert (cfg.model, cfg.task, cfg.use_vllm, cfg.bf16) == ("smollm2-135m-instruct", "math", False, False)
    assert cfg.train_data == str(tmp_path / "shared" / "math" / "gsm8k" / "train.jsonl")  # shared: resolved
    assert cfg.max_steps <= 50 and cfg.max_completion_length <= 128 and cfg.per_device_train_batch_size <= 16
    if cfg.is_grpo:
        assert cfg.num_generations == 4


def test_paper_defaults():
    cfg = TrainConfig(model="m")
    assert (cfg.beta, cfg.temperature, cfg.num_generations, cfg.learning_rate, cfg.max_grad_norm, cfg.bf16) == (
        0.0, 1.0, 8, 5e-7, 1.0, "auto")
    assert cfg.dynamic_sampling and cfg.mode == "srl"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.learning_rate = 1.0  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------ overrides
@pytest.mark.parametrize(("override", "key", "expected"), [
    ("max_steps=7", "max_steps", 7),
    ("max_steps=7.0", "max_steps", 7),
    ("learning_rate=5e-7", "learning_rate", 5e-7),  # PyYAML reads this as a string
    ("learning_rate=1", "learning_rate", 1.0),
    ("lora=true", "lora", True),
    ("dynamic_sampling=off", "dynamic_sampling", False),
    ("model=Qwen/Qwen2.5-7B-Instruct", "model", "Qwen/Qwen2.5-7B-Instruct"),
    ("output_dir=2024", "output_dir", "2024"),
    ("eval_max_examples=null", "eval_max_examples", None),
    ("eval_max_examples=", "eval_max_examples", None),
    ("window=null", "window", None),
    ("window=3", "window", 3),
    ("window=default", "window", "default"),
    ("mode=sft", "mode", "sft"),
    ("bf16=auto", "bf16", "auto"),
    ("bf16=false", "bf16", False),
    ("report_to=[wandb, tensorboard]", "report_to", ("wandb", "tensorboard")),
    ("report_to=wandb", "report_to", ("wandb",)),
    ("report_to=none", "report_to", ()),
    ("syntax=qwen", "syntax", "qwen"),
])
def test_overrides_are_parsed_and_typed(override: str, key: str, expected):
    cfg = load_config(TINY, [override, "task=swe"] if key == "syntax" else [override])
    assert getattr(cfg, key) == expected
    assert type(getattr(cfg, key)) is type(expected)


def test_overrides_win_over_the_file_and_path_none_uses_defaults():
    cfg = load_config(TINY, ["max_steps=5", "max_steps=6"])
    assert cfg.max_steps == 6
    assert load_config(None, ["model=m"]) == TrainConfig(model="m")


def test_shared_prefix_is_resolved(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SRL_SWE_DATA", str(tmp_path))
    cfg = load_config(TINY, ["train_data=shared:math/gsm8k/train.jsonl", "eval_data=shared:/x.jsonl",
                             "eval_fraction=0"])
    assert cfg.train_data == str(tmp_path / "math" / "gsm8k" / "train.jsonl")
    assert cfg.eval_data == str(tmp_path / "x.jsonl")


# ---------------------------------------------------------------------------------------------- bad input
def test_unknown_key_in_file_suggests_the_closest(tmp_path: Path):
    path = _write(tmp_path, "model: m\nlerning_rate: 1.0e-6\n")
    err = _error(path)
    assert isinstance(err, SRLError) and err.source == str(path) and err.keys == ("lerning_rate",)
    assert str(err).startswith(f"{path}: lerning_rate: unknown key; did you mean 'learning_rate'?")


def test_unknown_override_without_a_near_key_lists_the_keys():
    msg = str(_error(TINY, ["zzzqqq=1"]))
    assert msg.startswith("override: zzzqqq: unknown key") and "learning_rate" in msg and "num_generations" in msg


@pytest.mark.parametrize(("line", "key", "allowed"), [
    ("max_steps: 1.5", "max_steps", "an integer"),
    ("learning_rate: abc", "learning_rate", "a number"),
    ("learning_rate: .nan", "learning_rate", "a number"),
    ("lora: maybe", "lora", "true or false"),
    ("lora_r: true", "lora_r", "an integer"),
    ("mode: grpo", "mode", "'srl' or 'rlvr' or 'sft' or 'srl_then_rlvr'"),
    ("bf16: sometimes", "bf16", "true or false or 'auto'"),
    ("model: [a, b]", "model", "a string or null"),
    ("report_to: [1, 2]", "report_to", "a list of strings"),
    ("window: full", "window", "an integer or 'default' or null"),
])
def test_wrong_type_in_file(tmp_path: Path, line: str, key: str, allowed: str):
    path = _write(tmp_path, f"model: m\n{line}\n")
    err = _error(path)
    assert err.keys == (key,)
    msg = str(err)
    assert msg.startswith(f"{path}: {key}=") and "wrong type" in msg and msg.endswith(f"allowed: {allowed}")


def test_wrong_type_in_override_names_override():
    msg = str(_error(TINY, ["num_generations=four"]))
    assert msg == "override: num_generations='four': wrong type; allowed: an integer"


@pytest.mark.parametrize("text", ["max_steps", "=3", "model=[unclosed"])
def test_malformed_override(text: str):
    err = _error(TINY, [text])
    assert err.source == "override"
    with pytest.raises(ConfigError):
        parse_override(text)


@pytest.mark.parametrize("text", ["- a\n- b\n", "model: [unclosed\n", "42\n"])
def test_file_that_is_not_a_mapping(tmp_path: Path, text: str):
    path = _write(tmp_path, text)
    assert str(_error(path)).startswith(f"{path}: config")


def test_missing_file():
    assert str(_error("configs/nope.yaml")).startswith("configs/nope.yaml: config: cannot read")


# (overrides on top of cpu-tiny-test, keys the error must name, a fragment of the message)
IMPOSSIBLE = [
    (["num_generations=3"], ("per_device_train_batch_size", "gradient_accumulation_steps", "num_generations"),
     "whole groups"),
    (["generation_batch_size=6", "num_generations=4"], ("generation_batch_size", "num_generations"), "whole groups"),
    (["per_device_train_batch_size=4", "generation_batch_size=6"],
     ("generation_batch_size", "per_device_train_batch_size"), "multiple of"),
    (["num_generations=1"], ("mode", "num_generations"), "at least 2"),
    (["mode=srl_then_rlvr"], ("mode", "init_checkpoint", "srl_output_dir"), "best checkpoint"),
    (["mode=srl_then_rlvr", "init_checkpoint=a", "srl_output_dir=b"], ("init_checkpoint", "srl_output_dir"), "both"),
    (["srl_output_dir=runs/srl"], ("mode", "srl_output_dir"), "only read by"),
    (["rlvr_reward=swe"], ("task", "rlvr_reward"), "cannot be scored"),
    (["task=swe", "rlvr_reward=math", "mode=rlvr"], ("task", "rlvr_reward"), "cannot be scored"),
    (["syntax=xml"], ("task", "syntax"), "free text"),
    (["task=swe", "syntax=text"], ("task", "syntax"), "tool calls"),
    (["use_vllm=true", "vllm_mode=server"], ("use_vllm", "vllm_mode", "vllm_server_base_url"), "URL"),
    (["eval_data=held.jsonl"], ("eval_data", "eval_fraction"), "not both"),
    (["eval_fraction=0"], ("eval_steps", "eval_data", "eval_fraction"), "held-out"),
    (["eval_steps=3"], ("save_steps", "eval_steps"), "multiple of eval_steps"),
    (["model=null"], ("model",), "required"),
    (["temperature=0"], ("temperature",), "> 0"),
    (["learning_rate=0"], ("learning_rate",), "> 0"),
    (["window=-1"], ("window",), ">= 0"),
    (["eval_fraction=1"], ("eval_fraction",), "[0, 1)"),
    (["top_p=1.5"], ("top_p",), "(0, 1]"),
    (["max_steps=0"], ("max_steps",), "-1"),
    (["dynamic_sampling_eps=-0.1"], ("dynamic_sampling_eps",), ">= 0"),
    (["dynamic_sampling_max_tries=0"], ("dynamic_sampling_max_tries",), ">= 1"),
    (["syntax=yaml", "task=swe"], ("syntax",), "xml"),
    (["keep=some"], ("keep",), "resolved_or_unknown"),
    (["lr_scheduler_type=cosin"], ("lr_scheduler_type",), "cosine"),
    (["vllm_server_base_url=localhost:8000"], ("vllm_server_base_url",), "http"),
]


@pytest.mark.parametrize(("overrides", "keys", "fragment"), IMPOSSIBLE, ids=lambda v: str(v))
def test_impossible_combinations(overrides, keys, fragment):
    err = _error(TINY, overrides)
    assert err.keys == keys
    msg = str(err)
    assert fragment in msg and all(k in msg for k in keys), msg
    # keys set by override are blamed on the override; keys left at the file's values on the file
    sources = {"override" if any(o.startswith(k + "=") for o in overrides) else str(TINY) for k in keys}
    assert err.source == " + ".join(s for s in (str(TINY), "override") if s in sources), msg


def test_combination_message_says_what_is_allowed():
    msg = str(_error(TINY, ["num_generations=3"]))
    assert "per_device_train_batch_size=2, gradient_accumulation_steps=1, num_generations=3" in msg
    assert "allowed: a multiple of 3" in msg


def test_sft_is_not_held_to_grpo_batch_rules():
    cfg = load_config(TINY, ["mode=sft", "num_generations=3", "per_device_train_batch_size=5"])
    assert cfg.reward is None and "num_generations" not in cfg.trl_kwargs() and "max_length" in cfg.trl_kwargs()


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match="TrainConfig: num_generations=0"):
        TrainConfig(model="m", num_generations=0)
    assert dataclasses.replace(TrainConfig(model="m"), learning_rate="1e-6").learning_rate == 1e-6


def test_check_paths_names_the_missing_path(tmp_path: Path):
    cfg = load_config(TINY, [f"train_data={tmp_path / 'none.jsonl'}"])
    with pytest.raises(ConfigError, match=r"train_data=.*none\.jsonl.*no such file"):
        cfg.check_paths()
    load_config(TINY).check_paths()  # bundled data: nothing to check


# ------------------------------------------------------------------------------------------ wiring helpers
def test_env_kwargs_make_the_environment():
    import gymnasium as gym

    cfg = load_config(TINY)
    env = gym.make(cfg.env_id, mode="step", **cfg.env_kwargs())
    obs, _ = env.reset(options={"index": 0})
    assert "Problem" in obs["prompt"]


def test_trl_kwargs_are_trl_arguments():
    trl = pytest.importorskip("trl")
    grpo = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    sft = {f.name for f in dataclasses.fields(trl.SFTConfig)}
    for path in CONFIGS:
        cfg = load_config(path)
        assert set(cfg.trl_kwargs()) <= (grpo if cfg.is_grpo else sft), path.name


@pytest.mark.parametrize("sets, mode, url", [([], "colocate", None),
                                             (["vllm_mode=server", "vllm_server_base_url=http://10.0.0.2:8000"],
                                              "server", "http://10.0.0.2:8000")])
def test_gpu_config_reaches_trl_with_vllm(sets: list[str], mode: str, url: str | None, tmp_path: Path):
    """The GPU path (TRL's own vLLM rollouts) cannot run without a GPU; what this project controls is that the
    flags and the paper's settings arrive in a GRPOConfig that TRL accepts."""
    trl = pytest.importorskip("trl")
    cfg = load_config(REPO / "configs" / "srl-swe-qwen2.5-coder-7b.yaml", sets)
    args = trl.GRPOConfig(**{**cfg.trl_kwargs(), "output_dir": str(tmp_path), "bf16": False, "use_cpu": True})
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (True, mode, url)
    assert (args.num_generations, args.generation_batch_size, args.beta) == (8, 512, 0.0)
    assert (args.temperature, args.learning_rate, args.max_grad_norm) == (1.0, 5e-7, 1.0)


def test_no_torch_import():
    code = ("import sys; from srl_swe.train.config import load_config; import glob\n"
            "[load_config(p) for p in glob.glob('configs/*.yaml')]\n"
            "try:\n    load_config('configs/cpu-tiny-test.yaml', ['num_generations=3'])\nexcept Exception: pass\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'vllm') if m in sys.modules)\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
