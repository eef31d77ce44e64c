"""GRPO prompts: their token counts as generated from, the over-long ones skipped (TRL 1.x has no
max_prompt_length), the prompt budget the model's context allows, and the ``<think>`` prefill, which TRL's GRPO
can only take as text prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srl_swe.actions import with_prefill
from srl_swe.models.context import prompt_lengths
from srl_swe.models.templates import render_prompt
from srl_swe.train.checkpoints import is_main_process


def prompt_tokens(tokenizer, prompts: list, tools: list | None = None) -> list[int]:
    """Token counts of chat prompts as generated from (:func:`render_prompt`, with ``tools`` rendered where given;
    a text prompt as it is). Rendered, then tokenized in one fast-tokenizer call: the same ids as
    apply_chat_template(tokenize=True) row by row (no special tokens added), 2-3x faster. The generators check
    prompts against the context with the same count."""
    return prompt_lengths(tokenizer, prompts, tools)


def prompt_budget(cfg: Any, context: int | None) -> int | None:
    """The longest prompt (tokens) a run generates from: ``max_prompt_length``, or, when it is unset, the model's
    ``context`` minus ``max_completion_length`` (a completion must fit after its prompt; past the trained positions
    a model writes garbage); None when neither is known. Raises ConfigError, before anything is generated, for a
    config whose prompt and completion budgets (SFT: ``max_length``) exceed the context."""
    from srl_swe.train.config import ConfigError

    if context is None:
        return cfg.max_prompt_length
    completion, prompt = cfg.max_completion_length, cfg.max_prompt_length
    fix = (f"lower them, or use a model with a longer context (this one has {context:,} positions: prompt + "
           f"completion must fit)")
    if prompt and prompt + completion > context:
        raise ConfigError("TrainConfig", ("max_prompt_length", "max_completion_length"),
                          f"{prompt:,} + {completion:,} = {prompt + completion:,} tokens > the model's {context:,} "
                          f"context by {prompt + completion - context:,}", allowed=fix)
    if completion >= context:
        raise ConfigError("TrainConfig", "max_completion_length", f"leaves no room for a prompt in the model's "
                          f"{context:,} context", completion, fix)
    max_length = getattr(cfg, "max_length", None)
    if cfg.mode == "sft" and max_length and max_length > context:
        raise ConfigError("TrainConfig", "max_length", f"> the model's {context:,} context by "
                          f"{max_length - context:,}", max_length, fix)
    return prompt or context - completion


def prefilled(ds, tokenizer, prefill: str):
    """``ds`` with each chat prompt turned into its text plus ``prefill``: TRL's GRPO opens a new assistant turn
    after a chat prompt (it would close a trailing assistant message), so a reply that must start with the
    prefill is generated from the rendered text instead. None stays None."""
    if ds is None:
        return None
    return ds.map(lambda rows: {"prompt": [render_prompt(tokenizer, with_prefill(list(p), prefill))
                                           for p in rows["prompt"]]}, batched=True, desc="<think> prefill")


def fitting(counts: list[int], max_len: int | None, limit: int | None = None) -> list[int]:
    """Indices of the prompts of at most ``max_len`` tokens (None: every one), in order, the first ``limit``."""
    return [i for i, n in enumerate(counts) if max_len is None or n <= max_len][: limit or None]


def fit_prompts(train_ds, eval_ds, tokenizer, max_len: int | None, run_dir: Path,
                eval_max_examples: int | None = None, tools: list | None = None):
    """Drop the GRPO examples whose chat prompt is longer than ``max_len`` tokens (:func:`prompt_budget`; None:
    no limit known; TRL 1.x has no max_prompt_length; cutting a chat prompt from the left would drop its system
    prompt and task, so an over-long example is skipped instead), then keep the first ``eval_max_examples``
    held-out ones. ``tools``: those TRL renders into every prompt (an ``environment_factory``'s), counted too.
    Counts go to ``run_dir/prompt_lengths.json``. No training prompt that fits is an error; no held-out one, no
    eval."""
    from srl_swe.errors import SRLError

    def lengths(rows: dict[str, list]) -> dict[str, list[int]]:
        return {"_prompt_tokens": prompt_tokens(tokenizer, rows["prompt"], tools)}

    report: dict[str, Any] = {"max_prompt_length": max_len}
    if tools:
        report["tools"] = [getattr(t, "__name__", None) or t["function"]["name"] for t in tools]
    out: list = []
    error: SRLError | None = None
    for name, ds in (("train", train_ds), ("eval", eval_ds)):
        if ds is None:
            out.append(None)
            continue
        counts = ds.map(lengths, batched=True, batch_size=256, desc=f"prompt lengths ({name})")["_prompt_tokens"]
        keep = fitting(counts, max_len)
        report[name] = {"examples": len(counts), "kept": len(keep), "dropped": len(counts) - len(keep),
                        "longest_tokens": max(counts, default=0)}
        if name == "eval":
            keep = fitting(counts, max_len, eval_max_examples)
            report[name]["used"] = len(keep)
            out.append(ds.select(keep) if keep else None)
            continue
        if counts and not keep:
            short = ("shorten the task text (the tools TRL renders count too)" if tools
                     else "shorten prompts with window / max_observation_chars") + ", or lower max_completion_length"
            error = SRLError(f"every {name} prompt is longer than the prompt budget, {max_len} tokens "
                             f"(max_prompt_length, or the model's context less max_completion_length; the longest is "
                             f"{max(counts)}); {short}")
            out.append(None)
            break
        out.append(ds.select(keep) if len(keep) < len(counts) else ds)
    if is_main_process():  # written before any error, so the counts are there to look at
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "prompt_lengths.json").write_text(json.dumps(report, indent=2))
    if error is not None:
        raise error
    return out[0], out[1]
