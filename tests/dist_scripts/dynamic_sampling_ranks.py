"""Run under ``torch.distributed.run --nproc_per_node 2``: dynamic sampling with two CPU (gloo) processes.

    python -m torch.distributed.run --nproc_per_node 2 dynamic_sampling_ranks.py TINY_MODEL OUT_DIR

Two layouts of the same global batch: ``aligned`` (each process holds one whole group of G = 4) and
``spanning`` (2 rows per process, so the one group spans both). Each process writes what it got back from
``_generate_and_score_completions`` to ``OUT_DIR/<layout>-<rank>.json``; then one real optimizer step runs
under DDP and ``OUT_DIR/train-<rank>.json`` records it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import datasets
import torch
import trl

from srl_swe.models.loading import load_model_and_tokenizer
from srl_swe.rewards import completion_text
from srl_swe.train.grpo import SRLGRPOTrainer

G = 4


def flat_or_varied(prompts, completions, **_):
    out = []
    for p, c in zip(prompts, completions, strict=True):
        text = p[-1]["content"] if isinstance(p, list) else p
        out.append(0.5 if "FLAT" in text else (sum(map(ord, completion_text(c))) % 101) / 100)
    return out


def make_trainer(tiny: str, out: Path, per_device: int, steps: int = 1) -> tuple[SRLGRPOTrainer, list[dict]]:
    model, tok = load_model_and_tokenizer(tiny, dtype="float32")
    rows = [{"prompt": [{"role": "user", "content": f"FLAT question {i}"}]} for i in range(3)]
    rows += [{"prompt": [{"role": "user", "content": f"open question {i}"}]} for i in range(3)]
    args = trl.GRPOConfig(output_dir=str(out / "run"), per_device_train_batch_size=per_device, num_generations=G,
                          max_completion_length=6, max_steps=steps, learning_rate=1e-3, report_to="none",
                          use_cpu=True, bf16=False, logging_steps=1, seed=0, beta=0.0, temperature=1.0,
                          save_strategy="no")
    trainer = SRLGRPOTrainer(model=model, args=args, reward_funcs=[flat_or_varied],
                             train_dataset=datasets.Dataset.from_list(rows), processing_class=tok,
                             dynamic_sampling_eps=0.0, dynamic_sampling_max_tries=8)
    return trainer, rows


def record(trainer: SRLGRPOTrainer, out: dict) -> dict:
    tok = trainer.processing_class
    m = trainer._metrics["train"]
    return {
        "rows": int(out["completion_ids"].shape[0]),
        "prompts": tok.batch_decode(out["prompt_ids"], skip_special_tokens=True),
        "advantages": out["advantages"].tolist(),
        "num_items_in_batch": int(out["num_items_in_batch"]),
        "local_tokens": int(out["completion_mask"].sum()),
        "filtered_fraction": m["dynamic_sampling/filtered_fraction"][-1],
        "unfilled_groups": m["dynamic_sampling/unfilled_groups"][-1],
    }


def main() -> None:
    tiny, out_dir = sys.argv[1], Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    layouts = {
        # global batch: [FLAT 0 x4 | open 0 x4]; process r holds group r
        "aligned": (G, ["FLAT question 0", "open question 0"][rank]),
        # global batch: [FLAT 0 x4], two rows on each process
        "spanning": (G // 2, "FLAT question 0"),
    }
    for name, (per_device, prompt) in layouts.items():
        trainer, _ = make_trainer(tiny, out_dir / name, per_device)
        trainer.model.train()
        torch.manual_seed(rank)
        batch = [{"prompt": [{"role": "user", "content": prompt}]} for _ in range(per_device)]
        res = record(trainer, trainer._generate_and_score_completions(batch))
        (out_dir / f"{name}-{rank}.json").write_text(json.dumps(res))
    trainer, _ = make_trainer(tiny, out_dir / "train", G // 2, steps=1)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    changed = any(not torch.equal(a, b.detach()) for a, b in zip(before, trainer.model.parameters(), strict=True))
    logged = [h for h in trainer.state.log_history if "dynamic_sampling/filtered_fraction" in h]
    weights = torch.cat([p.detach().flatten()[:64] for p in trainer.model.parameters()]).tolist()
    (out_dir / f"train-{rank}.json").write_text(json.dumps({
        "global_step": trainer.state.global_step, "changed": changed, "logged": logged, "weights": weights,
        "world_size": trainer.accelerator.num_processes}))
    # Both ranks' results are written: leave without any teardown. A gloo group left to the interpreter's teardown
    # once aborted a rank at exit ("terminate called without an active exception"), and with
    # destroy_process_group a rank once hung after its work until the test's timeout (CI sim, 2026-12-06).
    torch.distributed.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
