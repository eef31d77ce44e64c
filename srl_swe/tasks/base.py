"""The :class:`TaskKind` interface and the text helpers every kind's prompts use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from srl_swe.actions import get_syntax
from srl_swe.schema import ToolCall, Trajectory

Message = tuple[str, str]  # (role, content); frozen-friendly, see steps.StepExample.chat()


def truncate(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` characters keeping head and tail, with a visible ``[... N characters truncated
    ...]`` marker in the middle (an observation's start says what ran, its end how it ended)."""
    if len(text) <= budget:
        return text
    cut = len(text) - budget
    marker = f"\n[... {cut} characters truncated ...]\n"
    head = (budget - len(marker)) // 2 if budget > len(marker) else 0
    tail = max(budget - len(marker) - head, 0)
    return text[:head] + marker + (text[-tail:] if tail else "")


class TaskKind:
    """One kind of task. Prompts are ``head + turns[2 * first : 2 * k]``: :meth:`head` gives the messages that
    open the prompt before step ``k`` and the index of the first expert step shown in full; :meth:`turns` the
    expert path as chat turns (two per step; none when the head already holds the path, as for math), which
    :class:`srl_swe.steps.PromptBuilder` renders once per trajectory and caches.

    ``cfg`` arguments are :class:`srl_swe.steps.StepConfig` (``window``, ``max_observation_chars``,
    ``include_thoughts``, ``syntax``)."""

    name: str = ""
    env_id: str = ""
    #: Syntaxes this kind's actions can be written in; the first is the default.
    syntaxes: tuple[str, ...] = ()
    #: What an action of this kind is (said when a syntax that does not fit is asked for).
    actions_are: str = ""
    #: Expert steps a prompt shows by default (None: the whole prefix).
    default_window: int | None = None

    @property
    def default_syntax(self) -> str:
        return self.syntaxes[0]

    def resolve_syntax(self, syntax: str | None) -> str:
        """``syntax`` or, for None, this kind's default; a syntax the kind cannot use raises ValueError."""
        if syntax is None:
            return self.default_syntax
        get_syntax(syntax)
        if syntax not in self.syntaxes:
            raise ValueError(f"syntax={syntax!r} does not fit {self.name} tasks: use one of {', '.join(self.syntaxes)}")
        return syntax

    def step_syntax(self, syntax: str | None) -> str:
        """The syntax this kind's step examples are written in when a data set asks for ``syntax``: a kind with
        one syntax (math: ``text``) always uses it, whatever was asked for mixed data; others take ``syntax``
        (None: the default)."""
        return self.default_syntax if len(self.syntaxes) == 1 or syntax is None else syntax

    def resolve_window(self, window: int | str | None) -> int | None:
        """``"default"`` -> :attr:`default_window`; None (the whole prefix) and integers as given."""
        return self.default_window if window == "default" else window  # type: ignore[return-value]

    @staticmethod
    def first_shown(k: int, window: int | None) -> int:
        return 0 if window is None else max(0, k - window)

    # -- prompts ------------------------------------------------------------------------------------------
    def system_prompt(self, trajectories: Sequence[Trajectory], syntax: str) -> str:
        """The system prompt of a data set of this kind (the SWE one lists the tools the data uses). It may read
        only the steps' action names and argument names, in order: a streaming build passes stripped
        trajectories that keep just those (:class:`srl_swe.dataset.ToolSignatures`)."""
        raise NotImplementedError

    def head(self, t: Trajectory, k: int, system: str, cfg: Any) -> tuple[tuple[Message, ...], int]:
        raise NotImplementedError

    def turns(self, t: Trajectory, cfg: Any) -> tuple[Message, ...]:
        return ()

    def target(self, call: ToolCall, syntax: str) -> str:
        """The expert action as the text the reward compares against."""
        return get_syntax(syntax).render(call)
