"""Scripted policies for the step environments (no model needed), chosen by name from :data:`POLICIES`.

``ExpertStepPolicy`` ("replay") writes the expert's own action (with the expert's thought as the monologue):
the upper bound, reward 1.0 on every step. ``NoisyExpertStepPolicy`` ("noisy") edits the expert action at
random before writing it, which shows how the reward grades near-misses; both are deterministic given a seed.
They read the expert step from the env itself, so they work only on a step env (``SRL-SWE-v0``,
``SRL-Math-v0``); the agent loop's policies (a model, a scripted replay of tool calls) are
:mod:`srl_swe.agent.policies`. Every policy here is built as ``cls(env, seed=...)``, which is how
``srl-swe env run --policy NAME`` builds any of them.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from srl_swe.actions import get_syntax
from srl_swe.registry import Registry
from srl_swe.schema import ToolCall

if TYPE_CHECKING:  # the CLI reads POLICIES to build its parser: no env machinery for that
    from srl_swe.envs.base import StepImitationEnv


class ExpertStepPolicy:
    """Writes the expert action of the current step. ``seed`` is accepted for the common constructor; the
    policy has no randomness."""

    def __init__(self, env: StepImitationEnv, *, seed: int = 0):
        self.env = env

    def expert(self, info: dict[str, Any]) -> tuple[str, str]:
        t = self.env.trajectories[info["trajectory_index"]]
        example = self.env.builder.example(info["trajectory_index"], info["step_index"])
        return t.steps[info["step_index"]].thought or "Following the plan.", example.expert_action

    def __call__(self, observation: dict[str, Any], info: dict[str, Any]) -> str:
        thought, action = self.expert(info)
        return f"<think>\n{thought}\n</think>\n{action}"


class NoisyExpertStepPolicy(ExpertStepPolicy):
    """Writes the expert action with a span of the tool-call body corrupted (``noise``: the largest share of
    the argument cut)."""

    def __init__(self, env: StepImitationEnv, *, seed: int = 0, noise: float = 0.3):
        super().__init__(env, seed=seed)
        self.noise, self.rng = noise, random.Random(seed)

    def __call__(self, observation: dict[str, Any], info: dict[str, Any]) -> str:
        thought, action = self.expert(info)
        call = self.env.trajectories[info["trajectory_index"]].steps[info["step_index"]].action
        if call.arguments and self.rng.random() < 0.9:
            j = self.rng.randrange(len(call.arguments))
            key, value = call.arguments[j]
            if value.strip():
                cut = max(1, int(len(value) * self.noise * self.rng.random()))
                start = self.rng.randrange(max(1, len(value) - cut + 1))
                junk = "".join(self.rng.choice("abcdefgh _-./") for _ in range(cut // 2))
                noisy = (value[:start] + junk + value[start + cut :]).strip() or "x"
                args = (*call.arguments[:j], (key, noisy), *call.arguments[j + 1:])
                action = get_syntax(info["syntax"]).render(ToolCall(call.name, args))
        return f"<think>\n{thought}\n</think>\n{action}"


#: The names ``srl-swe env run --policy`` offers (its choices come from here).
POLICIES: Registry[type[ExpertStepPolicy]] = Registry("env policy", {
    "replay": "srl_swe.envs.policies.ExpertStepPolicy",
    "noisy": "srl_swe.envs.policies.NoisyExpertStepPolicy",
})
