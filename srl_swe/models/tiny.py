"""A tiny random Qwen2 with its own ChatML BPE tokenizer, built offline in seconds, for tests and smoke runs.

The tokenizer is trained locally (no hub), on the bundled trajectories by default, so prompts built by the
environments tokenize into a few thousand ids rather than falling back to raw bytes everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from srl_swe.models.templates import CHATML_TEMPLATE
from srl_swe.paths import bundled_dir

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Not special: they are part of the text the model must learn to write, and decode(skip_special_tokens=True)
# must keep them (the SRL format checker looks for them).
THINK_TOKENS = ["<think>", "</think>"]
_MIN_VOCAB = 256 + len(SPECIAL_TOKENS) + len(THINK_TOKENS)
# Qwen2's pre-tokenizer split (transformers' tokenization_qwen2.PRETOKENIZE_REGEX). AutoTokenizer loads a
# qwen2 folder as Qwen2Tokenizer, which rebuilds this pipeline around our vocab/merges; training with the
# same one keeps tokenizer.json (vLLM, tokenizers) and AutoTokenizer in exact agreement (tested).
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
    r"""\s+(?!\S)|\s+"""
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def bundled_texts() -> list[str]:
    """Every string value in the bundled trajectory files (the text models see, not its JSON escaping)."""
    texts: list[str] = []
    # swe/ and math/ only: the tokenizer (and so every tiny-model test) stays fixed as other samples are added.
    for path in sorted(p for sub in ("swe", "math") for p in (bundled_dir() / sub).rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.extend(_strings(json.loads(line)))
    return texts


def _train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    # Byte-level like Qwen: every string is encodable, so no <unk> is needed.
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(THINK_TOKENS),  # so that the total, added tokens included, is vocab_size
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    return tok


def make_tiny_qwen2(
    out_dir: Path,
    *,
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    max_positions: int = 32768,
) -> Path:
    """Write a random ``Qwen2ForCausalLM`` and its tokenizer to ``out_dir``; loadable by ``from_pretrained``.

    Deterministic for a given seed and texts (same tokenizer, same weights). The caller's global torch RNG
    state is left untouched. ``max_positions`` is the model's context (``max_position_embeddings``, and the
    tokenizer's ``model_max_length``): RoPE has no position table, so a long one costs nothing, and a short one
    makes a model whose context real prompts exceed (tests of :mod:`srl_swe.models.context`).
    """
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    if vocab_size < _MIN_VOCAB:
        raise ValueError(f"vocab_size must be >= {_MIN_VOCAB} (256 bytes + special tokens), got {vocab_size}")
    if hidden_size % heads or heads % kv_heads:
        raise ValueError(f"need hidden_size % heads == 0 and heads % kv_heads == 0, got {hidden_size}/{heads}/"
                         f"{kv_heads}")
    corpus = list(texts) if texts is not None else bundled_texts()
    if not corpus:
        raise ValueError("texts is empty: the tokenizer needs some text to learn merges from")
    if max_positions < 1:
        raise ValueError(f"max_positions must be >= 1, got {max_positions}")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(corpus, vocab_size),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=max_positions,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    config = Qwen2Config(
        # len(tokenizer), not vocab_size: a small corpus may stop short of vocab_size merges, and ids the
        # tokenizer cannot decode must not be generable.
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir
