"""`accelerate launch` of `srl-swe train` with two CPU (gloo) processes and the shipped configs/accelerate/ files,
on a real tiny Qwen2 model, compared with one process trained on the same global batch.

* SFT under DDP gives the weights of one process with twice the per-device batch: the rows of a global batch are
  split over the processes, the loss is normalised by the token count of the whole batch (transformers'
  ``average_tokens_across_devices``), the gradients are averaged and clipped globally. Only the order of float
  sums differs, so the weights agree to ~1e-6 of the update they made; the test allows 1e-4 of it. Normalising
  per process instead (average_tokens_across_devices=false) already moves them by ~3e-3 of the update.
* GRPO cannot give one process's weights: each process samples its rollouts from its own random stream, so two
  processes with 2 rollouts each draw other tokens than one process with 4. What does hold, and is checked: every
  step trains on the same prompts (the prompt tokens of the global batch are equal) and the run goes end to end.
* FSDP does not run on a CPU with the pinned accelerate (1.16): its AcceleratorState turns FSDP on only for
  accelerator devices (MULTI_GPU, MULTI_XPU, ...), so with fsdp2.yaml and ``cpu=True`` it sets MULTI_CPU and wraps
  the model in DistributedDataParallel, without an error (torch's own fully_shard runs on gloo; accelerate is the
  gate). The test pins that, so the day accelerate shards on CPU it fails and can become a weight check.
* DeepSpeed (ZeRO-3) runs on a CPU when it is installed (not a dependency; its CPU accelerator JIT-builds a shared-
  memory op with the C++ compiler on first use, ~2.5 min on 2 cores): checked like DDP, skipped without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("accelerate")

from srl_swe.models.tiny import make_tiny_qwen2
from srl_swe.train.config import load_config
from srl_swe.train.run import train

REPO = Path(__file__).resolve().parents[1]
TINY_CFG = REPO / "configs" / "cpu-tiny-test.yaml"
# 2 optimizer steps of plain SGD (Adam's m/sqrt(v) would amplify float noise on near-zero gradients), no
# held-out split, no checkpoints: the final model is what is compared.
COMMON = ["eval_fraction=0", "eval_steps=null", "max_steps=2", "save_strategy='no'", "report_to=[]"]
SFT = ["mode=sft", "optim=sgd", "learning_rate=0.05", *COMMON]
# GRPO on the bundled math steps; a random model never writes <think>, so score outputs as all action
GRPO = ["mode=srl", "require_think=false", *COMMON]
# float32 end to end, so the processes compute what one process does (accelerate's configs say bf16)
LAUNCH = ["--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "0"]
ENV = {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # two gloo processes on the CPU, also on a GPU box


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny"))


def accelerate(engine: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "configs" / "accelerate" / f"{engine}.yaml"), *LAUNCH, *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **ENV})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def two_processes(engine: str, tiny: Path, out: Path, overrides: list[str], timeout: int = 300) -> Path:
    accelerate(engine, "-m", "srl_swe.cli", "train", "--config", str(TINY_CFG), "--no-plot", f"model={tiny}",
               f"output_dir={out}", "per_device_train_batch_size=2", *overrides, timeout=timeout)
    return out


def one_process(tiny: Path, out: Path, overrides: list[str]) -> Path:
    train(load_config(TINY_CFG, [f"model={tiny}", f"output_dir={out}", "per_device_train_batch_size=4", *overrides]))
    return out


def weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "final" / "model.safetensors"))


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_training(one: Path, two: Path, start: Path) -> None:
    w1, w2, w0 = weights(one), weights(two), weights(start)
    # DeepSpeed also writes the tied lm_head.weight (equal to the embeddings); one process saves it tied
    assert set(w1) <= set(w2)
    update = max((w1[k] - w0[k]).abs().max().item() for k in w1)
    gap = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert update > 1e-3, "the weights must move measurably for the comparison to mean anything"
    assert gap <= 1e-4 * update, f"two processes differ from one by {gap:.2e}, the update is {update:.2e}"
    l1, l2 = ([r["loss"] for r in metrics(run) if "loss" in r] for run in (one, two))
    assert len(l1) == len(l2) == 2 and all(abs(a - b) <= 1e-5 * abs(a) for a, b in zip(l1, l2, strict=True))


@pytest.fixture(scope="module")
def start(tiny: Path, tmp_path_factory) -> Path:
    """The tiny model as a run folder (final/), the reference the updates are measured from."""
    (run := tmp_path_factory.mktemp("start") / "final").mkdir()
    (run / "model.safetensors").symlink_to(tiny / "model.safetensors")
    return run.parent


@pytest.fixture(scope="module")
def sft_one(tiny: Path, tmp_path_factory) -> Path:
    return one_process(tiny, tmp_path_factory.mktemp("sft") / "one", SFT)


@pytest.mark.slow
def test_ddp_two_processes_train_the_weights_of_one_on_the_same_global_batch(tiny, start, sft_one, tmp_path):
    assert_same_training(sft_one, two_processes("ddp", tiny, tmp_path / "ddp", SFT), start)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                    reason="deepspeed is not installed (not a dependency); configs/accelerate/deepspeed_*.yaml are "
                           "checked by tests/test_multigpu_configs.py")
def test_deepspeed_zero3_two_processes_train_the_weights_of_one(tiny, start, sft_one, tmp_path):
    assert_same_training(sft_one, two_processes("deepspeed_zero3", tiny, tmp_path / "z3", SFT, timeout=600), start)


@pytest.mark.slow
def test_grpo_two_processes_train_on_the_global_batch_of_one(tiny: Path, start: Path, tmp_path: Path):
    one = one_process(tiny, tmp_path / "one", GRPO)
    two = two_processes("ddp", tiny, tmp_path / "two", GRPO)

    def prompt_tokens(run: Path) -> list[float]:
        # TRL's num_tokens counts prompt and completion tokens of the gathered batch, cumulatively; a step's
        # completions are 4 (2 groups of num_generations=2) of the logged mean length
        steps = [r for r in metrics(run) if "completions/mean_length" in r]
        seen = [0] + [r["num_tokens"] for r in steps]
        return [seen[i + 1] - seen[i] - 4 * r["completions/mean_length"] for i, r in enumerate(steps)]

    assert prompt_tokens(one) == prompt_tokens(two) and len(prompt_tokens(two)) == 2
    logs = metrics(two)
    assert any(r.get("reward_std", 0) > 0 for r in logs), "no group had varied rewards: nothing was learned from"
    moved = max((a - b).abs().max().item() for a, b in zip(weights(two).values(), weights(start).values(), strict=True))
    assert moved > 0


def test_fsdp_config_on_cpu_runs_as_ddp_in_this_accelerate():
    proc = accelerate("fsdp2", str(REPO / "tests" / "dist_scripts" / "accelerate_engine.py"), timeout=120)
    got = [json.loads(line.removeprefix("ENGINE ")) for line in proc.stdout.splitlines() if line.startswith("ENGINE ")]
    assert sorted(r["rank"] for r in got) == [0, 1]
    for r in got:
        assert r["asked_for_fsdp"] and r["processes"] == 2 and r["backend"] == "gloo"
        assert (r["distributed_type"], r["wrapper"]) == ("DistributedType.MULTI_CPU", "DistributedDataParallel")
