"""Trajectory -> step examples: one example per expert action.

For expert action k (0-based) the prompt is the system prompt, the task, and the expert's path up to
k: every earlier action with its real observation (``window=None``, the full prefix) or only the
last ``window`` action/observation pairs (the paper's SWE setting is ``window=2``); omitted pairs are
announced in the task message so the model knows the history is partial. The target is action k
rendered canonically in the environment's action syntax.

Math follows the paper's construction: a solution of N steps gives N examples; example k shows the
problem and steps 1..k and asks for step k+1 (the expert step is the action, there are no
observations). Long observations are cut to ``max_observation_chars`` keeping head and tail, with
a visible ``[... N characters truncated ...]`` marker. What differs between kinds of task (system prompt,
task message, context window, syntax, target text) is the kind's (:mod:`srl_swe.tasks`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from srl_swe.actions import SYNTAXES, get_syntax
from srl_swe.schema import ToolCall, Trajectory
from srl_swe.tasks import TASKS, Message, TaskKind

ASSISTANT_OPEN = "<|im_start|>assistant\n"
TURN_CACHE_SIZE = 4096  # trajectories whose rendered turns are kept


@dataclass(frozen=True)
class StepConfig:
    syntax: str = "xml"
    window: int | None = None  # None: full prefix; k: the last k action/observation pairs
    max_observation_chars: int = 4000
    include_thoughts: bool = False  # show the expert's earlier reasoning inside <think> in the prefix

    def __post_init__(self) -> None:
        get_syntax(self.syntax)
        if self.window is not None and self.window < 0:
            raise ValueError(f"window must be None (full prefix) or >= 0, got {self.window}")
        if self.max_observation_chars < 64:
            raise ValueError(f"max_observation_chars must be >= 64, got {self.max_observation_chars}")

    @classmethod
    def for_task(cls, kind: str, syntax: str | None = None, window: int | str | None = "default",
                 **options: object) -> StepConfig:
        """The config of ``kind``'s step examples: its syntax (``syntax`` checked against it, None: its
        default) and its window (``"default"``: the kind's, e.g. the paper's last 2 pairs for swe)."""
        task = TASKS.get(kind)
        return cls(syntax=task.step_syntax(syntax), window=task.resolve_window(window), **options)  # type: ignore


@dataclass(frozen=True)
class StepExample:
    example_id: str
    task_id: str
    trajectory_index: int
    step_index: int
    num_steps: int
    messages: tuple[Message, ...]
    expert_action: str  # canonical rendering in `syntax`: what the reward compares against
    expert_call: ToolCall
    syntax: str
    kind: str
    source_format: str
    answer: str | None = None

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


class PromptBuilder:
    """Prompts for a fixed set of trajectories, each built by its task kind (:mod:`srl_swe.tasks`); a kind's
    system prompt is made once over all of its trajectories (the SWE one lists the tools of the whole set)."""

    def __init__(self, trajectories: Sequence[Trajectory], cfg: StepConfig | None = None,
                 system: dict[str, str] | None = None):
        """``system``: each kind's system prompt made ahead over a larger set than ``trajectories`` (a streaming
        build gives one file's trajectories at a time; :class:`srl_swe.dataset.ToolSignatures`)."""
        self.trajectories = list(trajectories)
        self.cfg = cfg or StepConfig()
        self._kinds = [TASKS.get(t.kind) for t in self.trajectories]
        by_kind: dict[str, list[Trajectory]] = {}
        for t in self.trajectories:
            by_kind.setdefault(t.kind, []).append(t)
        self._syntax = {name: TASKS.get(name).step_syntax(self.cfg.syntax) for name in by_kind}
        for name, trajs in by_kind.items():
            check_expressible(trajs, self._syntax[name])
        self.system = {name: system[name] if system and name in system
                       else TASKS.get(name).system_prompt(trajs, self._syntax[name]) for name, trajs in by_kind.items()}
        self._system_chatml = {text: chatml_segment(("system", text)) for text in self.system.values()}
        # Configs per kind (its syntax): the kind renders its turns and targets with them.
        self._cfgs = {name: StepConfig(syntax, self.cfg.window, self.cfg.max_observation_chars,
                                       self.cfg.include_thoughts) for name, syntax in self._syntax.items()}
        self._targets: dict[tuple[int, int], str] = {}  # (trajectory, step) -> expert rendering
        # Per-trajectory turns and their ChatML text, rendered and truncated once: an environment asks
        # for a prefix at every step (G times per step under GRPO). LRU-bounded to keep memory flat.
        self._turns: OrderedDict[int, tuple[tuple[Message, ...], tuple[str, ...]]] = OrderedDict()

    def kind_of(self, i: int) -> TaskKind:
        return self._kinds[i]

    def _cached_turns(self, i: int) -> tuple[tuple[Message, ...], tuple[str, ...]]:
        hit = self._turns.get(i)
        if hit is None:
            t = self.trajectories[i]
            turns = self._kinds[i].turns(t, self._cfgs[t.kind])
            hit = (turns, tuple(chatml_segment(m) for m in turns))
            self._turns[i] = hit
            if len(self._turns) > TURN_CACHE_SIZE:
                self._turns.popitem(last=False)
        else:
            self._turns.move_to_end(i)
        return hit

    def _head(self, i: int, k: int) -> tuple[tuple[Message, ...], int]:
        t = self.trajectories[i]
        return self._kinds[i].head(t, k, self.system[t.kind], self._cfgs[t.kind])

    def prompt(self, i: int, k: int) -> tuple[Message, ...]:
        """The prompt before expert action ``k``; ``k == len(steps)`` gives the whole path (episode end)."""
        head, first = self._head(i, k)
        return (*head, *self._cached_turns(i)[0][2 * first : 2 * k])

    def prompt_text(self, i: int, k: int) -> str:
        """``render_chatml(self.prompt(i, k))``, assembled from cached segments."""
        head, first = self._head(i, k)
        segments = self._cached_turns(i)[1][2 * first : 2 * k]
        opening = "".join(self._system_chatml[m[1]] if m[0] == "system" and m[1] in self._system_chatml
                          else chatml_segment(m) for m in head)
        return "".join((opening, *segments, ASSISTANT_OPEN))

    def syntax_of(self, i: int) -> str:
        """The action syntax of trajectory ``i``'s examples (its kind's, e.g. ``text`` for math)."""
        return self._syntax[self.trajectories[i].kind]

    def target(self, i: int, k: int) -> str:
        """The expert action ``k`` of trajectory ``i`` rendered canonically (cached; trajectories are frozen)."""
        text = self._targets.get((i, k))
        if text is None:
            t = self.trajectories[i]
            text = self._targets[(i, k)] = self._kinds[i].target(t.steps[k].action, self._syntax[t.kind])
        return text

    def example(self, i: int, k: int) -> StepExample:
        t = self.trajectories[i]
        return StepExample(f"{t.id}#{k}", t.id, i, k, len(t.steps), self.prompt(i, k), self.target(i, k),
                           t.steps[k].action, self.syntax_of(i), t.kind, t.source_format, t.task.answer)

    def examples(self) -> list[StepExample]:
        return [self.example(i, k) for i, t in enumerate(self.trajectories) for k in range(len(t.steps))]


