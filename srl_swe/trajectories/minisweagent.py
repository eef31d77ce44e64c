"""The mini-swe-agent format: a ``.traj.json`` file (``trajectory_format: mini-swe-agent-1`` or ``-1.1``).

The file is a chat transcript (``messages``) plus an ``info`` object with the exit status and the submission.
Older files have no ``trajectory_format`` field; they are recognised by ``messages`` beside an ``info`` object.

* 1.x (``mini-swe-agent-1``): each assistant turn holds one ```` ```bash ```` block and each user turn its output;
  a turn with a format error and the complaint after it are dropped (counted); the last user turn is the
  submission.
* 2.x (``mini-swe-agent-1.1``): every assistant turn carries the commands mini-swe-agent parsed from it in
  ``extra.actions`` (``[{"command": ..., "tool_call_id"?: ...}]``), read in preference to the text. Its text-based
  configs fence a command as ```` ```mswea_bash_command ```` or ``<mswea_bash_command>…</mswea_bash_command>``
  (read from the text where ``extra.actions`` is missing); its tool-calling configs add ``tool_calls`` answered by
  ``tool`` messages; its Responses-API models write ``{"object": "response", "output": [...]}`` answered by
  ``function_call_output`` items. A format error is a user message with ``extra.interrupt_type: "FormatError"``
  and no assistant turn (dropped, counted). The run ends with an ``exit`` message whose ``extra`` holds
  ``exit_status`` and ``submission``: a ``Submitted`` exit is the output of the submit command, as the submission
  was in 1.x; any other exit is dropped. A human's command in interactive mode (a user message with
  ``extra.actions``) is no expert action: it is dropped with its output.

``extra.actions`` that is not a list of objects with a string ``command`` is a TrajectoryFormatError naming the
file and the message. ``info.exit_status`` (else the exit message's) becomes the ``exit_status`` metadata.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import replace
from typing import Any

from srl_swe.actions import ActionSyntax, BashSyntax, Match, get_syntax
from srl_swe.errors import ActionParseError, TrajectoryFormatError
from srl_swe.schema import ToolCall, Trajectory
from srl_swe.trajectories.chat import swe_trajectory, walk_messages
from srl_swe.trajectories.io import message_text, require

RECORDS = False  # a whole file only
EXPECTED = 'a mini-swe-agent .traj.json ({"trajectory_format": "mini-swe-agent-1", "messages": [...]})'


class MsweaBashSyntax(BashSyntax):
    """mini-swe-agent 2.x's text action: ```` ```mswea_bash_command ```` (the default ``action_regex`` of its
    text-based models), stripped as it strips it. For reading its transcripts: not one of ``SYNTAXES``."""

    name, opener = "mswea_bash", "```mswea_bash_command"
    pattern, close = re.compile(r"```mswea_bash_command\s*\n(.*?)\n```", re.S), "\n```"
    before, after = "```mswea_bash_command\n", "\n```"  # how render writes the command

    def render(self, call: ToolCall) -> str:
        if not self.expresses(call):
            raise ActionParseError(f"the {self.name} syntax can only write bash(command=...), not {call.name[:60]}")
        return f"{self.before}{call.arguments[0][1]}{self.after}"

    def find(self, text: str, limit: int | None = None) -> list[Match]:
        return [Match(m.start, m.end, ToolCall.bash((m.call.get("command") or "").strip()))
                for m in super().find(text, limit)]


class MsweaXmlSyntax(MsweaBashSyntax):
    """``<mswea_bash_command>…</mswea_bash_command>``, the ``action_regex`` of mini-swe-agent 2.x's XML config."""

    name, opener = "mswea_xml", "<mswea_bash_command>"
    pattern, close = re.compile(r"<mswea_bash_command>(.*?)</mswea_bash_command>", re.S), "</mswea_bash_command>"
    before, after = opener, close


#: The text syntaxes, 1.x's first: a transcript's is the one whose block comes first in the first turn with one.
TEXT_SYNTAXES: tuple[ActionSyntax, ...] = (get_syntax("bash"), MsweaBashSyntax(), MsweaXmlSyntax())
# A message left out: the walker passes over a role it does not know, and the other messages keep their numbers.
_DROPPED: dict[str, str] = {"role": "mini-swe-agent:dropped"}


