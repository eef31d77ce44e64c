"""Per-token log-probabilities of the completion tokens only, for GRPO's loss on devices without Triton.

TRL 1.x scores completions through a fused LM head (``trl.trainer.utils.add_fused_lm_head``). On CUDA/XPU it
projects only the positions with a label; everywhere else (CPU) it projects *every* position of prompt +
completion through the vocabulary, in 4096 x 32768 tiles, and keeps what the backward needs. For a GRPO step on
SWE prompts (about 1k prompt tokens, under 100 completion tokens, SmolLM2's 49k vocabulary) that is ten times the
work the loss needs and about 3 GB more peak memory (``benchmarks/results/grpo_step.md``).

:func:`completion_logps` is the computation TRL did before the fused head: the model's forward with
``logits_to_keep`` (the completion's positions, plus the one before it), the logits divided by the sampling
temperature, ``selective_log_softmax`` on the completion ids, and the entropy from those logits. It is used only
where the fused head would score every position and only for plain text causal LMs whose logits are not scaled or
soft-capped (what the fused head would apply); anything else goes to TRL's own path.
"""

from __future__ import annotations

from typing import Any

import torch

#: The arguments of TRL's ``_get_per_token_logps_and_entropies`` that carry images or MoE routing: when any is
#: given, TRL's path handles it.
MULTIMODAL = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles",
              "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids")


def applies(model: Any, device: torch.device, kwargs: dict[str, Any]) -> bool:
    """Whether :func:`completion_logps` computes what TRL's fused head would, more cheaply."""
    from trl.kernels.chunked_logprob import _use_triton

    if _use_triton(device) or kwargs.get("compute_aux_loss") or any(kwargs.get(k) is not None for k in MULTIMODAL):
        return False
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    scaled = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")
    return text is not None and all(getattr(text, k, None) is None for k in scaled)


def completion_logps(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int,
                     temperature: float, batch_size: int | None = None, compute_entropy: bool = False,
                     entropy_grad: bool = False, autocast: Any = None,
                     ) -> tuple[torch.Tensor, torch.Tensor | None, None]:
    """(log-probs, entropies or None, None) of the last ``logits_to_keep`` tokens of each row, as TRL returns.
    The entropy carries a gradient only with ``entropy_grad`` (TRL's entropy bonus); otherwise it is logged and
    used as a mask, and keeping its graph would cost memory for nothing."""
    from contextlib import nullcontext

    from trl.trainer.utils import entropy_from_logits, selective_log_softmax

    batch_size = batch_size or input_ids.size(0)
    all_logps, all_entropies = [], []
    for start in range(0, input_ids.size(0), batch_size):
        ids, mask = input_ids[start:start + batch_size], attention_mask[start:start + batch_size]
        with autocast() if autocast else nullcontext():
            # one position more: the logits at position t predict token t + 1
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=logits_to_keep + 1).logits
        logits = logits[:, :-1, :] / temperature
        all_logps.append(selective_log_softmax(logits, ids[:, -logits_to_keep:]))
        if compute_entropy:
            with torch.enable_grad() if entropy_grad else torch.no_grad():
                all_entropies.append(entropy_from_logits(logits))
    entropies = torch.cat(all_entropies, dim=0) if compute_entropy else None
    return torch.cat(all_logps, dim=0), entropies, None
