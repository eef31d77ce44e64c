"""The chat-record format (SWE-smith XML JSONL, OpenAI ``tool_calls`` JSONL) and the message walker.

A chat transcript is a list of messages: a system prompt, a task message, then assistant turns that each
hold one action and user/tool turns that hold its observation. :func:`walk_messages` is the one walker (the
mini-swe-agent and SWE-agent formats use it too); transcripts differ only in where the action is
(``tool_calls`` or text in some syntax). Assistant turns with no parseable action (an agent's format error)
are skipped together with the environment's complaint that follows them, and counted, because they are not
expert actions.

As a trajectory format (see :data:`srl_swe.trajectories.FORMATS`): a record ``{"messages": [...],
"instance_id"?, "resolved"?, ...}``, one per JSONL line, in a JSON list, a whole JSON file, or a table row
(``messages`` then often one JSON string).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from srl_swe.actions import ActionSyntax, extract_action, get_syntax, tool_call_from_json
from srl_swe.errors import ActionParseError, TrajectoryFormatError
from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.trajectories.io import loads, message_text, problem_from_task_message, require

_OBS_PREFIX = re.compile(r"\AOBSERVATION:\s*\n?")
_THOUGHT_PREFIX = re.compile(r"\ATHOUGHT:\s*")
DETECT_ORDER = ("xml", "qwen", "bash")


@dataclass
class _Pending:
    call: ToolCall
    thought: str
    call_id: str | None = None
    observation: str | None = None


@dataclass
class _Unanswered:
    """Actions still waiting for their observation, found in O(1) per lookup: scanning the whole list for every
    observation is quadratic in the number of turns."""

    steps: list[_Pending]
    first: int = 0  # every step before this one has its observation
    by_id: dict[str, deque[int]] = field(default_factory=dict)

    def add(self, pending: _Pending) -> None:
        if pending.call_id is not None:
            self.by_id.setdefault(pending.call_id, deque()).append(len(self.steps))
        self.steps.append(pending)

    def attach(self, text: str, msg: dict) -> None:
        """The observation goes to the first waiting action whose call id the message names, else to the first
        waiting action; a message after every action has its observation (a final note) is dropped."""
        ids = msg.get("tool_call_ids") or ([msg["tool_call_id"]] if msg.get("tool_call_id") else [])
        heads = [self._head(i) for i in (ids if isinstance(ids, list) else []) if isinstance(i, str)]
        heads = [h for h in heads if h is not None]
        while self.first < len(self.steps) and self.steps[self.first].observation is not None:
            self.first += 1
        target = min(heads) if heads else self.first
        if target < len(self.steps):
            self.steps[target].observation = text
            if heads:
                self.by_id[self.steps[target].call_id].popleft()  # type: ignore[index]

    def _head(self, call_id: str) -> int | None:
        waiting = self.by_id.get(call_id)
        while waiting and self.steps[waiting[0]].observation is not None:  # answered in order, without its id
            waiting.popleft()
        return waiting[0] if waiting else None


@dataclass(frozen=True)
class Walked:
    task_message: str
    system: str
    steps: tuple[Step, ...]
    format_errors: int
    syntax: str


def detect_syntax(messages: list[Any]) -> str:
    """The action syntax of a transcript without tool_calls: the first one the assistant turns use."""
    for msg in messages:
        if isinstance(msg, dict) and msg.get("role") == "assistant" and not msg.get("tool_calls"):
            try:
                text = message_text(msg.get("content"), "<detect>", None)
            except TrajectoryFormatError:
                continue  # walk_messages reports it, naming the file, record and message
            for name in DETECT_ORDER:
                try:
                    if get_syntax(name).find(text, limit=1):
                        return name
                except ActionParseError:
                    return name  # the syntax's markers are there but malformed: still that syntax
    return "tool_calls"


def walk_messages(messages: Any, source: str, record: str | int | None,
                  syntax: str | ActionSyntax | None = None) -> Walked:
    """The steps of a transcript; ``syntax`` reads the actions of assistant turns without ``tool_calls`` (a name,
    or an ActionSyntax that SYNTAXES need not list), by default the one the turns use (:func:`detect_syntax`)."""
    if not isinstance(messages, list) or not messages:
        raise TrajectoryFormatError(source, '"messages" to be a non-empty list', record)
    syntax = syntax or detect_syntax(messages)
    system, task_message = "", None
    steps: list[_Pending] = []
    unanswered = _Unanswered(steps)
    format_errors, skip_reply = 0, False
    for n, msg in enumerate(messages):
        where = f"{record}, message {n}" if record is not None else f"message {n}"
        role = require(msg, "role", str, source, where)
        text = message_text(msg.get("content"), source, where)
        if role == "system" and task_message is None:
            system = text
        elif role == "user" and task_message is None:
            task_message = text
        elif role == "assistant":
            if task_message is None:
                raise TrajectoryFormatError(source, "a user task message before the first assistant turn", where)
            calls = msg.get("tool_calls")
            if calls:
                if not isinstance(calls, list):
                    raise TrajectoryFormatError(source, '"tool_calls" to be a list', where)
                for k, tc in enumerate(calls):
                    try:
                        call = tool_call_from_json(tc.get("function", tc) if isinstance(tc, dict) else tc)
                    except ActionParseError as e:
                        raise TrajectoryFormatError(source, f"a valid tool call ({e})", where) from None
                    call_id = tc.get("id") if isinstance(tc, dict) else None
                    call_id = call_id if isinstance(call_id, str) else None  # an id is a string (hashable)
                    unanswered.add(_Pending(call, text.strip() if k == 0 else "", call_id))
                skip_reply = False
                continue
            if syntax == "tool_calls":
                format_errors, skip_reply = format_errors + 1, True
                continue
            try:
                thought, call = extract_action(text, syntax)
            except ActionParseError:
                format_errors, skip_reply = format_errors + 1, True
                continue
            unanswered.add(_Pending(call, _THOUGHT_PREFIX.sub("", thought)))
            skip_reply = False
        elif role in ("user", "tool"):
            if skip_reply:
                skip_reply = False
                continue
            unanswered.attach(_OBS_PREFIX.sub("", text), msg)
    if task_message is None:
        raise TrajectoryFormatError(source, "a user message with the task", record)
    done = tuple(Step(p.call, p.thought, p.observation or "") for p in steps)
    return Walked(task_message, system, done, format_errors, syntax if isinstance(syntax, str) else syntax.name)


def swe_trajectory(walked: Walked, record: dict, source: str, fmt: str, default_id: str) -> Trajectory:
    """The trajectory of a walked SWE transcript; ``record`` holds its instance_id, resolved, submission, ..."""
    if not walked.steps:
        raise TrajectoryFormatError(source, "at least one action", record.get("instance_id", default_id),
                                    got=f"0 actions ({walked.format_errors} malformed assistant turns)")
    problem = record.get("problem_statement")
    resolved = record.get("resolved")
    task = Task(
        instance_id=str(record.get("instance_id") or default_id),
        problem_statement=problem if isinstance(problem, str) else problem_from_task_message(walked.task_message),
        repo=record.get("repo") if isinstance(record.get("repo"), str) else None,
        base_commit=record.get("base_commit") if isinstance(record.get("base_commit"), str) else None,
    )
    meta = (("syntax", walked.syntax), ("format_errors_skipped", str(walked.format_errors)))
    return Trajectory(task, walked.steps, fmt, source, "swe",
                      resolved if isinstance(resolved, bool) else None, record.get("submission"), meta)


RECORDS = True  # a record of a JSONL file or JSON list, or a whole JSON file
EXPECTED = 'a chat record with "messages"'


def detect(obj: Any) -> bool:
    return isinstance(obj, dict) and "messages" in obj


def load(record: Any, source: str, index: str | int | None, default_id: str) -> Trajectory:
    """One record ``{"messages": [...], "instance_id"?, "resolved"?, ...}``; ``messages`` may be one JSON string
    (how SWE-smith's and other published tables store them)."""
    text = record.get("messages") if isinstance(record, dict) else None
    if isinstance(text, str) and text.lstrip().startswith("["):  # a JSON list as text (else: "expected list")
        record = {**record, "messages": loads(text, source, index)}
    messages = require(record, "messages", list, source, index)
    walked = walk_messages(messages, source, index)
    fmt = {"xml": "swe-smith-chat", "tool_calls": "openai-chat"}.get(walked.syntax, f"{walked.syntax}-chat")
    return swe_trajectory(walked, record, source, fmt, default_id)
