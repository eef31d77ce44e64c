"""One agent episode on one task: prompts in the step environments' format, real tool calls, limits.

:class:`Episode` is the state machine shared by :func:`srl_swe.agent.loop.run_agent` (a policy drives it)
and ``SRL-SWE-Exec-v0`` (an RL learner drives it through ``step``), so both see identical prompts,
observations, limits and patches. The prompt is built exactly like SRL-SWE-v0's (system prompt listing the
tools, the issue, the last ``window`` action/observation pairs as ``OBSERVATION:`` user turns), so a policy
trained with SRL acts here on the context it was trained on; the full transcript is kept as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from srl_swe.actions import get_syntax, parse_output, with_prefill
from srl_swe.errors import ActionParseError
from srl_swe.runtime.base import REPO_DIR, Runtime, SandboxError
from srl_swe.schema import ToolCall
from srl_swe.steps import render_chatml
from srl_swe.swebench.prediction import Prediction, make_prediction
from srl_swe.tasks import truncate
from srl_swe.tasks.swe import SWE
from srl_swe.tools import ToolBox, ToolError

#: Why an episode ended. Only "submitted" means the agent chose to stop; on the others the current diff is
#: submitted for it (SWE-agent's autosubmission), so every episode yields a prediction. "context_exceeded": the
#: next prompt and the completion budget no longer fit the model's context (:mod:`srl_swe.models.context`;
#: prompts grow with the history, so every turn is checked); the error says by how much.
EXIT_STATUSES = ("submitted", "max_steps", "max_tokens", "timeout", "format_error_limit", "runtime_error",
                 "context_exceeded")
FORMAT_ERROR = ("Your output was not in the expected format ({reason}). Every reply must be your reasoning "
                "inside <think>...</think> followed by exactly one action and nothing else, for example:\n"
                "<think>\nI will list the files of the repository.\n</think>\n{example}")


def check_options(syntax: str, max_steps: int, window: int | None, max_format_errors: int) -> None:
    """Reject bad episode settings up front (an env checks them at construction, before any sandbox)."""
    get_syntax(syntax)
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if window is not None and window < 0:
        raise ValueError(f"window must be None (full history) or >= 0, got {window}")
    if max_format_errors < 1:
        raise ValueError(f"max_format_errors must be >= 1, got {max_format_errors}")


@dataclass(frozen=True)
class ExecStep:
    """One policy output and what it did. ``action`` is ``None`` when the output broke the format."""

    output: str
    action: ToolCall | None
    thought: str
    observation: str
    seconds: float


@dataclass
class AgentResult:
    """``prediction`` is the SWE-bench prediction (:class:`~srl_swe.swebench.prediction.Prediction`: grade it
    with the harness); ``messages`` the full chat transcript (raw outputs, untruncated observations)."""

    prediction: Prediction
    messages: list[dict[str, str]]
    steps: tuple[ExecStep, ...]
    exit_status: str
    total_tokens: int | None
    seconds: float
    error: str | None = None

    @property
    def instance_id(self) -> str:
        return self.prediction.instance_id

    @property
    def patch(self) -> str:
        return self.prediction.model_patch

    def to_chat_record(self, **extra: Any) -> dict[str, Any]:
        """The episode as a SWE-smith XML chat record (what :func:`srl_swe.trajectories.load_trajectories`
        reads): each assistant turn is the thought then the call in the xml syntax, each observation a
        ``OBSERVATION:`` user turn. Outputs that broke the format are left out, as the loaders do."""
        messages = self.messages[:2]
        for s in self.steps:
            if s.action is not None:
                action = get_syntax("xml").render(s.action)
                messages.append({"role": "assistant", "content": f"{s.thought}\n\n{action}"})
                messages.append({"role": "user", "content": "OBSERVATION:\n" + s.observation})
        return {"instance_id": self.instance_id, **extra, "messages": messages}


@dataclass
class Episode:
    """A task being solved in ``runtime``. Call :meth:`step` with each model output until :attr:`done`."""

    instance_id: str
    problem_statement: str
    runtime: Runtime
    syntax: str = "xml"
    max_steps: int = 50
    max_tokens: int | None = None
    max_seconds: float | None = None
    max_format_errors: int = 3
    command_timeout: float | None = None
    window: int | None = SWE.default_window
    max_observation_chars: int = 4000
    include_thoughts: bool = False
    require_think: bool = True
    prefill: str = ""  # the start of every reply (THINK_PREFILL); the output stepped is the whole reply
    model_name: str = "srl-swe"
    steps: list[ExecStep] = field(default_factory=list)
    exit_status: str | None = None
    patch: str | None = None
    error: str | None = None
    total_tokens: int = 0
    format_errors: int = 0  # consecutive, as SWE-agent counts its requeries

    def __post_init__(self) -> None:
        check_options(self.syntax, self.max_steps, self.window, self.max_format_errors)
        self.toolbox = ToolBox(self.runtime, timeout=self.command_timeout)
        self.system = SWE.agent_system_prompt(self.syntax)
        self.task = SWE.task_message(self.problem_statement, repo=REPO_DIR)
        self._turns: list[tuple[str, str]] = []  # (assistant turn as the prompt shows it, observation)
        self.started = time.monotonic()

    @property
    def done(self) -> bool:
        return self.exit_status is not None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- prompts -----------------------------------------------------------------------------------
    def prompt(self) -> list[dict[str, str]]:
        """What the policy sees now: system, task (with a note when history is cut), the last turns."""
        first = SWE.first_shown(len(self._turns), self.window)
        task = SWE.task_message(self.problem_statement, omitted=first, repo=REPO_DIR)
        out = [{"role": "system", "content": self.system}, {"role": "user", "content": task}]
        for action, obs in self._turns[first:]:
            out.extend({"role": r, "content": c} for r, c in SWE.turn(action, obs, self.max_observation_chars))
        return with_prefill(out, self.prefill)

    def prompt_text(self) -> str:
        return render_chatml([(m["role"], m["content"]) for m in self.prompt()])

    def transcript(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}, {"role": "user", "content": self.task}]
        for s in self.steps:
            out.append({"role": "assistant", "content": s.output})
            out.append({"role": "user", "content": "OBSERVATION:\n" + s.observation})
        return out

    # -- acting ------------------------------------------------------------------------------------
    def step(self, output: str, tokens: int | None = None) -> ExecStep:
        """Execute one model output. A malformed one gets an observation explaining the format."""
        if self.done:
            raise RuntimeError(f"the episode ended ({self.exit_status}); start a new one")
        start = time.monotonic()
        self.total_tokens += tokens or 0
        try:
            parsed = parse_output(output, self.syntax, self.require_think)
        except ActionParseError as e:
            self.format_errors += 1
            example = get_syntax(self.syntax).render(ToolCall.bash("ls"))
            obs = FORMAT_ERROR.format(reason=e, example=example)
            record = ExecStep(output, None, "", obs, time.monotonic() - start)
            self._turns.append((truncate(output, self.max_observation_chars), obs))
        else:
            self.format_errors = 0
            try:
                result = self.toolbox.run(parsed.action)
            except SandboxError as e:  # the sandbox itself failed: nothing more can run in it
                obs = f"The sandbox failed: {e}"
                record = ExecStep(output, parsed.action, parsed.thought, obs, time.monotonic() - start)
                self.steps.append(record)
                self._end("runtime_error", error=str(e))
                return record
            obs = result.observation
            record = ExecStep(output, parsed.action, parsed.thought, obs, time.monotonic() - start)
            shown = get_syntax(self.syntax).render(parsed.action)
            if self.include_thoughts and parsed.thought:
                shown = f"<think>\n{parsed.thought}\n</think>\n{shown}"
            self._turns.append((shown, obs))
            if result.done:
                self.steps.append(record)
                self.patch, self.exit_status = result.patch or "", "submitted"
                return record
        self.steps.append(record)
        self.check_limits()
        return record

    def check_limits(self) -> str | None:
        """End the episode (autosubmitting the diff) if a limit is reached; returns the exit status."""
        if self.done:
            return self.exit_status
        if self.format_errors >= self.max_format_errors:
            self._end("format_error_limit")
        elif len(self.steps) >= self.max_steps:
            self._end("max_steps")
        elif self.max_tokens is not None and self.total_tokens >= self.max_tokens:
            self._end("max_tokens")
        elif self.max_seconds is not None and self.elapsed >= self.max_seconds:
            self._end("timeout")
        return self.exit_status

    def exceed_context(self, error: Exception) -> None:
        """End the episode because its next prompt does not fit the model's context (``context_exceeded``, with
        the error); the diff so far is submitted, as on every limit."""
        if not self.done:
            self._end("context_exceeded", error=str(error))

    def _end(self, status: str, error: str | None = None) -> None:
        self.exit_status, self.error = status, error
        try:
            self.patch = self.toolbox.diff()
        except (ToolError, SandboxError) as e:
            self.patch = ""
            self.error = self.error or f"could not collect the diff: {e}"

    def result(self, count_tokens: bool = True) -> AgentResult:
        if not self.done:
            raise RuntimeError("the episode is still running")
        prediction = make_prediction(self.instance_id, self.patch, self.model_name)
        return AgentResult(prediction, self.transcript(), tuple(self.steps), self.exit_status or "",
                           self.total_tokens if count_tokens else None, self.elapsed, self.error)
