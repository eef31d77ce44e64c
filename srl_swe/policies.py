"""Scripted policies for the step environments (no model needed).

``ReplayPolicy`` writes the expert's own action (with the expert's thought as the monologue): the
upper bound, reward 1.0 on every step. ``NoisyReplayPolicy`` edits the expert action at random before
writing it, which shows how the reward grades near-misses; both are deterministic given a seed.
Model-backed policies live in the training/evaluation code.
"""

from __future__ import annotations

import random
from typing import Any

from srl_swe.actions import get_syntax
from srl_swe.envs.base import StepImitationEnv
from srl_swe.schema import ToolCall


class ReplayPolicy:
    def __init__(self, env: StepImitationEnv):
        self.env = env

    def expert(self, info: dict[str, Any]) -> tuple[str, str]:
        t = self.env.trajectories[info["trajectory_index"]]
        example = self.env.builder.example(info["trajectory_index"], info["step_index"])
        return t.steps[info["step_index"]].thought or "Following the plan.", example.expert_action

    def __call__(self, observation: dict[str, Any], info: dict[str, Any]) -> str:
        thought, action = self.expert(info)
        return f"<think>\n{thought}\n</think>\n{action}"


class NoisyReplayPolicy(ReplayPolicy):
    """Replays the expert but corrupts a span of the action text (inside the tool-call body)."""

    def __init__(self, env: StepImitationEnv, noise: float = 0.3, seed: int = 0):
        super().__init__(env)
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


POLICIES = {"replay": ReplayPolicy, "noisy": NoisyReplayPolicy}
