"""Outcome rewards for RLVR (TRL reward-function signature).

``math``: 1 when the last ``\\boxed{}`` of the completion equals the reference answer under math-verify
(the same check as ``srl-swe eval math``), else 0. The SWE outcome (resolved by the SWE-bench harness)
plugs in through :data:`OUTCOME_REWARDS` once the execution runtime exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from srl_swe.rewards import completion_text


class MathAnswerReward:
    __name__ = "math_answer"

    def __init__(self) -> None:
        self._gold: dict[str, list] = {}  # parsed reference answers: parsing is the slow part

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (),
                 answer: Sequence[str] = (), **_: Any) -> list[float]:
        from srl_swe.eval.math import extract_boxed, is_correct, parse_answer

        if len(answer) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(answer)} reference answers")
        out = []
        for completion, ref in zip(completions, answer, strict=True):
            gold = self._gold.get(ref)
            if gold is None:
                gold = self._gold[ref] = parse_answer(str(ref))
            text = completion_text(completion)
            out.append(1.0 if isinstance(text, str) and is_correct(gold, extract_boxed(text)) else 0.0)
        return out


OUTCOME_REWARDS: dict[str, Callable[[], Callable[..., list[float]]]] = {"math": MathAnswerReward}
