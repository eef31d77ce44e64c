"""Trajectory -> step examples: one example per expert action.

For expert action k (0-based) the prompt is the system prompt, the task, and the expert's path up to
k: every earlier action with its real observation (``window=None``, the full prefix) or only the
last ``window`` action/observation pairs (the paper's SWE setting is ``window=2``); omitted pairs are
announced in the task message so the model knows the history is partial. The target is action k
rendered canonically in the environment's action syntax.

Math follows the paper's construction: a solution of N steps gives N examples; example k shows the
problem and steps 1..k and asks for step k+1 (the expert step is the action, there are no
observations). Long observations are cut to ``max_observation_chars`` keeping head and tail, with
a visible ``[... N characters truncated ...]`` marker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from srl_swe.actions import get_syntax
from srl_swe.schema import ToolCall, Trajectory

Message = tuple[str, str]  # (role, content); frozen-friendly, see StepExample.chat()
# The paper's context per task: issue + last 2 action/observation pairs for SWE, every previous step for math.
DEFAULT_WINDOW: dict[str, int | None] = {"swe": 2, "math": None}
ASSISTANT_OPEN = "<|im_start|>assistant\n"
TURN_CACHE_SIZE = 4096  # trajectories whose rendered turns are kept

# Descriptions for the tools of the formats we train on; any other tool is listed with the
# parameter names seen in the data.
KNOWN_TOOLS = {
    "bash": "Run a shell command in the repository and return its output.",
    "str_replace_editor": "View, create and edit files: command is one of view, create, str_replace, insert, "
    "undo_edit; path is absolute; view_range, file_text, old_str, new_str, insert_line as needed.",
    "submit": "Finish: submit the current changes to the repository as the solution.",
}

SWE_SYSTEM = """You are a software engineering agent. You solve an issue in a code repository by taking one \
action at a time; after each action you see its output.

Tools:
{tools}

