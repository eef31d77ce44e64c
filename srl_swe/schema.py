"""The one trajectory schema every loader produces.

Frozen dataclasses so that trajectories can be shared between environments, datasets and worker
processes without defensive copies. Tool-call arguments are stored as an ordered tuple of
``(name, value)`` string pairs: the order is the expert's (rendering keeps it), and string values make
every action syntax round-trip to the same canonical text, which is what the reward compares.

JSON read from outside (trajectory files, a model's ``<tool_call>`` body, OpenAI ``arguments`` strings) is
refused when nested deeper than :data:`MAX_JSON_DEPTH`: ``json.loads`` accepts up to about the interpreter's
recursion limit (1000), but what we then do with the value (``json.dumps`` of an argument, ``str()`` of an
id) recurses again on a deeper stack and would raise ``RecursionError``. Real data nests at most 10 deep.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Kind = str  # a task kind: a name in srl_swe.tasks.TASKS ("swe", "math")
MAX_JSON_DEPTH = 100  # containers inside containers; far below the recursion limit, far above real data


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests lists/objects more than ``limit`` deep (iterative: never recurses)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


class JSONTooDeepError(ValueError):
    """JSON nested deeper than :data:`MAX_JSON_DEPTH` (or than ``json.loads`` itself can parse)."""


def load_json(text: str) -> Any:
    """``json.loads`` that refuses nesting deeper than :data:`MAX_JSON_DEPTH` with :class:`JSONTooDeepError`;
    malformed JSON raises ``json.JSONDecodeError`` (or ``ValueError``: a >4300-digit integer) as usual. A text
    with fewer brackets than the limit cannot be that deep, so most values are never walked."""
    try:
        value = json.loads(text)
    except RecursionError:  # deeper than the interpreter's recursion limit
        raise JSONTooDeepError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_too_deep(value):
        raise JSONTooDeepError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _as_text(value: Any) -> str:
    # Non-string argument values (e.g. view_range=[1, 20]) are kept as their JSON text, the same
    # way the SWE-smith XML transcripts print them, so every syntax sees identical strings.
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class ToolCall:
    """One action: a tool name and its arguments (ordered, string-valued)."""

    name: str
    arguments: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(cls, name: str, arguments: Mapping[str, Any] | None = None, /, **kwargs: Any) -> ToolCall:
        items = dict(arguments or {}, **kwargs)
        return cls(str(name), tuple((str(k), _as_text(v)) for k, v in items.items()))

    @classmethod
    def bash(cls, command: str) -> ToolCall:
        return cls("bash", (("command", command),))

    @classmethod
    def text(cls, content: str) -> ToolCall:
        """A free-text action (a math solution step)."""
        return cls("text", (("content", content),))

    @property
    def args(self) -> dict[str, str]:
        return dict(self.arguments)

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.arguments:
            if k == key:
                return v
        return default


@dataclass(frozen=True)
class Task:
    """What the agent is asked to do."""

    instance_id: str
    problem_statement: str
    repo: str | None = None
    base_commit: str | None = None
    answer: str | None = None  # math: the reference final answer


@dataclass(frozen=True)
class Step:
    """One expert step: the reasoning shown before the action, the action, and what it returned."""

    action: ToolCall
    thought: str = ""
    observation: str = ""


@dataclass(frozen=True)
class Trajectory:
    """An expert's path through one task.

    ``resolved`` is the outcome when known (SWE-bench harness report, or a record's own flag),
    ``None`` when nothing says. ``source`` names the file and record it was read from, so errors and
    statistics can point back to the input.
    """

    task: Task
    steps: tuple[Step, ...]
    source_format: str
    source: str
    kind: Kind = "swe"
    resolved: bool | None = None
    submission: str | None = None
    metadata: tuple[tuple[str, str], ...] = field(default=())

    @property
    def id(self) -> str:
        return self.task.instance_id

    def with_outcome(self, resolved: bool | None) -> Trajectory:
        from dataclasses import replace

        return replace(self, resolved=resolved)
