"""TRL's arguments in the training config: read from the installed TRL (in a child process, cached by version),
so a TRL option srl-swe never names is a config key, typed and checked before any model loads."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from srl_swe.train import trl_schema
from srl_swe.train.config import TRL_DEFAULTS, ConfigError, TrainConfig, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "cpu-tiny-test.yaml"


def _error(overrides) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(TINY, overrides)
    return info.value


def test_schema_is_trls_own():
    trl = pytest.importorskip("trl")
    from transformers.trainer_utils import SchedulerType

    fields = trl_schema.trl_fields()
    for name in ("GRPOConfig", "SFTConfig"):
        real = {f.name: f for f in dataclasses.fields(getattr(trl, name)) if f.init}
        assert set(fields[name]) == set(real)
        for key in ("learning_rate", "seed", "num_train_epochs", "per_device_train_batch_size", "max_steps"):
            assert fields[name][key].default == real[key].default, (name, key)
    lr = fields["GRPOConfig"]["lr_scheduler_type"]
    assert (lr.type, lr.default, lr.choices) == ("str", "linear", tuple(s.value for s in SchedulerType))
    assert fields["GRPOConfig"]["num_generations"].type == {"union": ["int", "null"]}
    assert fields["SFTConfig"]["loss_type"].choices and not fields["GRPOConfig"]["loss_type"].choices


def test_an_option_srl_swe_never_names_reaches_trl():
    grpo = load_config(TINY, ["epsilon=0.3", "packing=true"])  # packing is SFTConfig's only
    assert grpo.epsilon == 0.3 and grpo.trl_kwargs()["epsilon"] == 0.3 and "packing" not in grpo.trl_kwargs()
    sft = load_config(TINY, ["mode=sft", "packing=true", "epsilon=0.3"])
    assert sft.trl_kwargs()["packing"] is True and "epsilon" not in sft.trl_kwargs()
    assert "adam_beta1" not in grpo.trl_kwargs()  # keys at TRL's default are left to TRL
    trl = pytest.importorskip("trl")
    args = trl.GRPOConfig(**{**grpo.trl_kwargs(), "bf16": False, "use_cpu": True})
    assert args.epsilon == 0.3


@pytest.mark.parametrize(("overrides", "keys", "fragment"), [
    (["epsilon=abc"], ("epsilon",), "wrong type; allowed: a number"),
    (["optim=adamw_torh"], ("optim",), "did you mean 'adamw_torch'?"),
    (["lr_scheduler_type=cosin"], ("lr_scheduler_type",), "did you mean 'cosine'?"),
    (["num_generations=null"], ("num_generations",), "wrong type; allowed: an integer"),  # TRL takes null; we don't
    (["loss_typ=dapo"], ("loss_typ",), "did you mean 'loss_type'?"),
    (["mode=sft", "loss_type=dapo"], ("loss_type",), "one of ['nll'"),  # SFTConfig's choices
    (["reward_weights=[1.0]"], ("reward_weights",), "set by srl-swe"),
    (["warmup_ratio=0.1", "warmup_steps=5"], ("warmup_ratio", "warmup_steps"), "give the warmup once"),
])
def test_bad_trl_values_are_refused_before_any_model(overrides, keys, fragment):
    err = _error(overrides)
    assert err.keys == keys and fragment in str(err), str(err)


def test_mode_dependent_defaults_stay_trls():
    """GRPOConfig and SFTConfig disagree on loss_type's default: null in the config, TRL's in each mode."""
    cfg = TrainConfig(model="m")
    assert cfg.loss_type is None and "loss_type" not in cfg.trl_kwargs()
    assert load_config(TINY, ["loss_type=grpo"]).trl_kwargs()["loss_type"] == "grpo"  # GRPOConfig: any string


def test_derived_keys_yield_to_the_trl_key_when_set():
    assert load_config(TINY, ["mode=sft"]).trl_kwargs()["max_length"] == 512 + 8
    assert load_config(TINY, ["mode=sft", "max_length=64"]).trl_kwargs()["max_length"] == 64
    assert load_config(TINY, ["eval_strategy=epoch"]).trl_kwargs()["eval_strategy"] == "epoch"
    assert load_config(TINY, ["warmup_ratio=0.1"]).trl_kwargs()["warmup_steps"] == 0.1


def test_dump_lists_srl_swe_keys_and_what_differs_from_trl(tmp_path: Path):
    cfg = load_config(TINY, ["epsilon=0.3", "optim=sgd", "include_for_metrics=[loss]"])
    text = cfg.dump_yaml(tmp_path / "config.yaml").read_text()
    assert "\nepsilon: 0.3\n" in text and "\noptim: sgd\n" in text and "adam_beta1" not in text
    assert all(f"\n{k}:" in text for k in TRL_DEFAULTS)
    assert load_config(tmp_path / "config.yaml") == cfg and cfg.include_for_metrics == ("loss",)


# ------------------------------------------------------------------------------------------------- the cache
def test_cached_schema_is_read_without_a_child(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(trl_schema, "versions", lambda: {"trl": "9.9", "transformers": "8.8"})
    path = tmp_path / "trl-schema" / f"trl-9.9_transformers-8.8_v{trl_schema.FORMAT}.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"format": 1, "trl": "9.9", "transformers": "8.8", "classes": {
        "GRPOConfig": {"beta": {"type": "float", "default": 0.04, "choices": None, "default_is_repr": False}},
        "SFTConfig": {}}}))
    monkeypatch.setenv("SRL_SWE_CACHE", str(tmp_path))

    def no_child(*a, **k):
        raise AssertionError("the cached schema should have been read")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert trl_schema.trl_fields()["GRPOConfig"]["beta"].default == 0.04


@pytest.mark.slow
def test_schema_is_extracted_once_and_written_atomically(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SRL_SWE_CACHE", str(tmp_path))
    fresh = trl_schema.load_schema()  # a child Python imports TRL
    files = list((tmp_path / "trl-schema").iterdir())
    assert [f.name for f in files] == [f"trl-{fresh['trl']}_transformers-{fresh['transformers']}_v1.json"]
    assert json.loads(files[0].read_text()) == fresh and set(fresh["classes"]) == {"GRPOConfig", "SFTConfig"}


def test_without_trl_the_error_says_what_to_install(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(trl_schema.TrlSchemaError, match=r"trl is not installed; pip install 'srl-swe\[train\]'"):
        trl_schema.load_schema()


def test_a_failing_child_is_reported(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SRL_SWE_CACHE", str(tmp_path))
    monkeypatch.setattr(trl_schema.sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(trl_schema.TrlSchemaError, match="no-python"):
        trl_schema.load_schema()
    assert not (tmp_path / "trl-schema").exists() or not list((tmp_path / "trl-schema").iterdir())
