"""The agent loop: a policy acts in a runtime until it submits or a limit is hit.

    result = run_agent(ModelPolicy(generator), instance, runtime, max_steps=50)
    result.prediction   # a srl_swe.swebench.prediction.Prediction: grade it with the harness

Limits: ``max_steps`` actions, ``max_tokens`` generated tokens (needs a policy with ``count_tokens``),
``max_seconds`` of wall time (checked between steps; each command also has its own timeout), and
``max_format_errors`` consecutive malformed outputs; a prompt that no longer fits the model's context (checked
every turn: prompts grow with the history) ends it with ``context_exceeded``. On a limit the current diff is
still submitted, as SWE-agent's autosubmission does, and ``exit_status`` says which limit ended the episode.
"""

from __future__ import annotations

from typing import Any

from srl_swe.agent.episode import AgentResult, Episode
from srl_swe.agent.policies import Policy
from srl_swe.errors import ContextLengthError
from srl_swe.runtime.base import Runtime


def run_agent(
    policy: Policy,
    instance: Any,
    runtime: Runtime,
    *,
    max_steps: int = 50,
    max_tokens: int | None = None,
    max_seconds: float | None = None,
    syntax: str = "xml",
    model_name: str | None = None,
    **episode_options: Any,
) -> AgentResult:
    """Run ``policy`` on ``instance`` (a :class:`~srl_swe.swebench.instance.SWEInstance`, or anything with
    ``instance_id`` and ``problem_statement``) inside ``runtime``, which the caller owns and closes.

    ``episode_options`` go to :class:`~srl_swe.agent.episode.Episode`: ``window`` (history pairs in the
    prompt, default 2 as SRL-SWE-v0; ``None`` = all), ``max_observation_chars``, ``include_thoughts``,
    ``require_think``, ``max_format_errors``, ``command_timeout``."""
    counter = getattr(policy, "count_tokens", None)
    if counter is not None and not getattr(policy, "can_count_tokens", True):
        counter = None
    if max_tokens is not None and counter is None:
        raise ValueError("max_tokens needs a policy that counts tokens (ModelPolicy with a tokenizer-backed "
                         "generator); use max_steps or max_seconds for other policies")
    name = model_name or getattr(policy, "name", None) or type(policy).__name__
    episode = Episode(instance.instance_id, instance.problem_statement, runtime, syntax=syntax,
                      max_steps=max_steps, max_tokens=max_tokens, max_seconds=max_seconds, model_name=name,
                      **episode_options)
    if hasattr(policy, "reset"):
        policy.reset()
    while not episode.check_limits():
        try:
            output = policy.act(episode.prompt())
        except ContextLengthError as e:  # the prompt has outgrown the model's context
            episode.exceed_context(e)
            break
        episode.step(output, tokens=counter(output) if counter else None)
    return episode.result(count_tokens=counter is not None)
