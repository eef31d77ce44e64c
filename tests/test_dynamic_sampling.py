"""Dynamic sampling on a real tiny Qwen2 model: zero-variance groups are dropped and the batch refilled, and
a zero-variance group contributes no gradient and does not dilute the loss normalisation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

from srl_swe.models.loading import load_model_and_tokenizer  # noqa: E402
from srl_swe.models.tiny import make_tiny_qwen2  # noqa: E402
from srl_swe.rewards import completion_text  # noqa: E402
from srl_swe.train.grpo import SRLGRPOTrainer, group_std, merge_groups  # noqa: E402

G = 4


def flat_or_varied(prompts, completions, **_):
    """0.5 for every completion of a FLAT prompt (zero variance); a hash of the text otherwise."""
    out = []
    for p, c in zip(prompts, completions, strict=True):
        text = p[-1]["content"] if isinstance(p, list) else p
        out.append(0.5 if "FLAT" in text else (sum(map(ord, completion_text(c))) % 101) / 100)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny"))


def make_trainer(tiny: Path, tmp: Path, eps: float | None, cls=SRLGRPOTrainer):
    model, tok = load_model_and_tokenizer(str(tiny), dtype="float32")
    rows = [{"prompt": [{"role": "user", "content": f"FLAT question {i}"}]} for i in range(3)]
    rows += [{"prompt": [{"role": "user", "content": f"open question {i}"}]} for i in range(3)]
    args = trl.GRPOConfig(output_dir=str(tmp), per_device_train_batch_size=2 * G, num_generations=G,
                          max_completion_length=6, max_steps=1, learning_rate=1e-3, report_to="none",
                          use_cpu=True, bf16=False, logging_steps=1, seed=0, beta=0.0, temperature=1.0)
    extra = {} if cls is trl.GRPOTrainer else {"dynamic_sampling_eps": eps, "dynamic_sampling_max_tries": 8}
    trainer = cls(model=model, args=args, reward_funcs=[flat_or_varied], train_dataset=datasets.Dataset.from_list(rows),
                  processing_class=tok, **extra)
    trainer.model.train()
    return trainer, rows


def batch_of(rows, names):
    pick = {r["prompt"][0]["content"]: r for r in rows}
    return [dict(pick[n]) for n in names for _ in range(G)]


def test_group_std():
    r = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.0, 1.0, 0.0, 1.0])
    assert group_std(r, G).tolist() == [0.0, 0.5]


def test_zero_variance_groups_are_replaced(tiny: Path, tmp_path: Path):
    trainer, rows = make_trainer(tiny, tmp_path, eps=0.0)
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions(batch_of(rows, ["FLAT question 0", "open question 0"]))
    adv = out["advantages"].view(-1, G)
    assert adv.shape == (2, G)
    assert (adv.abs().sum(dim=1) > 0).all(), "every group in the batch must be informative"
    assert int(out["num_items_in_batch"]) == int(out["completion_mask"].sum())
    assert out["prompt_ids"].shape[0] == out["completion_ids"].shape[0] == 2 * G
    filtered = trainer._metrics["train"]["dynamic_sampling/filtered_fraction"]
    assert filtered and filtered[-1] > 0
    assert trainer._metrics["train"]["dynamic_sampling/unfilled_groups"][-1] == 0


def _grads(trainer, batch) -> torch.Tensor:
    trainer.model.zero_grad()
    trainer.current_gradient_accumulation_steps = 1
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])


def test_zero_variance_group_gives_no_gradient_and_no_dilution(tiny: Path, tmp_path: Path):
    trainer, rows = make_trainer(tiny, tmp_path, eps=None)  # plain TRL batch assembly
    torch.manual_seed(1)
    mixed = trainer._generate_and_score_completions(batch_of(rows, ["FLAT question 1", "open question 1"]))
    flat, varied = torch.arange(0, G), torch.arange(G, 2 * G)
    assert mixed["advantages"][flat].abs().max() == 0  # zero variance: zero advantage
    informative = merge_groups([(mixed, varied)], trainer.processing_class.pad_token_id)
    g_mixed, g_info = _grads(trainer, mixed), _grads(trainer, informative)
    assert g_info.abs().sum() > 0
    # The flat group adds no gradient direction; it only scales the step down by the extra tokens it counts.
    dilution = float(informative["num_items_in_batch"]) / float(mixed["num_items_in_batch"])
    assert dilution < 1.0
    torch.testing.assert_close(g_mixed, g_info * dilution, rtol=1e-4, atol=1e-7)


def test_training_step_logs_filtered_fraction(tiny: Path, tmp_path: Path):
    trainer, _ = make_trainer(tiny, tmp_path, eps=0.0)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "dynamic_sampling/filtered_fraction" in h]
    assert logged and 0.0 <= logged[0]["dynamic_sampling/filtered_fraction"] <= 1.0
    assert trainer.state.global_step == 1


def test_two_processes_keep_informative_groups_in_trl_layout(tiny: Path, tmp_path: Path):
    """torchrun, 2 CPU (gloo) processes: the keep/drop decision is global, each process gets its slice of the
    global batch (also when a group spans both), the token count is global, and one DDP step keeps the
    processes' weights equal."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = Path(__file__).parent / "dist_scripts" / "dynamic_sampling_ranks.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(script), str(tiny), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240,  # about 15 s; a hang fails early
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}

    aligned = [got["aligned-0"], got["aligned-1"]]
    for r in aligned:
        assert r["rows"] == G and len(set(r["prompts"])) == 1 and "FLAT" not in r["prompts"][0]
        assert sum(abs(a) for a in r["advantages"]) > 0, "every kept group is informative"
        assert r["filtered_fraction"] > 0 and r["unfilled_groups"] == 0
        assert r["num_items_in_batch"] == sum(x["local_tokens"] for x in aligned)
    assert aligned[0]["advantages"] != aligned[1]["advantages"]

    spanning = [got["spanning-0"], got["spanning-1"]]
    assert [r["rows"] for r in spanning] == [G // 2, G // 2]
    assert spanning[0]["prompts"][0] == spanning[1]["prompts"][0] and "FLAT" not in spanning[0]["prompts"][0]
    group_adv = spanning[0]["advantages"] + spanning[1]["advantages"]
    assert abs(sum(group_adv)) < 1e-4 and sum(abs(a) for a in group_adv) > 0  # one group, normalised across ranks
    assert spanning[0]["num_items_in_batch"] == sum(r["local_tokens"] for r in spanning)

    t0, t1 = got["train-0"], got["train-1"]
    assert t0["world_size"] == 2 and t0["global_step"] == t1["global_step"] == 1 and t0["changed"]
    assert t0["weights"] == t1["weights"]
    assert t0["logged"] and t0["logged"][0]["dynamic_sampling/filtered_fraction"] > 0


def _train_two_steps(tiny: Path, tmp: Path, skip: bool):
    """Two GRPO steps of one group each: the first with varied rewards, the second all equal (zero advantages).
    Weight decay and the first step's momentum make the second step move the weights only if every weight has
    a (zero) gradient, as the real backward pass gives."""
    model, tok = load_model_and_tokenizer(str(tiny), dtype="float32")
    calls = []

    def first_varied_then_flat(prompts, completions, **_):
        calls.append(len(completions))
        if len(calls) > 1:
            return [0.5] * len(completions)
        return [(sum(map(ord, completion_text(c))) % 101) / 100 for c in completions]

    args = trl.GRPOConfig(output_dir=str(tmp), per_device_train_batch_size=G, num_generations=G,
                          max_completion_length=6, max_steps=2, learning_rate=1e-3, weight_decay=0.1,
                          report_to="none", use_cpu=True, bf16=False, logging_steps=1, seed=0, beta=0.0,
                          temperature=1.0, save_strategy="no")
    rows = [{"prompt": [{"role": "user", "content": f"question {i}"}]} for i in range(4)]
    trainer = SRLGRPOTrainer(model=model, args=args, reward_funcs=[first_varied_then_flat],
                             train_dataset=datasets.Dataset.from_list(rows), processing_class=tok,
                             dynamic_sampling_eps=None, skip_zero_advantage=skip)
    trainer.train()
    skipped = [h["zero_advantage/skipped_fraction"] for h in trainer.state.log_history
               if "zero_advantage/skipped_fraction" in h]
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, skipped


def test_a_zero_advantage_batch_skips_its_passes_and_steps_the_same(tiny: Path, tmp_path: Path):
    start = load_model_and_tokenizer(str(tiny), dtype="float32")[0].state_dict()
    skipped_w, skipped = _train_two_steps(tiny, tmp_path / "skip", skip=True)
    full_w, not_skipped = _train_two_steps(tiny, tmp_path / "full", skip=False)
    assert skipped == [0.0, 1.0] and not_skipped == [0.0, 0.0]  # only the flat step, and only when asked
    assert all(torch.equal(skipped_w[k], full_w[k]) for k in full_w)  # bit for bit the weights of the full passes
    assert any(not torch.equal(skipped_w[k], start[k]) for k in start)  # and the steps did move them
