"""The multi-GPU launch configs (configs/accelerate/*.yaml) and scripts/gpu_smoke.sh, checked on a CPU: each config is
read by accelerate's own loader and turned by its own launcher code into the environment and torchrun arguments the
training processes get (one node and two), the plugins the Trainer builds from that environment carry the
settings, and the smoke script validates every paper config with its reduced batch exactly as `srl-swe train`
would before a model loads. DeepSpeed itself is not installed (it is not a dependency); nothing here needs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("accelerate")

from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

from srl_swe.train.config import load_config

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "configs" / "accelerate"
ENGINES = {"ddp": "MULTI_GPU", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED", "fsdp2": "FSDP"}
PAPER = sorted(p.stem for p in (REPO / "configs").glob("*qwen2.5*.yaml"))
# The README's multi-GPU commands: per-device micro-batch and gradient accumulation on 8 and on 16 GPUs
# (ZeRO-3 / FSDP2), chosen with the memory table so that the micro-batch fits next to vLLM's 30 %.
DOCUMENTED = {
    "srl-math-qwen2.5-7b": (4, 16, 8),
    "srl-swe-qwen2.5-coder-7b": (2, 32, 16),
    "rlvr-math-qwen2.5-7b": (4, 4, 2),
    "srl-then-rlvr-math-qwen2.5-7b": (4, 4, 2),
    "rlvr-swe-qwen2.5-coder-7b": (2, 8, 4),
    "sft-swe-qwen2.5-coder-7b": (4, 4, 2),
}


def launch(engine: str, *extra: str):
    """accelerate launch's parsing and validation of ``--config_file configs/accelerate/ENGINE.yaml EXTRA -m srl_swe.cli
    train --config ...``, then the environment and torchrun arguments its launcher would start the processes with."""
    argv = ["--config_file", str(ACCELERATE / f"{engine}.yaml"), *extra, "-m", "srl_swe.cli", "train", "--config",
            "configs/srl-swe-qwen2.5-coder-7b.yaml"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ""
        cmd, env = prepare_deepspeed_cmd_env(args)
        assert cmd is None, "the standard multi-node launcher is torchrun on each node, not DeepSpeed's pdsh"
    else:
        env = prepare_multi_gpu_env(args)
    return args, env


def test_every_engine_has_a_config_that_accelerate_reads():
    assert sorted(p.stem for p in ACCELERATE.glob("*.yaml")) == sorted(ENGINES)
    for engine, kind in ENGINES.items():
        cfg = load_config_from_file(str(ACCELERATE / f"{engine}.yaml"))
        assert (cfg.distributed_type, cfg.num_processes, cfg.num_machines) == (kind, 8, 1)
        assert cfg.mixed_precision == "bf16" and cfg.use_cpu is False
    z2, z3 = (load_config_from_file(str(ACCELERATE / f"deepspeed_zero{s}.yaml")).deepspeed_config for s in (2, 3))
    assert (z2["zero_stage"], z3["zero_stage"]) == (2, 3)
    assert z3["zero3_init_flag"] and z3["zero3_save_16bit_model"] and not z2["zero3_init_flag"]
    assert "gradient_accumulation_steps" not in z2 and "gradient_accumulation_steps" not in z3  # the Trainer's
    fsdp = load_config_from_file(str(ACCELERATE / "fsdp2.yaml")).fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_one_node_launch_runs_the_cli_module_on_8_processes(engine: str):
    args, env = launch(engine, "--main_process_port", "0")
    assert args.nproc_per_node == "8" and args.module is True
    assert (args.training_script, args.training_script_args[:2]) == ("srl_swe.cli", ["train", "--config"])
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    if engine == "fsdp2":
        want = {
            "ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT",
            "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP", "FSDP_CPU_RAM_EFFICIENT_LOADING": "true",
            "FSDP_SYNC_MODULE_STATES": "true", "FSDP_RESHARD_AFTER_FORWARD": "true",
            "FSDP_ACTIVATION_CHECKPOINTING": "false"}
        assert {k: env[k] for k in want} == want
    elif engine.startswith("deepspeed"):
        stage = engine[-1]
        assert env["ACCELERATE_USE_DEEPSPEED"] == "true" and env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == stage
        assert env["ACCELERATE_DEEPSPEED_ZERO3_INIT"] == ("true" if stage == "3" else "false")
        assert "ACCELERATE_GRADIENT_ACCUMULATION_STEPS" not in env
    else:
        assert "ACCELERATE_USE_FSDP" not in env and "ACCELERATE_USE_DEEPSPEED" not in env


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_two_node_launch_gives_torchrun_the_node_layout(engine: str):
    # what the README tells the second node of two to run (rank 0 alone checks that the port is free)
    args, _ = launch(engine, "--num_machines", "2", "--num_processes", "16", "--machine_rank", "1",
                     "--main_process_ip", "10.0.0.1", "--main_process_port", "29500")
    assert (args.nnodes, args.node_rank, args.nproc_per_node) == ("2", 1, "8")
    assert (args.rdzv_backend, args.rdzv_endpoint) == ("static", "10.0.0.1:29500")


def test_the_trainer_builds_the_configured_plugins_from_the_launch_environment(monkeypatch: pytest.MonkeyPatch):
    """The processes' side: the plugins accelerate's Accelerator builds (for the Trainer) from the variables the
    launcher set."""
    _, env = launch("fsdp2", "--main_process_port", "0")
    for key in [k for k in env if k.startswith(("FSDP_", "ACCELERATE_"))]:
        monkeypatch.setenv(key, env[key])
    fsdp = FullyShardedDataParallelPlugin()
    assert fsdp.fsdp_version == 2 and fsdp.reshard_after_forward is True and fsdp.cpu_ram_efficient_loading is True
    assert str(fsdp.state_dict_type) == "StateDictType.FULL_STATE_DICT" and fsdp.activation_checkpointing is False
    # one unit per class of the model's _no_split_modules (set_auto_wrap_policy, once the model is known)
    assert fsdp.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert fsdp.transformer_cls_names_to_wrap is None
    for stage in (2, 3):
        _, env = launch(f"deepspeed_zero{stage}", "--main_process_port", "0")
        for key in [k for k in env if k.startswith("ACCELERATE_")]:
            monkeypatch.setenv(key, env[key])
        ds = DeepSpeedPlugin()
        zero = ds.deepspeed_config["zero_optimization"]
        assert zero["stage"] == stage and zero["offload_optimizer"]["device"] == "none"
        assert zero["stage3_gather_16bit_weights_on_model_save"] is (stage == 3)
        assert ds.zero3_init_flag is (stage == 3)
        # left for the Trainer to fill from srl-swe's config
        assert ds.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"
        assert ds.deepspeed_config["gradient_accumulation_steps"] == "auto"


@pytest.mark.parametrize("name", PAPER)
def test_documented_multi_gpu_batches_keep_the_paper_batch(name: str):
    one = load_config(REPO / "configs" / f"{name}.yaml")
    per_device, ga8, ga16 = DOCUMENTED[name]
    paper = one.per_device_train_batch_size * one.gradient_accumulation_steps
    assert per_device * ga8 * 8 == per_device * ga16 * 16 == paper
    for ga in (ga8, ga16):
        cfg = load_config(REPO / "configs" / f"{name}.yaml",
                          [f"per_device_train_batch_size={per_device}", f"gradient_accumulation_steps={ga}"])
        if cfg.is_grpo:  # TRL's rule on all processes: the generation batch holds whole groups
            procs = 8 if ga == ga8 else 16
            gen = cfg.generation_batch_size or per_device * ga * procs
            assert gen % cfg.num_generations == 0 and gen % (per_device * procs) == 0


def smoke(*names: str, **env: str) -> subprocess.CompletedProcess:
    """``scripts/gpu_smoke.sh --dry-run NAMES`` with these SMOKE_* settings only (not the caller's)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    return subprocess.run(["bash", str(REPO / "scripts" / "gpu_smoke.sh"), "--dry-run", *names], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**base, **env})


def test_gpu_smoke_dry_run_validates_every_paper_config():
    proc = smoke(SMOKE_GPUS="8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    resolved = {Path(r["config"]).stem: r for r in (json.loads(x) for x in lines if x.startswith("{"))}
    assert sorted(resolved) == PAPER
    commands = [x for x in lines if x.startswith("command: ")]
    assert len(commands) == len(PAPER)
    assert all("-m accelerate.commands.launch --config_file configs/accelerate/deepspeed_zero3.yaml --num_processes 8"
               in c and "-m srl_swe.cli train --config configs/" in c for c in commands)
    for name, r in resolved.items():
        assert r["max_steps"] == 1 and r["save_strategy"] == "no" and r["output_dir"] == f"runs/gpu-smoke/{name}"
        if r["mode"] == "sft":
            assert r["use_vllm"] is False
            continue
        # one group of 8 rollouts per process per optimizer step, through vLLM colocated with training
        assert r["use_vllm"] is True and r["vllm_mode"] == "colocate" and r["max_completion_length"] == 512
        assert r["per_device_train_batch_size"] * r["gradient_accumulation_steps"] == r["num_generations"] == 8
        assert r["per_device_train_batch_size"] == DOCUMENTED[name][0]
    assert resolved["srl-then-rlvr-math-qwen2.5-7b"]["init_checkpoint"] == "runs/gpu-smoke/srl-math-qwen2.5-7b/final"


def test_gpu_smoke_on_one_gpu_runs_the_cli_directly_and_fails_loudly_on_a_bad_override():
    proc = smoke("srl-swe-qwen2.5-coder-7b", SMOKE_GPUS="1", SMOKE_ENGINE="fsdp2", SMOKE_COMPLETION="config")
    assert proc.returncode == 0, proc.stderr
    (command,) = [x for x in proc.stdout.splitlines() if x.startswith("command: ")]
    assert "accelerate" not in command and " -m srl_swe.cli train " in command
    assert json.loads(proc.stdout.splitlines()[0])["max_completion_length"] == 2048  # the config's own

    bad = smoke("srl-swe-qwen2.5-coder-7b", "sft-swe-qwen2.5-coder-7b", SMOKE_OVERRIDES="lerning_rate=1e-6")
    assert bad.returncode == 1
    assert bad.stderr.count("did you mean 'learning_rate'?") == 2
    assert "srl-swe-qwen2.5-coder-7b         FAIL (config)" in bad.stdout
    assert smoke("no-such-config").returncode == 2
