"""The mini-swe-agent format: a ``.traj.json`` file (``trajectory_format: mini-swe-agent-1``).

The file is a chat transcript (``messages``) whose actions are fenced ```` ```bash ```` blocks, or native
``tool_calls`` in the tool-calling variant, plus an ``info`` object with the submission. Older files have no
``trajectory_format`` field; they are recognised by ``messages`` beside an ``info`` object.
"""

from __future__ import annotations

from typing import Any

from srl_swe.schema import Trajectory
from srl_swe.trajectories.chat import swe_trajectory, walk_messages
from srl_swe.trajectories.io import require

RECORDS = False  # a whole file only
EXPECTED = 'a mini-swe-agent .traj.json ({"trajectory_format": "mini-swe-agent-1", "messages": [...]})'


def detect(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if str(obj.get("trajectory_format", "")).startswith("mini-swe-agent"):
        return True
    # Without the field: messages beside an info object, unless a SWE-agent "trajectory" list says otherwise.
    return "messages" in obj and isinstance(obj.get("info"), dict) and "trajectory" not in obj


def load(obj: Any, source: str, record: str | int | None, default_id: str) -> Trajectory:
    messages = require(obj, "messages", list, source, record)
    walked = walk_messages(messages, source, record, syntax=None if _has_tool_calls(messages) else "bash")
    info = obj.get("info") if isinstance(obj.get("info"), dict) else {}
    fields = {"instance_id": obj.get("instance_id"), "submission": info.get("submission")}
    return swe_trajectory(walked, fields, source, "mini-swe-agent", default_id)


def _has_tool_calls(messages: list[Any]) -> bool:
    return any(isinstance(m, dict) and m.get("tool_calls") for m in messages)
