"""The SRL step reward: the one scoring path for environments, trainers and evaluation.

``reward = SequenceMatcher(None, predicted, expert).ratio()`` – difflib's ``2M/T`` – computed on the
canonical renderings of the predicted and the expert action; the ``<think>`` monologue is never
scored. An output that is not ``<think>…</think>`` followed by exactly one action scores
``FORMAT_PENALTY`` (−1). This matches the SRL paper (arXiv 2510.25992, eq. 1).

Speed: the ratio is computed by ``srl_swe._fastdiff``, a C port of CPython's difflib algorithm
built with the package (about 25x the standard library on real actions, ``benchmarks/``). Where it could
not be compiled, ``cydifflib`` and then the standard library compute the same value, more slowly.
All three give bit-identical floats (tested against ``difflib`` on real and random inputs).

Bound: difflib's time grows with the length of the predicted text times the square of how often its
characters recur in the expert (up to 1 % of its length before autojunk drops them), i.e. cubically in
the worst case: ``"x" * 65536`` against 65,536 random printable characters takes 14 s in cydifflib. So
each side is cut to ``MAX_SCORED_CHARS`` (12,288) before matching; the worst case we could build then
takes 0.15 s in C (1.5 s in cydifflib). Every real expert action we have seen is below the cap (the
longest in the shared data renders to about 9.5 k characters), so rewards on real data are exactly the
paper's. Parsing is linear in the output (:mod:`srl_swe.actions`), so any output up to the action space's
maximum size (``MAX_OUTPUT_CHARS``, 2**20 characters) is scored in under 1 s of CPU time, adversarial ones
included: unclosed tags, 30k parameters, JSON nested past ``MAX_JSON_DEPTH``, many ``<think>`` tags, mixed
syntaxes (``tests/test_bounded_parsing.py``; the worst, 30k parameters, takes about 0.1 s). Whatever the output, the
result is a score: a malformed one gets ``FORMAT_PENALTY`` and the reason, never an exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from srl_swe.actions import ActionSyntax, get_syntax, parse_output
from srl_swe.errors import ActionParseError
from srl_swe.registry import Registry
from srl_swe.schema import ToolCall

FORMAT_PENALTY = -1.0
MAX_SCORED_CHARS = 12_288


def _ratio_backend() -> tuple[str, Callable[[str, str], float]]:
    try:
        from srl_swe._fastdiff import ratio

        return "srl_swe._fastdiff", ratio
    except ImportError:
        pass
    try:  # a compiled port of difflib: same algorithm, same floats
        from cydifflib import SequenceMatcher
    except ImportError:  # pragma: no cover - only without both compiled paths
        SequenceMatcher = difflib.SequenceMatcher
    return SequenceMatcher.__module__, lambda a, b: SequenceMatcher(None, a, b).ratio()


RATIO_BACKEND, _ratio = _ratio_backend()


def sequence_similarity(predicted: str, expert: str, max_chars: int = MAX_SCORED_CHARS) -> float:
    """difflib ``SequenceMatcher(None, predicted, expert).ratio()`` (the paper's 2M/T)."""
    return _ratio(predicted[:max_chars], expert[:max_chars])


def lcs_similarity(predicted: str, expert: str, max_chars: int = MAX_SCORED_CHARS) -> float:
    """2·LCS/T with a true longest common subsequence (rapidfuzz Indel). NOT the paper's metric:
    difflib's matching blocks are greedy and can be shorter than the LCS."""
    try:
        from rapidfuzz.distance import Indel
    except ImportError as e:  # pragma: no cover
        raise ImportError("metric='lcs' needs rapidfuzz: pip install 'srl-swe[lcs]'") from e
    return Indel.normalized_similarity(predicted[:max_chars], expert[:max_chars])


#: Similarity metrics by name: ``f(predicted, expert) -> float`` in [0, 1]. A new one is a function plus one
#: line here, or a dotted path (``metric="my_pkg.metrics.jaccard"``).
METRICS: Registry[Callable[[str, str], float]] = Registry("metric", {
    "sequence_matcher": "srl_swe.rewards.sequence_similarity",
    "lcs": "srl_swe.rewards.lcs_similarity",
})


def get_metric(name: str) -> Callable[[str, str], float]:
    """The metric ``name`` (the registry caches it: a hit is one dict lookup, as score_output runs per output)."""
    return METRICS.get(name)


@dataclass(frozen=True)
class Score:
    """One scored output. ``similarity`` is None when the format was broken."""

    reward: float
    valid: bool
    reason: str
    similarity: float | None
    predicted: str | None
    expert: str
    thought_chars: int = 0

    def as_dict(self) -> dict[str, Any]:
        # Every field is a str/float/bool/None, so a shallow copy of the instance dict equals
        # dataclasses.asdict, which deep-copies field by field (5.4 us against 0.2 us; env.step calls it).
        return dict(self.__dict__)


def score_output(
    output: object,
    expert: ToolCall | str,
    syntax: str | ActionSyntax = "xml",
    metric: str = "sequence_matcher",
    require_think: bool = True,
) -> Score:
    """Score a model output against the expert action (a ToolCall, or its canonical rendering).

    ``require_think=False`` lets an output without a ``<think>`` block count as all action (see
    :func:`srl_swe.actions.parse_output`); the paper's setting, and the default, is True.
    """
    syn = get_syntax(syntax)
    expert_text = expert if isinstance(expert, str) else syn.render(expert)
    try:
        parsed, predicted = _parse_and_render(output, syn, require_think)
    except ActionParseError as e:
        return Score(FORMAT_PENALTY, False, str(e), None, None, expert_text)
    sim = METRICS.get(metric)(predicted, expert_text)  # get_metric without its call frame: per scored output
    return Score(sim, True, "ok", sim, predicted, expert_text, len(parsed.thought))


def _parse_and_render(output: object, syn: ActionSyntax, require_think: bool):
    parsed = parse_output(output, syn, require_think)
    return parsed, syn.render(parsed.action)


def format_violation(output: object, syntax: str | ActionSyntax = "xml", require_think: bool = True) -> bool:
    """True when :func:`score_output` would give ``output`` the format penalty (same parse and render; the
    similarity is not computed)."""
    try:
        _parse_and_render(output, get_syntax(syntax), require_think)
    except ActionParseError:
        return True
    return False


def completion_text(completion: Any, prefill: str = "") -> Any:
    """TRL passes a completion as text, or (conversational) as a list of messages: take the text. ``prefill``:
    the start of the reply that the prompt already held (THINK_PREFILL), put back so the whole reply is scored;
    a completion that is not text is returned as it is (scored as a broken format, never an error)."""
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        completion = completion[-1].get("content", "")
    return prefill + completion if prefill and isinstance(completion, str) else completion


class SRLReward:
    """TRL reward function: ``reward_funcs=[SRLReward()]`` in ``GRPOTrainer``.

    TRL calls ``f(prompts=..., completions=..., **dataset_columns)``; the step dataset written by
    ``srl-swe data build`` has an ``expert_action`` column (canonical rendering) and a ``syntax`` column.
    """

    def __init__(self, syntax: str = "xml", metric: str = "sequence_matcher", require_think: bool = True,
                 prefill: str = ""):
        # prefill: the start of every reply that the prompt already holds (THINK_PREFILL); TRL's completion is
        # only what the model wrote after it, and the reply scored is the whole one.
        self.syntax, self.metric, self.require_think, self.prefill = syntax, metric, require_think, prefill
        get_metric(metric)
        self.__name__ = f"srl_{metric}"  # TRL logs rewards under the function's __name__

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (),
                 expert_action: Sequence[str] = (), syntax: Sequence[str] | None = None, **_: Any) -> list[float]:
        if len(expert_action) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(expert_action)} expert actions")
        syntaxes = syntax or [self.syntax] * len(completions)
        return [
            score_output(completion_text(c, self.prefill), e, s, self.metric, self.require_think).reward
            for c, e, s in zip(completions, expert_action, syntaxes, strict=True)
        ]