def check_expressible(trajectories: Sequence[Trajectory], syntax: str) -> None:
    """Refuse, before any prompt is built, a syntax that cannot write every expert action of the data (``bash``
    writes only ``bash(command)``, ``text`` only math steps), naming an action it cannot write and the
    syntaxes that can write them all. Otherwise the first such action would fail at ``reset``."""
    syn = get_syntax(syntax)
    bad = next(((t, k) for t in trajectories for k, s in enumerate(t.steps) if not syn.expresses(s.action)), None)
    if bad is None:
        return
    t, k = bad
    call = t.steps[k].action
    able = [name for name in SYNTAXES.names()
            if all(get_syntax(name).expresses(s.action) for u in trajectories for s in u.steps)]
    only = {"bash": "bash(command=...)", "text": "text(content=...)"}.get(syntax, "some calls")
    args = ", ".join(name[:40] for name, _ in call.arguments[:4])
    raise ValueError(f"syntax={syntax!r} cannot write this data: it writes only {only}, and action {k} of "
                     f"{t.id[:80]} is {call.name[:60]}({args}). Syntaxes that can write every action: "
                     f"{', '.join(able) or 'none'}")


def build_steps(trajectories: Sequence[Trajectory], cfg: StepConfig | None = None) -> list[StepExample]:
    """Every step example of every trajectory, in trajectory then step order."""
    return PromptBuilder(trajectories, cfg).examples()


def chatml_segment(message: Message) -> str:
    return f"<|im_start|>{message[0]}\n{message[1]}<|im_end|>\n"


def render_chatml(messages: Sequence[Message] | Sequence[dict[str, str]]) -> str:
    """The prompt as text in ChatML (Qwen's template), ending with an open assistant turn."""
    pairs = ((m["role"], m["content"]) if isinstance(m, dict) else m for m in messages)
    return "".join(chatml_segment(m) for m in pairs) + ASSISTANT_OPEN