def detect(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if str(obj.get("trajectory_format", "")).startswith("mini-swe-agent"):
        return True
    # Without the field: messages beside an info object, unless a SWE-agent "trajectory" list says otherwise.
    return "messages" in obj and isinstance(obj.get("info"), dict) and "trajectory" not in obj


def load(obj: Any, source: str, record: str | int | None, default_id: str) -> Trajectory:
    messages = require(obj, "messages", list, source, record)
    native = any(isinstance(m, dict) and (m.get("tool_calls") or m.get("object") == "response") for m in messages)
    text_syntax = None if native else _text_syntax(messages)
    normalized, format_errors, exit_extra = _normalize(messages, source, record, text_syntax)
    walked = walk_messages(normalized, source, record, syntax=text_syntax)
    walked = replace(walked, format_errors=walked.format_errors + format_errors)
    info = obj.get("info") if isinstance(obj.get("info"), dict) else {}
    submission = info["submission"] if "submission" in info else exit_extra.get("submission")
    fields = {"instance_id": obj.get("instance_id"), "submission": submission}
    trajectory = swe_trajectory(walked, fields, source, "mini-swe-agent", default_id)
    status = info.get("exit_status") or exit_extra.get("exit_status")
    if isinstance(status, str) and status:
        trajectory = replace(trajectory, metadata=(*trajectory.metadata, ("exit_status", status)))
    return trajectory


def _where(record: str | int | None, n: int) -> str:
    return f"{record}, message {n}" if record is not None else f"message {n}"  # as the walker names a message


def _first_action(text: str) -> tuple[ActionSyntax, Match] | None:
    """The syntax whose action block comes first in ``text``, and that block."""
    found = [(m[0].start, k, syntax, m[0]) for k, syntax in enumerate(TEXT_SYNTAXES) if (m := syntax.find(text, 1))]
    return min(found)[2:] if found else None


def _text_syntax(messages: list[Any]) -> ActionSyntax:
    for msg in messages:
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            try:
                first = _first_action(message_text(msg.get("content"), "<detect>", None))
            except TrajectoryFormatError:
                continue  # the walker reports it, naming the file and message
            if first:
                return first[0]
    return TEXT_SYNTAXES[0]


def _normalize(messages: list[Any], source: str, record: str | int | None,
               text_syntax: ActionSyntax | None) -> tuple[list[Any], int, dict]:
    """``messages`` in the shapes the chat walker reads, the format errors it cannot see (2.x's have no assistant
    turn), and the ``extra`` of the last exit message."""
    out: list[Any] = []
    format_errors, exit_extra, human, task_seen = 0, {}, False, False
    for n, msg in enumerate(messages):
        if not isinstance(msg, dict):
            out.append(msg)  # the walker reports it
            continue
        where = _where(record, n)
        if msg.get("object") == "response":
            msg = _from_response(msg, source, where)
        elif msg.get("type") == "function_call_output" and "role" not in msg:
            msg = {"role": "tool", "content": msg.get("output"), "tool_call_id": msg.get("call_id")}
        role, extra = msg.get("role"), msg.get("extra")
        extra = extra if isinstance(extra, dict) else {}
        if role == "assistant":
            human = False
            if "actions" in extra:
                msg = _with_actions(msg, extra["actions"], source, where, text_syntax)
        elif role == "exit":
            exit_extra = extra
            submitted = extra.get("exit_status") == "Submitted" and not human
            msg = {"role": "user", "content": msg.get("content")} if submitted else _DROPPED
        elif role == "user" and not task_seen:
            task_seen = True
        elif role == "user" and "interrupt_type" in extra:
            format_errors += extra["interrupt_type"] == "FormatError"
            msg = _DROPPED
        elif role == "user" and "actions" in extra:  # interactive mode: a command the human typed
            human, msg = True, _DROPPED
        elif human and role in ("user", "tool"):  # the output of the human's command
            msg = _DROPPED
        out.append(msg)
    return out, format_errors, exit_extra


def _with_actions(msg: dict, actions: Any, source: str, where: str, text_syntax: ActionSyntax | None) -> dict:
    """An assistant turn whose ``extra.actions`` become its tool calls, its text (less the action block) the
    thought."""
    expected = '"extra.actions" to be a list of objects with a string "command"'
    if not isinstance(actions, list):
        raise TrajectoryFormatError(source, expected, where, got=type(actions).__name__)
    calls = []
    for k, action in enumerate(actions):
        if not isinstance(action, dict) or not isinstance(action.get("command"), str):
            raise TrajectoryFormatError(source, expected, where, got=f"item {k}: {reprlib.repr(action)}")
        call_id = action.get("tool_call_id")
        calls.append({"id": call_id if isinstance(call_id, str) else None,
                      "function": {"name": "bash", "arguments": {"command": action["command"]}}})
    text = message_text(msg.get("content"), source, where)
    if text_syntax is not None:  # a text-based run: the thought is the text before the action block
        first = _first_action(text)
        text = (text[: first[1].start] if first else text).strip().removeprefix("THOUGHT:")
    return {"role": "assistant", "content": text, "tool_calls": calls}


def _from_response(msg: dict, source: str, where: str) -> dict:
    """An OpenAI Responses-API turn (``{"object": "response", "output": [...]}``) as a chat assistant turn."""
    output = msg.get("output")
    if not isinstance(output, list):
        raise TrajectoryFormatError(source, 'a Responses-API "output" list', where, got=type(output).__name__)
    texts, calls = [], []
    for item in output:
        if not isinstance(item, dict):
            raise TrajectoryFormatError(source, 'Responses-API "output" items to be objects', where,
                                        got=reprlib.repr(item))
        if item.get("type") == "message":
            texts.append(message_text(item.get("content"), source, where))
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id") or item.get("id"),
                          "function": {"name": item.get("name"), "arguments": item.get("arguments")}})
    turn = {"role": "assistant", "content": "\n".join(texts), "extra": msg.get("extra")}
    return {**turn, "tool_calls": calls} if calls else turn
