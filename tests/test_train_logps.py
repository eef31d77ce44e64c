"""Completion-only log-probs (srl_swe.train.logps) against TRL's fused LM head on a real tiny Qwen2: the same
log-probs, entropies and gradients on left-padded prompts with right-padded completions, and the trainer uses
it on CPU (and only where it applies)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from srl_swe.models.tiny import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny"))


def test_completion_logps_match_trls_fused_head(tiny: Path):
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from srl_swe.train.logps import applies, completion_logps

    torch.manual_seed(0)
    fused = AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32)
    ours = AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32)
    add_fused_lm_head(fused, temperature=0.7, outputs=("log_probs", "entropy"))
    vocab, keep = fused.config.vocab_size, 5
    ids = torch.randint(3, vocab, (3, 12))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # a left-padded prompt
    mask[1, -2:] = 0  # a completion that ended early (right padding)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-keep] = -100
    out = fused(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    ref_logps, ref_ent = out.log_probs[:, -keep:], out.entropy[:, -keep:]
    logps, ent, aux = completion_logps(ours, ids, mask, keep, 0.7, batch_size=2, compute_entropy=True)
    assert aux is None and logps.shape == ref_logps.shape == (3, keep)
    valid = mask[:, -keep:].bool()  # the fused head zeroes padded positions; the loss masks them either way
    torch.testing.assert_close(logps[valid], ref_logps[valid], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ent[valid], ref_ent[valid], rtol=1e-4, atol=1e-5)
    assert not ent.requires_grad  # logged, not trained on (no entropy bonus)
    (ref_logps[valid].sum()).backward()
    (logps[valid].sum()).backward()
    for (name, a), (_, b) in zip(fused.named_parameters(), ours.named_parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-5, msg=name)
    assert applies(ours, torch.device("cpu"), {})
    assert not applies(ours, torch.device("cpu"), {"pixel_values": torch.zeros(1)})
    assert not applies(ours, torch.device("cpu"), {"compute_aux_loss": True})
    ours.config.final_logit_softcapping = 30.0  # a soft-capped head: TRL's path applies the cap
    assert not applies(ours, torch.device("cpu"), {})
