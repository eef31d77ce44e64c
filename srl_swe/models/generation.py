"""Text generation (evaluation, the agent, training's step eval): the ``Generator`` protocol and its backends.

A generator takes chat conversations and returns ``n`` completions per conversation (the assistant's reply
only, special tokens removed). The evaluation code depends on nothing else, so a test can pass a scripted
generator and a backend can be swapped: :data:`srl_swe.models.GENERATORS` maps a backend name to its class
(imported on first use, so the vLLM backend costs nothing until asked for); a new backend is one module and one
line there.

``TransformersGenerator`` is the reference backend: plain ``model.generate`` on CPU or GPU. Decoding follows
the paper's protocol and nothing else: greedy when ``temperature == 0``; otherwise pure sampling at that
temperature with ``top_p=1.0``. The model's own ``generation_config`` sampling defaults (Qwen2.5-Instruct ships
``top_k=20, top_p=0.8, repetition_penalty=1.05``) are deliberately *not* inherited, because they would change
the distribution avg@k is measured on; only its end-of-sequence ids are kept.

A generator knows its model's ``context_length`` (:mod:`srl_swe.models.context`) and refuses a call with a prompt
that, with ``max_new_tokens``, does not fit it (:class:`~srl_swe.errors.ContextLengthError`); callers that batch
use :func:`srl_swe.models.context.generate_fitting`, which leaves such prompts out of the call.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from srl_swe.models.context import context_error, context_length
from srl_swe.models.loading import load_model_and_tokenizer
from srl_swe.models.templates import prefill_of, render_prompt

Messages = list[dict[str, str]]


@runtime_checkable
class Generator(Protocol):
    """Chat messages in, ``n`` completions per prompt out (same order as ``prompts``). A prompt whose last message
    is the assistant's is a prefill: the model continues that message, and the completion returned is the whole
    reply, prefill included (:func:`srl_swe.actions.with_prefill`). Backends also expose ``tokenizer`` and
    ``context_length`` (None: unknown), which :func:`srl_swe.models.context.generate_fitting` checks prompts with."""

    def generate(
        self, prompts: list[Messages], *, n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]: ...


def check_decoding(n: int, temperature: float) -> None:
    """Arguments every backend must reject the same way."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0 and n != 1:
        raise ValueError(f"greedy decoding (temperature 0) gives one completion per prompt; got n={n}")


class TransformersGenerator:
    """``model.generate`` in batches of ``batch_size`` sequences (prompts × n flattened), left padded."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 8, name: str | None = None,
                 progress: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer, self.batch_size, self.progress = model, tokenizer, batch_size, progress
        self.name = name or getattr(getattr(model, "config", None), "_name_or_path", None) or type(model).__name__

    @classmethod
    def from_spec(cls, spec: str, *, batch_size: int = 8, dtype: str = "auto", cache_dir: str | None = None,
                  **kwargs: Any) -> TransformersGenerator:
        """Load a model from a spec (hub id or local path, as :mod:`srl_swe.models.loading` understands it)."""
        model, tokenizer = load_model_and_tokenizer(spec, dtype=dtype, cache_dir=cache_dir)
        return cls(model, tokenizer, batch_size=batch_size, name=spec, **kwargs)

    @property
    def context_length(self) -> int | None:
        """Positions the model was trained on (its config's ``max_position_embeddings`` or alike)."""
        return context_length(getattr(self.model, "config", None), self.tokenizer)

    def _generation_config(self, temperature: float, max_new_tokens: int) -> Any:
        from transformers import GenerationConfig

        tok, base = self.tokenizer, getattr(self.model, "generation_config", None)
        # Instruct models stop on several ids (Qwen: <|im_end|> and <|endoftext|>); keep them all.
        eos = getattr(base, "eos_token_id", None)
        if eos is None:
            eos = tok.eos_token_id
        # Every knob that shapes the distribution is set explicitly, because transformers fills the ones left
        # unset from the model's generation_config. The values are neutral (min_p 0 keeps every token); top_k is
        # 0 (off) when sampling and transformers' default 50 when greedy, where it is unused and 0 would warn.
        sampling = temperature > 0
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            do_sample=sampling,
            temperature=float(temperature) if sampling else 1.0,
            top_p=1.0,
            top_k=0 if sampling else 50,
            **({"min_p": 0.0} if sampling else {}),
            typical_p=1.0,
            epsilon_cutoff=0.0,
            eta_cutoff=0.0,
            repetition_penalty=1.0,
        )

    def generate(
        self, prompts: list[Messages], *, n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        import torch
        from tqdm.auto import tqdm

        check_decoding(n, temperature)
        tok = self.tokenizer
        if tok.pad_token_id is None:  # many base tokenizers have none; eos is masked out by attention anyway
            tok.pad_token = tok.eos_token
        texts = [render_prompt(tok, m) for m in prompts]
        lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        context = self.context_length
        for i, length in enumerate(lengths):  # the last guard: callers leave such prompts out (generate_fitting)
            if err := context_error(length, max_new_tokens, context, where=f"prompt {i + 1} of {len(texts)}"):
                raise err
        # One row per (prompt, sample): a batch is `batch_size` sequences however n and the prompts split.
        # Rows are sorted by prompt length so a batch pads little; the sort is stable, hence deterministic.
        rows = sorted(((i, j) for i in range(len(texts)) for j in range(n)), key=lambda r: lengths[r[0]])
        config = self._generation_config(temperature, max_new_tokens)
        out: list[list[str]] = [[""] * n for _ in texts]
        self.model.eval()
        # Seeded once per call: the same prompts, settings and batch size give the same completions.
        torch.manual_seed(seed)
        bar = tqdm(total=len(rows), desc=f"generate n={n} T={temperature}", unit="seq", disable=not self.progress)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            enc = tok([texts[i] for i, _ in chunk], return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False).to(self.model.device)
            with torch.inference_mode():
                seqs = self.model.generate(**enc, generation_config=config)
            new = seqs[:, enc["input_ids"].shape[1] :]  # left padding: every prompt ends at the same column
            for (i, j), text in zip(chunk, tok.batch_decode(new, skip_special_tokens=True), strict=True):
                out[i][j] = prefill_of(prompts[i]) + text  # a prefilled reply is returned whole
            bar.update(len(chunk))
        bar.close()
        return out
