"""TRL's GRPOTrainer with the SRL paper's dynamic sampling.

A prompt group whose rewards have (population) standard deviation ≤ ``eps`` gives every completion a zero
advantage: it moves no weight, but under token-normalised losses (TRL's default ``dapo``) its tokens still
count in the normaliser and shrink the step of every other group. Dynamic sampling (DAPO, and SRL §3)
drops such groups and generates for further prompts until the batch holds only informative groups, within
``max_tries`` refills; a batch that cannot be filled is topped up with dropped groups (counted in the logs).

Only the batch assembly changes: generation, scoring and the loss are TRL's own. (Two more changes, of cost
only: on CPU the completion log-probs skip the prompt positions, see :mod:`srl_swe.train.logps`; and a
micro-batch whose advantages are all 0, which moves no weight, skips its forward and backward passes.) Groups
from different generation rounds are merged by re-padding (prompts on the left, completions on the right), and
``num_items_in_batch`` is recomputed over the merged batch. Advantages stay per group, which requires
``scale_rewards="group"`` (or ``"none"``).

Several processes (``torchrun``/``accelerate launch``): TRL gathers the rewards of all processes and groups
them globally (a group may span processes), so every process makes the same keep/drop decision. Each round's
output is gathered (padded across processes), the kept groups are merged into the global batch, and each
process takes its own slice of it, exactly where TRL would have put its rows; refill prompts are drawn from
one seeded order on every process, each taking its share.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from trl import GRPOTrainer

# Per-sample tensors of the generation output, by how they are padded.
_LEFT_PADDED = ("prompt_ids", "prompt_mask")
_RIGHT_PADDED = ("completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps",
                 "sampling_per_token_logps", "tool_mask")
_PER_SAMPLE = ("advantages",)


def group_std(rewards: torch.Tensor, group: int) -> torch.Tensor:
    """Population standard deviation of each consecutive group of ``group`` rewards (NaN-aware)."""
    grouped = rewards.view(-1, group)
    mean = torch.nanmean(grouped, dim=1, keepdim=True)
    return torch.sqrt(torch.nanmean((grouped - mean) ** 2, dim=1))


def _pad_cat(tensors: list[torch.Tensor], value: float, left: bool) -> torch.Tensor:
    width = max(t.size(1) for t in tensors)
    out = []
    for t in tensors:
        pad = width - t.size(1)
        if pad:
            filler = torch.full((t.size(0), pad), value, dtype=t.dtype, device=t.device)
            t = torch.cat([filler, t] if left else [t, filler], dim=1)
        out.append(t)
    return torch.cat(out, dim=0)


def merge_groups(parts: list[tuple[dict[str, Any], torch.Tensor]], pad_token_id: int) -> dict[str, Any]:
    """Concatenate the selected rows of several generation outputs into one batch."""
    outputs = [o for o, _ in parts]
    keys = set(outputs[0])
    known = {*_LEFT_PADDED, *_RIGHT_PADDED, *_PER_SAMPLE, "num_items_in_batch", "importance_sampling_ratio"}
    unknown = keys - known
    if unknown:
        raise NotImplementedError(f"dynamic sampling cannot merge {sorted(unknown)} (multimodal inputs?); "
                                  "set dynamic_sampling: false")
    merged: dict[str, Any] = {}
    for key in keys - {"num_items_in_batch"}:
        rows = [o[key][idx] for o, idx in parts]
        if key in _LEFT_PADDED:
            merged[key] = _pad_cat(rows, pad_token_id if key == "prompt_ids" else 0, left=True)
        elif key in _RIGHT_PADDED or (key == "importance_sampling_ratio" and rows[0].dim() == 2):
            fill = pad_token_id if key == "completion_ids" else (1 if key == "tool_mask" else 0)
            merged[key] = _pad_cat(rows, fill, left=False)
        else:
            merged[key] = torch.cat(rows, dim=0)
    loss_mask = merged["completion_mask"] * merged["tool_mask"] if "tool_mask" in merged else merged["completion_mask"]
    merged["num_items_in_batch"] = loss_mask.sum()
    return merged


def local_slice(batch: dict[str, Any], rank: int, rows: int) -> dict[str, Any]:
    """Rows ``rank * rows ... (rank + 1) * rows`` of every per-sample tensor; ``num_items_in_batch`` stays global
    (TRL's convention: the token count of the whole generation batch over all processes)."""
    part = slice(rank * rows, (rank + 1) * rows)
    return {k: v if k == "num_items_in_batch" else v[part] for k, v in batch.items()}


class SRLGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` plus dynamic sampling (``dynamic_sampling_eps=None`` turns it off)."""

    #: TRL 1.x losses whose every token term is a multiple of its advantage: a zero advantage, a zero term
    ADVANTAGE_LINEAR_LOSSES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo", "cispo", "sapo")

    def __init__(self, *args: Any, dynamic_sampling_eps: float | None = 0.0, dynamic_sampling_max_tries: int = 4,
                 dynamic_sampling_seed: int = 0, skip_zero_advantage: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.skip_zero_advantage = skip_zero_advantage
        self.dynamic_sampling_eps = dynamic_sampling_eps
        self.dynamic_sampling_max_tries = dynamic_sampling_max_tries
        self._refill_rng = torch.Generator().manual_seed(dynamic_sampling_seed)
        self._refill_order: Iterator[int] = iter(())
        self._last_rewards: torch.Tensor | None = None
        if dynamic_sampling_eps is not None and self.scale_rewards not in ("group", "none"):
            raise ValueError(f"dynamic sampling needs per-group advantages (scale_rewards='group' or 'none'), "
                             f"got {self.scale_rewards!r}")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """TRL's loss, except for a micro-batch whose loss is 0 with a zero gradient whatever the weights: then
        no forward or backward pass is run, only a zero gradient is left (:func:`zero_loss`). Small models start
        with many such batches (every reward -1: a group with no well-formed output, which dynamic sampling could
        not replace), and the two passes are half of a GRPO step on CPU (benchmarks/results/grpo_step.md)."""
        if model.training:
            skip = self._zero_gradient(inputs)
            self._metrics["train"]["zero_advantage/skipped_fraction"].append(float(skip))
            if skip:
                return zero_loss(model)
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def _zero_gradient(self, inputs: dict[str, Any]) -> bool:
        """Every advantage of the micro-batch is 0 and nothing else enters the loss (no KL term, entropy bonus or
        router loss), under a loss linear in the advantages. One process only: under DDP, FSDP or DeepSpeed each
        process's backward joins collective operations that a skipped one would leave waiting."""
        return (self.skip_zero_advantage and self.accelerator.num_processes == 1 and self.beta == 0.0
                and not getattr(self, "_entropy_bonus_enabled", False) and not getattr(self, "aux_loss_enabled", False)
                and self.loss_type in self.ADVANTAGE_LINEAR_LOSSES and bool((inputs["advantages"] == 0).all()))

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **kwargs):
        from srl_swe.train.logps import applies, completion_logps

        if not applies(self.accelerator.unwrap_model(model), input_ids.device,
                       {**kwargs, "compute_aux_loss": compute_aux_loss}):
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **kwargs)
        entropy_grad = torch.is_grad_enabled() and bool(getattr(self, "_entropy_bonus_enabled", False))
        return completion_logps(model, input_ids, attention_mask, logits_to_keep, self.temperature,
                                batch_size=batch_size, compute_entropy=compute_entropy, entropy_grad=entropy_grad,
                                autocast=self.accelerator.autocast)

    # Keep the rewards of the latest scoring call: the groups are filtered on them. An environment's reward
    # (environment_factory with get_reward) is one of TRL's reward columns, weight 1, so it is filtered on too.
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        for env in self.environments or ():
            # TRL asks the environments for their rewards one by one; one that grades in the background
            # (srl_swe.train.exec_env.SWEToolEnv) starts every grading of the batch first, so they overlap.
            getattr(env, "_grade_later", lambda: None)()
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        self._last_rewards = (rewards_per_func * weights).nansum(dim=1).detach().cpu()
        return rewards_per_func

    def _refill_prompts(self, groups: int) -> list[dict[str, Any]]:
        """This process's share of ``groups`` further prompts, each repeated once per generation. Every process
        draws the same global list (one seeded order), so the shares are disjoint and together in TRL's layout."""
        rows = []
        for _ in range(groups):
            try:
                idx = next(self._refill_order)
            except StopIteration:
                perm = torch.randperm(len(self.train_dataset), generator=self._refill_rng).tolist()
                self._refill_order = iter(perm)
                idx = next(self._refill_order)
            row = self.train_dataset[int(idx)]
            rows.extend(dict(row) for _ in range(self.num_generations))
        share = len(rows) // self.accelerator.num_processes
        return rows[self.accelerator.process_index * share:(self.accelerator.process_index + 1) * share]

    def _gather_output(self, out: dict[str, Any]) -> dict[str, Any]:
        """The whole generation batch of every process, rows in TRL's order (process by process)."""
        acc, pad = self.accelerator, self.processing_class.pad_token_id
        full: dict[str, Any] = {}
        for key, value in out.items():
            if key == "num_items_in_batch":
                continue  # recomputed by merge_groups
            if not isinstance(value, torch.Tensor):
                raise NotImplementedError(f"dynamic sampling cannot gather {key!r} across processes; "
                                          "set dynamic_sampling: false")
            if value.dim() == 2:
                left = key in _LEFT_PADDED
                fill = pad if key in ("prompt_ids", "completion_ids") else (1 if key == "tool_mask" else 0)
                value = acc.pad_across_processes(value, dim=1, pad_index=fill, pad_first=left)
            full[key] = acc.gather(value)
        return full

    def _generate_and_score_completions(self, inputs):
        if self.dynamic_sampling_eps is None or not self.model.training:
            return super()._generate_and_score_completions(inputs)
        group, procs = self.num_generations, self.accelerator.num_processes
        needed = procs * len(inputs) // group  # groups in the global generation batch
        # a refill of k groups must split evenly over the processes (k * group rows)
        unit = procs // math.gcd(group, procs)
        kept: list[tuple[dict[str, Any], torch.Tensor]] = []
        spare: list[tuple[dict[str, Any], torch.Tensor]] = []
        seen = dropped = tries = 0
        batch = inputs
        while True:
            out = super()._generate_and_score_completions(batch)
            if procs > 1:
                out = self._gather_output(out)
            std = group_std(self._last_rewards, group)  # TRL gathers the rewards: global, same on every process
            seen += std.numel()
            for g, s in enumerate(std.tolist()):
                rows = torch.arange(g * group, (g + 1) * group)
                if s > self.dynamic_sampling_eps and len(kept) < needed:
                    kept.append((out, rows))
                else:
                    dropped += s <= self.dynamic_sampling_eps
                    spare.append((out, rows))
            if len(kept) >= needed or tries >= self.dynamic_sampling_max_tries:
                break
            tries += 1
            # Ask for twice the shortfall: a prompt that was uninformative once often is again.
            refill = min(2 * (needed - len(kept)), needed)
            batch = self._refill_prompts(-(-refill // unit) * unit)
        unfilled = needed - len(kept)
        kept.extend(spare[:unfilled])
        metrics = self._metrics["train"]
        metrics["dynamic_sampling/filtered_fraction"].append(dropped / max(seen, 1))
        metrics["dynamic_sampling/refills"].append(float(tries))
        metrics["dynamic_sampling/unfilled_groups"].append(float(max(unfilled, 0)))
        merged = merge_groups(kept, self.processing_class.pad_token_id)
        return local_slice(merged, self.accelerator.process_index, len(inputs)) if procs > 1 else merged


def zero_loss(model: Any) -> torch.Tensor:
    """A loss of 0 whose backward gives every trainable weight a zero gradient, as the skipped passes would have:
    the optimizer then steps as it would have (AdamW's momentum and weight decay act on a zero gradient, and do
    nothing on a weight without one)."""
    return torch.stack([p.reshape(-1)[0] for p in model.parameters() if p.requires_grad]).sum() * 0.0
