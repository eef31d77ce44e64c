"""Policies for the agent loop: a model (any :class:`~srl_swe.models.generation.Generator`) or a replay.

A policy maps the current chat prompt to the model's full output text (``<think>…</think>`` then one
action). Policies with a ``reset()`` are reset by the loop at the start of each episode; a policy with
``count_tokens(text)`` lets the loop enforce a token budget.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from srl_swe.actions import render
from srl_swe.errors import ContextLengthError
from srl_swe.models.context import generate_fitting
from srl_swe.schema import ToolCall, Trajectory
from srl_swe.tasks.swe import SUBMIT_SENTINEL

FINAL_THOUGHT = "All planned actions are done, so I submit the changes."
#: What a ContextLengthError of an agent's prompt advises (the episode ends with exit status context_exceeded).
CONTEXT_ADVICE = ("the episode ends (context_exceeded); fewer history pairs (--window), shorter observations "
                  "(--max-observation-chars) or a lower --max-new-tokens keep prompts shorter")


@runtime_checkable
class Policy(Protocol):
    def act(self, messages: list[dict[str, str]]) -> str: ...


class ModelPolicy:
    """Generates one completion per step with a :class:`Generator` (transformers or vLLM backend).

    ``seed`` is advanced at every call so that sampled steps differ while a whole episode stays
    reproducible; with ``temperature=0`` (greedy, the default) it has no effect."""

    def __init__(self, generator: Any, *, temperature: float = 0.0, max_new_tokens: int = 1024, seed: int = 0,
                 name: str | None = None):
        self.generator, self.temperature, self.max_new_tokens = generator, temperature, max_new_tokens
        self.seed, self.calls = seed, 0
        self.name = name or getattr(generator, "name", None) or type(generator).__name__

    def reset(self) -> None:
        self.calls = 0

    def act(self, messages: list[dict[str, str]]) -> str:
        """The model's reply; raises :class:`~srl_swe.errors.ContextLengthError` (the loop ends the episode with
        ``context_exceeded``) when the prompt and ``max_new_tokens`` do not fit the model's context."""
        (out,) = generate_fitting(self.generator, [messages], n=1, temperature=self.temperature,
                                  max_new_tokens=self.max_new_tokens, seed=self.seed + self.calls,
                                  advice=CONTEXT_ADVICE)
        if isinstance(out, ContextLengthError):
            raise out
        self.calls += 1
        return out[0]

    @property
    def can_count_tokens(self) -> bool:
        return getattr(self.generator, "tokenizer", None) is not None

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the generator's tokenizer (the completion's length)."""
        tok = self.generator.tokenizer
        return len(tok(text, add_special_tokens=False)["input_ids"])


class ReplayPolicy:
    """Replays an expert trajectory's actions in order (its thoughts as the monologue), then submits.

    Observations are ignored: the actions are replayed whatever the runtime answers, which is what a
    scripted expert is for (and what shows that the recorded path still solves the task)."""

    def __init__(self, trajectory: Trajectory, syntax: str = "xml"):
        self.trajectory, self.syntax = trajectory, syntax
        self.position = 0
        self.name = f"replay:{trajectory.id}"
        for step in trajectory.steps:  # fail now, not mid-episode, if an action cannot be written
            render(step.action, syntax)

    def reset(self) -> None:
        self.position = 0

    def act(self, messages: list[dict[str, str]]) -> str:
        steps = self.trajectory.steps
        if self.position < len(steps):
            thought, call = steps[self.position].thought, steps[self.position].action
        else:
            thought, call = FINAL_THOUGHT, ToolCall("submit")
            if self.syntax == "bash":
                call = ToolCall.bash(f"echo {SUBMIT_SENTINEL}")
        self.position += 1
        return f"<think>\n{thought}\n</think>\n{render(call, self.syntax)}"
