"""Chat templates: the ChatML fallback for tokenizers that ship none, and tool calling for TRL.

Both are about how a model reads a conversation, not about training or evaluation, so they sit with the
model loading that applies them (:func:`srl_swe.models.loading.load_model_and_tokenizer`, the tiny model of
:mod:`srl_swe.models.tiny`, and ``srl-swe train``'s RLVR on SWE tasks).
"""

from __future__ import annotations

from typing import Any

# Qwen's ChatML layout without its default system prompt; the fallback for tokenizers that ship no template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def is_prefilled(messages: Any) -> bool:
    """Whether a chat prompt ends with the assistant's message (a prefill, :func:`srl_swe.actions.with_prefill`),
    which the generators continue instead of opening a new turn."""
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant"


def render_prompt(tokenizer: Any, messages: list[dict[str, str]], tools: list | None = None) -> str:
    """The text a model generates from: the chat with a new assistant turn opened or, for a prefilled prompt,
    with its last message left open so the model continues it; ``tools`` (functions or JSON schemas, as TRL's
    ``environment_factory`` passes them) rendered by the template. The transformers generator and the
    prompt-length counts render through here, so they agree."""
    extra = {"tools": tools} if tools else {}  # never tools=[]: some templates render tool boilerplate for it
    if is_prefilled(messages):
        return tokenizer.apply_chat_template(messages, continue_final_message=True, tokenize=False, **extra)
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **extra)


def prefill_of(messages: Any) -> str:
    """The prefill a prompt ends with ("" for none): what a generator puts back in front of the text it
    generated, so its completions are the whole reply."""
    return str(messages[-1].get("content") or "") if is_prefilled(messages) else ""


def tool_calling_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer`` made able to render tool schemas and parse tool calls, as ``environment_factory`` needs.

    A chat template TRL knows (Qwen2.5/Qwen3, Llama 3.1, ...) is kept as it is. A ChatML tokenizer whose
    template renders no tools (SmolLM2, the tiny test model of :mod:`srl_swe.models.tiny`) gets TRL's copy of
    Qwen2.5's template: ChatML plus ``<tool_call>{json}</tool_call>``, which is the ``qwen`` action syntax, so
    the trained model writes exactly what an SRL policy trained with ``syntax=qwen`` writes. The final model is
    saved with that template. Any other tokenizer raises, saying what to do.
    """
    from trl.chat_template_utils import add_response_schema, qwen2_5_chat_template, supports_tool_calling

    if supports_tool_calling(tokenizer):
        if getattr(tokenizer, "response_template", None) or getattr(tokenizer, "response_schema", None):
            return tokenizer
        try:
            return add_response_schema(tokenizer)
        except ValueError:
            pass  # renders tools, but TRL cannot parse this model's calls back: Qwen2.5's template if ChatML
    vocab = tokenizer.get_vocab()
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        tokenizer.chat_template = qwen2_5_chat_template
        return add_response_schema(tokenizer)
    raise ValueError("RLVR on SWE tasks needs a chat template that renders tools and whose tool calls TRL can "
                     "parse (Qwen2.5/Qwen3, Llama 3.1, ... see trl.chat_template_utils.add_response_schema), or a "
                     "ChatML tokenizer (<|im_start|>/<|im_end|>); this tokenizer has neither: use such a model, "
                     "or set tokenizer.response_template and a tool-calling chat_template on it")
