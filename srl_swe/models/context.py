"""A model's context length, and the one check every generation path makes before generating.

**The rule**: ``prompt tokens + max_new_tokens <= context``. The completion budget must fit as well as the
prompt: a model writes sense only at the positions it was trained on, and a prompt that fits alone would let its
completion run past them (SmolLM2's 8,192 positions given a 22k-token oracle-file prompt generated for minutes and
wrote nothing usable). A prompt that does not fit raises or yields :class:`~srl_swe.errors.ContextLengthError`,
which says by how much; nothing is cut silently (cutting a chat prompt loses its system prompt or its task).

**The context** comes from the model's config (:func:`context_length`: ``max_position_embeddings``,
``n_positions``, ...), or, for a vLLM engine, from its ``max_model_len``. A tokenizer's ``model_max_length`` is
used only when there is no config and it is a real limit: tokenizers without one report transformers' sentinel
(about 1e30, SmolLM2's included). Prompts are counted as the generators generate from them
(:func:`srl_swe.models.templates.render_prompt`, no special tokens added).

Generators expose ``context_length`` (None when unknown: nothing is checked) and ``tokenizer``; their
``generate`` refuses a call holding a prompt that does not fit (a last guard). Callers that batch go through
:func:`generate_fitting`, which generates the prompts that fit in one call and returns the error in place of the
others, so one over-long prompt never fails a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from srl_swe.errors import ContextLengthError
from srl_swe.models.loading import resolve_model
from srl_swe.models.templates import render_prompt

#: Config fields that hold the number of positions a model was trained on, by architecture family.
CONFIG_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
#: A tokenizer ``model_max_length`` at or above this is "no limit" (transformers' VERY_LARGE_INTEGER is 1e30).
TOKENIZER_SENTINEL = 10**9
ADVICE = "shorten the prompt, lower max_new_tokens, or use a model with a longer context"


def context_length(config: Any = None, tokenizer: Any = None) -> int | None:
    """Positions the model was trained on: from ``config`` (a transformers config or a dict; a multimodal config's
    ``text_config`` too), else from ``tokenizer.model_max_length`` when that is a real limit; None if unknown."""
    for cfg in (config, _get(config, "text_config")):
        for key in CONFIG_KEYS:
            value = _get(cfg, key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < TOKENIZER_SENTINEL:
        return limit
    return None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def context_error(prompt_tokens: int, max_new_tokens: int, context: int | None, *, where: str | None = None,
                  advice: str = ADVICE) -> ContextLengthError | None:
    """The error for a prompt of ``prompt_tokens`` that, with ``max_new_tokens``, exceeds ``context``; None when it
    fits or the context is unknown."""
    if context is None or prompt_tokens + max_new_tokens <= context:
        return None
    return ContextLengthError(prompt_tokens, max_new_tokens, context, where=where, advice=advice)


def check_fits(prompt_tokens: int, max_new_tokens: int, context: int | None, *, where: str | None = None,
               advice: str = ADVICE) -> None:
    """Raise :class:`ContextLengthError` unless ``prompt_tokens + max_new_tokens <= context``."""
    err = context_error(prompt_tokens, max_new_tokens, context, where=where, advice=advice)
    if err is not None:
        raise err


def prompt_lengths(tokenizer: Any, prompts: Sequence[Any], tools: list | None = None) -> list[int]:
    """Token counts of chat prompts (a text prompt as it is) as the generators generate from them, with ``tools``
    rendered into each chat prompt where given."""
    texts = [p if isinstance(p, str) else render_prompt(tokenizer, p, tools) for p in prompts]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def fit_errors(generator: Any, prompts: Sequence[Any], max_new_tokens: int, *,
               names: Sequence[str | None] | None = None, advice: str = ADVICE) -> list[ContextLengthError | None]:
    """For each prompt, the error if it does not fit ``generator``'s context with ``max_new_tokens``, else None.
    A generator that does not tell its context or tokenizer (a scripted one) checks nothing."""
    context, tokenizer = getattr(generator, "context_length", None), getattr(generator, "tokenizer", None)
    if context is None or tokenizer is None:
        return [None] * len(prompts)
    names = names if names is not None else [None] * len(prompts)
    return [context_error(n, max_new_tokens, context, where=name, advice=advice)
            for n, name in zip(prompt_lengths(tokenizer, prompts), names, strict=True)]


def generate_fitting(generator: Any, prompts: Sequence[Any], *, n: int, temperature: float, max_new_tokens: int,
                     seed: int, names: Sequence[str | None] | None = None,
                     advice: str = ADVICE) -> list[list[str] | ContextLengthError]:
    """``generator.generate`` on the prompts that fit (one call, in order); each other prompt gets its
    :class:`ContextLengthError` in place of its completions. When every prompt fits it is exactly one plain
    ``generate`` call."""
    errors = fit_errors(generator, prompts, max_new_tokens, names=names, advice=advice)
    keep = [i for i, e in enumerate(errors) if e is None]
    out: list[list[str] | ContextLengthError] = list(errors)  # type: ignore[arg-type]
    if keep:
        got = generator.generate([prompts[i] for i in keep], n=n, temperature=temperature,
                                 max_new_tokens=max_new_tokens, seed=seed)
        for i, completions in zip(keep, got, strict=True):
            out[i] = completions
    return out


def spec_context_length(spec: str, cache_dir: Any = None) -> int | None:
    """The context of a model spec (alias, folder, ``.gguf``) read from its config alone, no weights loaded; None
    for a hub id (the hub may be unreachable: the model's own load says so) or a config without one."""
    from transformers import AutoConfig

    resolved = resolve_model(spec, cache_dir)
    if resolved.source == "hub":
        return None
    kwargs = {"gguf_file": resolved.gguf_file} if resolved.gguf_file else {}
    try:
        return context_length(AutoConfig.from_pretrained(resolved.path, **kwargs))
    except (OSError, ValueError):
        return None