Every reply must be your reasoning inside <think>...</think> followed by exactly one action, written as:
{example}
Write nothing after the action."""

MATH_SYSTEM = """You solve math problems one step at a time. You see the problem and the steps written so far.
Every reply must be your reasoning inside <think>...</think> followed by only the next step of the solution."""


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


def truncate(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    cut = len(text) - budget
    marker = f"\n[... {cut} characters truncated ...]\n"
    head = (budget - len(marker)) // 2 if budget > len(marker) else 0
    tail = max(budget - len(marker) - head, 0)
    return text[:head] + marker + (text[-tail:] if tail else "")


def tool_specs(trajectories: Iterable[Trajectory]) -> dict[str, tuple[str, ...]]:
    """Tool name -> parameter names, in first-seen order, over a whole data set (deterministic)."""
    specs: dict[str, dict[str, None]] = {}
    for t in trajectories:
        for step in t.steps:
            params = specs.setdefault(step.action.name, {})
            for k, _ in step.action.arguments:
                params.setdefault(k, None)
    return {name: tuple(p) for name, p in specs.items()}


def swe_system_prompt(specs: dict[str, tuple[str, ...]], syntax: str) -> str:
    lines = []
    for name, params in specs.items():
        desc = KNOWN_TOOLS.get(name, "")
        lines.append(f"- {name}({', '.join(params)})" + (f": {desc}" if desc else ""))
    example_call = ToolCall.bash("ls") if syntax == "bash" else ToolCall.make("bash", command="ls")
    return SWE_SYSTEM.format(tools="\n".join(lines), example=get_syntax(syntax).render(example_call))


def _prefix_action(call: ToolCall, thought: str, cfg: StepConfig) -> str:
    text = get_syntax(cfg.syntax).render(call)
    return f"<think>\n{thought}\n</think>\n{text}" if cfg.include_thoughts and thought else text


def swe_turns(t: Trajectory, cfg: StepConfig) -> tuple[Message, ...]:
    """The expert path as chat turns: the action then its (truncated) observation, for every step."""
    turns: list[Message] = []
    for step in t.steps:
        turns.append(("assistant", _prefix_action(step.action, step.thought, cfg)))
        turns.append(("user", "OBSERVATION:\n" + truncate(step.observation, cfg.max_observation_chars)))
    return tuple(turns)


def _first_shown(k: int, cfg: StepConfig) -> int:
    return 0 if cfg.window is None else max(0, k - cfg.window)


def swe_task_message(t: Trajectory, first: int) -> Message:
    task = f"Solve this issue in the repository:\n\n<issue>\n{t.task.problem_statement}\n</issue>"
    note = f"\n\n[{first} earlier actions and their outputs are omitted]" if first else ""
    return ("user", task + note)


def swe_prompt(t: Trajectory, k: int, system: str, cfg: StepConfig,
               turns: tuple[Message, ...] | None = None) -> tuple[Message, ...]:
    """The prompt before expert action ``k``; ``k == len(t.steps)`` gives the whole path (episode end)."""
    turns = swe_turns(t, cfg) if turns is None else turns
    first = _first_shown(k, cfg)
    return (("system", system), swe_task_message(t, first), *turns[2 * first : 2 * k])


def math_prompt(t: Trajectory, k: int, cfg: StepConfig) -> tuple[Message, ...]:
    """Problem and steps 1..k, asking for step k+1."""
    texts = [s.action.get("content") or "" for s in t.steps]
    first = _first_shown(k, cfg)
    shown = "\n".join(f"Step {i + 1}: {texts[i]}" for i in range(first, k)) or "(none yet)"
    omitted = f"[steps 1-{first} omitted]\n" if first else ""
    user = f"Problem:\n{t.task.problem_statement}\n\nSteps so far:\n{omitted}{shown}\n\nWrite step {k + 1}."
    return (("system", MATH_SYSTEM), ("user", user))


class PromptBuilder:
    """Prompts for a fixed set of trajectories (the SWE system prompt lists the tools of the whole set)."""

    def __init__(self, trajectories: Sequence[Trajectory], cfg: StepConfig | None = None):
        self.trajectories = list(trajectories)
        self.cfg = cfg or StepConfig()
        swe = [t for t in self.trajectories if t.kind == "swe"]
        self.syntax = get_syntax(self.cfg.syntax)
        check_expressible(swe, self.cfg.syntax)
        self.system = swe_system_prompt(tool_specs(swe), self.cfg.syntax) if swe else ""
        self._targets: dict[tuple[int, int], str] = {}  # (trajectory, step) -> expert rendering
        # Per-trajectory turns and their ChatML text, rendered and truncated once: an environment asks
        # for a prefix at every step (G times per step under GRPO). LRU-bounded to keep memory flat.
        self._turns: OrderedDict[int, tuple[tuple[Message, ...], tuple[str, ...]]] = OrderedDict()
        self._system_chatml = chatml_segment(("system", self.system))

    def _cached_turns(self, i: int) -> tuple[tuple[Message, ...], tuple[str, ...]]:
        hit = self._turns.get(i)
        if hit is None:
            turns = swe_turns(self.trajectories[i], self.cfg)
            hit = (turns, tuple(chatml_segment(m) for m in turns))
            self._turns[i] = hit
            if len(self._turns) > TURN_CACHE_SIZE:
                self._turns.popitem(last=False)
        else:
            self._turns.move_to_end(i)
        return hit

    def prompt(self, i: int, k: int) -> tuple[Message, ...]:
        t = self.trajectories[i]
        if t.kind == "math":
            return math_prompt(t, k, self.cfg)
        return swe_prompt(t, k, self.system, self.cfg, self._cached_turns(i)[0])

    def prompt_text(self, i: int, k: int) -> str:
        """``render_chatml(self.prompt(i, k))``, assembled from cached segments."""
        t = self.trajectories[i]
        if t.kind == "math":
            return render_chatml(math_prompt(t, k, self.cfg))
        first = _first_shown(k, self.cfg)
        segments = self._cached_turns(i)[1][2 * first : 2 * k]
        return "".join((self._system_chatml, chatml_segment(swe_task_message(t, first)), *segments, ASSISTANT_OPEN))

    def syntax_of(self, i: int) -> str:
        """The action syntax of trajectory ``i``'s examples: ``text`` for math, else the configured one."""
        return "text" if self.trajectories[i].kind == "math" else self.cfg.syntax

    def target(self, i: int, k: int) -> str:
        """The expert action ``k`` of trajectory ``i`` rendered canonically (cached; trajectories are frozen)."""
        text = self._targets.get((i, k))
        if text is None:
            t = self.trajectories[i]
            call = t.steps[k].action
            text = (call.get("content") or "") if t.kind == "math" else self.syntax.render(call)
            self._targets[(i, k)] = text
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
    able = [name for name in ("xml", "qwen", "bash", "text")
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
