"""Math problems: a solution of N steps gives N examples (the paper's construction); example k shows the problem
and steps 1..k and asks for step k+1, written as free text (the ``text`` syntax; there are no observations)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from srl_swe.schema import ToolCall, Trajectory
from srl_swe.tasks.base import Message, TaskKind

SYSTEM = """You solve math problems one step at a time. You see the problem and the steps written so far.
Every reply must be your reasoning inside <think>...</think> followed by only the next step of the solution."""


class MathKind(TaskKind):
    name, env_id = "math", "SRL-Math-v0"
    syntaxes = ("text",)
    actions_are = "math steps are free text"
    default_window = None  # every previous step

    def system_prompt(self, trajectories: Sequence[Trajectory], syntax: str) -> str:
        return SYSTEM

    def head(self, t: Trajectory, k: int, system: str, cfg: Any) -> tuple[tuple[Message, ...], int]:
        """Problem and steps 1..k (the last ``window`` of them), asking for step k+1; the path is in the head."""
        texts = [s.action.get("content") or "" for s in t.steps]
        first = self.first_shown(k, cfg.window)
        shown = "\n".join(f"Step {i + 1}: {texts[i]}" for i in range(first, k)) or "(none yet)"
        omitted = f"[steps 1-{first} omitted]\n" if first else ""
        user = f"Problem:\n{t.task.problem_statement}\n\nSteps so far:\n{omitted}{shown}\n\nWrite step {k + 1}."
        return (("system", system), ("user", user)), k

    def target(self, call: ToolCall, syntax: str) -> str:
        return call.get("content") or ""


MATH = MathKind()
