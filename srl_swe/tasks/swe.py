"""Software tasks: an issue in a repository, solved with tool calls (``bash``, ``str_replace_editor``, ``submit``).

This module holds the one description of the tools (:data:`TOOLS`: what the system prompt lists, what
:mod:`srl_swe.tools` accepts, and the docstrings TRL turns into the tool schema of RLVR rollouts) and the one
wording of the task, so the step environments, the agent and the RLVR rollouts show a policy the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from srl_swe.actions import get_syntax
from srl_swe.schema import ToolCall, Trajectory
from srl_swe.tasks.base import Message, TaskKind, truncate

#: mini-swe-agent's way to submit (its agents write only bash): a command starting with this echo.
SUBMIT_SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"

SYSTEM = """You are a software engineering agent. You solve an issue in a code repository by taking one \
action at a time; after each action you see its output.

Tools:
{tools}

Every reply must be your reasoning inside <think>...</think> followed by exactly one action, written as:
{example}
Write nothing after the action."""


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: tuple[Param, ...] = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.required)

    def docstring(self) -> str:
        """Google style, which ``transformers.utils.get_json_schema`` (TRL's tool schemas) reads."""
        args = "".join(f"\n    {p.name}: {p.description}" for p in self.params)
        return self.description + (f"\n\nArgs:{args}" if args else "")


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("bash", "Run a shell command in the repository and return its output.",
         (Param("command", "The bash command to run.", True),)),
    Tool("str_replace_editor", "View, create and edit files: command is one of view, create, str_replace, insert, "
         "undo_edit; path is absolute; view_range, file_text, old_str, new_str, insert_line as needed.", (
             Param("command", "One of view, create, str_replace, insert, undo_edit.", True),
             Param("path", "Absolute path of the file or directory, e.g. /testbed/src/module.py.", True),
             Param("file_text", "For create: the content of the new file."),
             Param("old_str", "For str_replace: the exact text to replace (it must occur exactly once)."),
             Param("new_str", "For str_replace: the replacement; for insert: the text to insert."),
             Param("insert_line", "For insert: the line after which new_str is inserted (0 = start of the file)."),
             Param("view_range", "For view of a file: [first, last] line numbers (last -1 = end of file)."))),
    Tool("submit", "Finish: submit the current changes to the repository as the solution."),
)}


def tool_specs(trajectories: Iterable[Trajectory]) -> dict[str, tuple[str, ...]]:
    """Tool name -> parameter names, in first-seen order, over a whole data set (deterministic)."""
    specs: dict[str, dict[str, None]] = {}
    for t in trajectories:
        for step in t.steps:
            params = specs.setdefault(step.action.name, {})
            for k, _ in step.action.arguments:
                params.setdefault(k, None)
    return {name: tuple(p) for name, p in specs.items()}


class SWEKind(TaskKind):
    name, env_id = "swe", "SRL-SWE-v0"
    syntaxes = ("xml", "qwen", "bash")
    actions_are = "SWE actions are tool calls"
    default_window = 2  # the paper's SWE context: the issue and the last 2 action/observation pairs

    def tools_prompt(self, specs: dict[str, tuple[str, ...]], syntax: str) -> str:
        """The system prompt listing ``specs`` (tool -> parameters); tools of other formats are listed with the
        parameter names seen in the data."""
        lines = []
        for name, params in specs.items():
            desc = TOOLS[name].description if name in TOOLS else ""
            lines.append(f"- {name}({', '.join(params)})" + (f": {desc}" if desc else ""))
        example_call = ToolCall.bash("ls") if syntax == "bash" else ToolCall.make("bash", command="ls")
        return SYSTEM.format(tools="\n".join(lines), example=get_syntax(syntax).render(example_call))

    def system_prompt(self, trajectories: Sequence[Trajectory], syntax: str) -> str:
        return self.tools_prompt(tool_specs(trajectories), syntax)

    def agent_system_prompt(self, syntax: str) -> str:
        """The system prompt for an agent with the real tools (with the bash syntax, only bash and the sentinel)."""
        if syntax == "bash":
            return (self.tools_prompt({"bash": ("command",)}, "bash")
                    + f"\nWhen you are done, submit your changes with the command `echo {SUBMIT_SENTINEL}`.")
        return self.tools_prompt({name: tool.param_names for name, tool in TOOLS.items()}, syntax)

    @staticmethod
    def task_message(problem: str, *, omitted: int = 0, repo: str | None = None, submit_hint: bool = False) -> str:
        """The issue as the task; ``repo`` says where it is checked out, ``omitted`` announces a cut history."""
        text = f"Solve this issue in the repository:\n\n<issue>\n{problem}\n</issue>"
        if repo:
            text += f"\n\nThe repository is checked out at {repo}."
        if submit_hint:
            text += " Use the tools to explore, edit and test, then call submit."
        return text + (f"\n\n[{omitted} earlier actions and their outputs are omitted]" if omitted else "")

    @staticmethod
    def turn(action: str, observation: str, max_chars: int) -> tuple[Message, Message]:
        """One action and its (truncated) observation as chat turns."""
        return ("assistant", action), ("user", "OBSERVATION:\n" + truncate(observation, max_chars))

    def head(self, t: Trajectory, k: int, system: str, cfg: Any) -> tuple[tuple[Message, ...], int]:
        first = self.first_shown(k, cfg.window)
        return (("system", system), ("user", self.task_message(t.task.problem_statement, omitted=first))), first

    def turns(self, t: Trajectory, cfg: Any) -> tuple[Message, ...]:
        render = get_syntax(cfg.syntax).render
        out: list[Message] = []
        for step in t.steps:
            text = render(step.action)
            if cfg.include_thoughts and step.thought:
                text = f"<think>\n{step.thought}\n</think>\n{text}"
            out.extend(self.turn(text, step.observation, cfg.max_observation_chars))
        return tuple(out)


SWE = SWEKind()
