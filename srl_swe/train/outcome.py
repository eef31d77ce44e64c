r"""Outcome rewards for RLVR, by name in :data:`OUTCOME_REWARDS` (TRL reward functions: keyword arguments
``completions`` plus the dataset's columns, one float per completion).

``math``: 1 when the last ``\boxed{}`` of the completion equals the reference answer under math-verify (the same
check as ``srl-swe eval math``), else 0. The SWE outcome (the patch graded by the SWE-bench harness) is not a
reward function: the rollout's environment owns it, ``SWEToolEnv.get_reward`` in :mod:`srl_swe.train.exec_env`,
which ``srl-swe train`` hands to TRL as its ``environment_factory`` for ``rlvr_reward: swe``.

A new outcome reward is a function (or a class, built once per run) plus one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from srl_swe.eval.math import extract_boxed, is_correct, parse_answer
from srl_swe.registry import Registry
from srl_swe.rewards import completion_text


@lru_cache(maxsize=65_536)
def _gold(answer: str) -> list:
    return parse_answer(answer)  # parsing the reference is the slow part, and a dataset repeats its answers


def math_answer(completions: Sequence[Any], answer: Sequence[str], **kwargs: Any) -> list[float]:
    r"""1.0 for each completion whose last ``\boxed{}`` is the reference ``answer`` (math-verify), else 0.0.

    ``completions`` are texts or, from a conversational dataset, lists of messages; ``answer`` is the dataset
    column of reference answers. TRL logs the reward under this function's name (``rewards/math_answer/mean``).

    >>> math_answer(completions=["<think>2 + 2</think> so \\boxed{4}", "\\boxed{5}",
    ...                          [{"role": "assistant", "content": "\\boxed{\\frac{8}{2}}"}]],
    ...             answer=["4", "4", "4"])
    [1.0, 0.0, 1.0]
    """
    if len(answer) != len(completions):
        raise ValueError(f"{len(completions)} completions but {len(answer)} reference answers")
    out = []
    for completion, ref in zip(completions, answer, strict=True):
        text = completion_text(completion)
        out.append(1.0 if isinstance(text, str) and is_correct(_gold(str(ref)), extract_boxed(text)) else 0.0)
    return out


#: Outcome rewards by name (the config's ``rlvr_reward``; ``swe`` is the environment's, see above).
OUTCOME_REWARDS: Registry[Callable[..., Any]] = Registry("outcome reward", {
    "math": "srl_swe.train.outcome.math_answer",
})


def outcome_reward(name: str) -> Callable[..., list[float]]:
    """The reward function ``name``: a registered function as is, a registered class built once (its state,
    a cache say, lives for the run)."""
    reward = OUTCOME_REWARDS.get(name)
    return reward() if isinstance(reward, type) else reward
