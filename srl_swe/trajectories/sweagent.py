"""The SWE-agent format: ``.traj`` files (xml, default, function-calling and str_replace_editor variants; SWE-smith).

The ``trajectory`` list holds each step's raw action, thought and observation. Function-calling
variants also record the structured call in the ``history`` assistant turns (``tool_calls``); when
they line up one-to-one with the trajectory we keep the structured call, otherwise the action is
what SWE-agent really ran: a command line in its shell (its ACI commands such as ``open`` or
``edit 1:1 ... end_of_edit`` are shell functions), i.e. ``bash(command=...)``.
"""

from __future__ import annotations

from typing import Any

from srl_swe.actions import tool_call_from_json
from srl_swe.errors import ActionParseError, TrajectoryFormatError
from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.trajectories.chat import walk_messages
from srl_swe.trajectories.io import loads, message_text, problem_from_task_message, require


def _replay_config(obj: dict) -> dict:
    rc = obj.get("replay_config")
    if isinstance(rc, str):
        try:
            rc = loads(rc, "replay_config")  # depth-checked like the file: its ids are str()-ed later
        except TrajectoryFormatError:  # not JSON, a >4300-digit integer, too deep: no replay config
            return {}
    return rc if isinstance(rc, dict) else {}


def _history_calls(history: list[Any]) -> list[ToolCall | None]:
    calls: list[ToolCall | None] = []
    for msg in history:
        if not isinstance(msg, dict) or msg.get("role") != "assistant" or "action" not in msg:
            continue
        tcs = msg.get("tool_calls")
        call = None
        if isinstance(tcs, list) and len(tcs) == 1 and isinstance(tcs[0], dict):
            try:
                call = tool_call_from_json(tcs[0].get("function", tcs[0]))
            except ActionParseError:
                call = None
        calls.append(call)
    return calls


RECORDS = False  # a whole file only
EXPECTED = 'a SWE-agent .traj ({"trajectory": [...]} or {"history": [...]})'


def detect(obj: Any) -> bool:
    # "history" beside "messages" is a chat transcript (mini-swe-agent, a chat record), not a SWE-agent file.
    return isinstance(obj, dict) and ("trajectory" in obj or ("history" in obj and "messages" not in obj))


def load(obj: Any, source: str, record: str | int | None, default_id: str) -> Trajectory:
    if not isinstance(obj, dict):
        raise TrajectoryFormatError(source, "a JSON object (SWE-agent .traj)", record, got=type(obj).__name__)
    history = obj.get("history") if isinstance(obj.get("history"), list) else []
    rc = _replay_config(obj)
    ps = rc.get("problem_statement") if isinstance(rc.get("problem_statement"), dict) else {}
    repo = (rc.get("env") or {}).get("repo") if isinstance(rc.get("env"), dict) else None
    info = obj.get("info") if isinstance(obj.get("info"), dict) else {}

    if "trajectory" in obj:
        raw = require(obj, "trajectory", list, source, record)
        calls = _history_calls(history)
        aligned = len(calls) == len(raw)
        steps = []
        for i, entry in enumerate(raw):
            action = require(entry, "action", str, source, f"trajectory step {i}")
            call = calls[i] if aligned else None
            if call is None:
                call = ToolCall.bash(action.rstrip("\n"))
            thought = entry.get("thought") if isinstance(entry.get("thought"), str) else ""
            obs = message_text(entry.get("observation"), source, f"trajectory step {i}")
            steps.append(Step(call, thought.strip(), obs))
        steps_t = tuple(steps)
        task_message = next((message_text(m.get("content"), source, None) for m in history
                             if isinstance(m, dict) and m.get("role") == "user"), "")
    else:
        walked = walk_messages(require(obj, "history", list, source, record), source, record)
        steps_t, task_message = walked.steps, walked.task_message

    if not steps_t:
        raise TrajectoryFormatError(source, "at least one action", record, got="an empty trajectory")
    problem = ps.get("text") if isinstance(ps.get("text"), str) else problem_from_task_message(task_message)
    task = Task(
        instance_id=str(ps.get("id") or default_id),
        problem_statement=problem,
        repo=repo.get("repo_name") if isinstance(repo, dict) else None,
        base_commit=repo.get("base_commit") if isinstance(repo, dict) else None,
    )
    submission = info.get("submission") if isinstance(info.get("submission"), str) else None
    meta = (("exit_status", str(info.get("exit_status", ""))),)
    return Trajectory(task, steps_t, "swe-agent", source, "swe", None, submission, meta)
