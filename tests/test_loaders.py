"""Loaders on the real shared trajectories (and the bundled ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srl_swe.schema import ToolCall
from srl_swe.trajectories import load_file, load_trajectories

pytestmark = pytest.mark.shared_data


def test_mini_swe_agent_counts_and_outcomes(trajectories_dir: Path):
    root = trajectories_dir / "mini-swe-agent" / "gemini-3-pro"
    everything = load_trajectories(root, keep="all")
    assert len(everything.trajectories) == 103
    assert sum(t.resolved is True for t in everything.trajectories) == 76
    assert sum(t.resolved is False for t in everything.trajectories) == 27
    kept = load_trajectories(root)  # default: resolved only
    assert len(kept.trajectories) == 76
    assert {s.category for s in kept.skipped} == {"outcome unresolved"}
    assert all(t.source_format == "mini-swe-agent" for t in kept.trajectories)


def test_mini_swe_agent_steps(trajectories_dir: Path):
    path = trajectories_dir / "mini-swe-agent/gemini-3-pro/trajs/astropy__astropy-14182.traj.json"
    raw = json.loads(path.read_text())
    (t,), skipped = load_file(path)
    assert skipped == []
    assert t.id == "astropy__astropy-14182"
    assert t.resolved is None  # load_file does not look for reports; load_trajectories does
    assert t.steps[0].action == ToolCall.bash("ls -R astropy/io/ascii")
    assert t.steps[0].thought.startswith("I need to explore the codebase")  # "THOUGHT:" prefix removed
    assert t.steps[0].observation.startswith("<returncode>0</returncode>")
    assert t.task.problem_statement.startswith("Please support header rows in RestructuredText output")
    assert t.submission == raw["info"]["submission"]
    assert len(t.steps) == sum(m["role"] == "assistant" for m in raw["messages"])
    (resolved,) = load_trajectories(path, keep="all").trajectories
    assert resolved.resolved is False  # from ../reports/astropy__astropy-14182.report.json


def test_mini_swe_agent_format_errors_are_skipped(trajectories_dir: Path):
    path = trajectories_dir / "mini-swe-agent/gemini-3-pro/trajs/astropy__astropy-14369.traj.json"
    raw = json.loads(path.read_text())
    (t,), _ = load_file(path)
    meta = dict(t.metadata)
    assert meta["format_errors_skipped"] == "2"
    assistant_turns = sum(m["role"] == "assistant" for m in raw["messages"])
    assert len(t.steps) == assistant_turns - 2
    assert not any("EXACTLY ONE action" in s.observation for s in t.steps)


@pytest.mark.parametrize("name, first, second", [
    ("xml_sys-env_window100__t-0.20__p-0.95__c-2.00__install-1.traj",
     ToolCall.bash("create reproduce.py"), "edit 1:1\nfrom marshmallow.fields import TimeDelta"),
    ("function_calling__install-1.traj", ToolCall.make("create", filename="reproduce.py"), None),
    ("function_calling_replace_from_source.traj", ToolCall.bash("ls -F"), None),
])
def test_swe_agent_variants(trajectories_dir: Path, name: str, first: ToolCall, second: str | None):
    (t,), _ = load_file(trajectories_dir / "swe-agent" / name)
    assert t.source_format == "swe-agent"
    assert t.steps[0].action == first
    if second:
        assert t.steps[1].action.get("command").startswith(second)
    assert t.steps[-1].action.name == "submit" or t.steps[-1].action == ToolCall.bash("submit")
    assert "TimeDelta serialization precision" in t.task.problem_statement
    assert t.id == "marshmallow-code__marshmallow-1867"


def test_swe_agent_history_only(trajectories_dir: Path):
    (t,), _ = load_file(trajectories_dir / "swe-agent" / "function_calling_simple.traj")
    assert [s.action.name for s in t.steps] == ["find_file", "open", "edit", "bash", "submit"]
    assert t.steps[4].action == ToolCall("submit", ())
    assert "8.2" in t.steps[3].observation
    assert t.task.problem_statement.startswith("SyntaxError: invalid syntax")


def test_swe_smith_chat_matches_its_traj(trajectories_dir: Path):
    chat = load_trajectories(trajectories_dir / "swe-smith" / "ft_xml_example.jsonl", keep="all").trajectories
    assert [t.id for t in chat] == ["pandas-dev__pandas.95280573.pr_53652", "getmoto__moto.694ce1f4.pr_7331",
                                    "pydantic__pydantic.acb0f10f.pr_8316"]
    assert all(t.source_format == "swe-smith-chat" for t in chat)
    traj = load_trajectories(trajectories_dir / "swe-smith" / "trajs", keep="all").trajectories[0]
    assert traj.resolved is True  # reports/<id>.report.json
    # The same expert run in two formats gives the same actions.
    assert [s.action for s in chat[0].steps] == [s.action for s in traj.steps]
    view = chat[0].steps[1].action
    assert view.args == {"command": "view", "path": "/testbed/pandas/core/indexes/base.py",
                         "view_range": "[6035, 6050]"}


def test_openai_tool_call_chat(trajectories_dir: Path, tmp_path: Path):
    """An OpenAI-style transcript (assistant tool_calls + tool messages) built from a real SWE-agent history."""
    raw = json.loads((trajectories_dir / "swe-agent" / "function_calling_simple.traj").read_text())
    messages = []
    for m in raw["history"]:
        msg = {"role": m["role"], "content": m["content"]}
        if m.get("tool_calls"):
            msg["tool_calls"] = m["tool_calls"]
        if m.get("tool_call_ids"):
            msg["tool_call_id"] = m["tool_call_ids"][0]
        messages.append(msg)
    path = tmp_path / "openai.jsonl"
    path.write_text(json.dumps({"instance_id": "simple", "resolved": True, "messages": messages}) + "\n")
    (t,) = load_trajectories(path).trajectories
    (ref,), _ = load_file(trajectories_dir / "swe-agent" / "function_calling_simple.traj")
    assert t.source_format == "openai-chat"
    assert [s.action for s in t.steps] == [s.action for s in ref.steps]
    assert t.steps[3].observation.startswith("8.2")


def test_whole_shared_tree(trajectories_dir: Path):
    result = load_trajectories(trajectories_dir, keep="all")
    summary = result.summary()
    assert summary["mini-swe-agent"]["trajectories"] == 103
    assert summary["swe-agent"]["trajectories"] == 10  # 9 demonstrations + the SWE-smith .traj
    assert summary["swe-smith-chat"]["trajectories"] == 3
    assert not [s for s in result.skipped if s.category == "malformed"]


def test_gsm8k(shared_data: Path):
    result = load_trajectories(shared_data / "math" / "gsm8k" / "train.jsonl")
    assert len(result.trajectories) == 7473
    t = result.trajectories[0]
    assert t.kind == "math" and t.task.answer == "72"
    assert [s.action.get("content") for s in t.steps] == [
        "Natalia sold 48/2 = 24 clips in May.",
        "Natalia sold 48+24 = 72 clips altogether in April and May.",
    ]


def test_numbered_and_plain_math(tmp_path: Path, bundled_math: Path):
    path = tmp_path / "numbered.jsonl"
    path.write_text(json.dumps({"id": "n1", "problem": "What is 2+3*4?",
                                "solution": "1. First 3*4 = 12.\n2. Then 2 + 12 = 14.\n3. So \\boxed{14}."}) + "\n")
    (t,) = load_trajectories(path).trajectories
    assert t.source_format == "math-numbered" and t.task.answer == "14"
    assert [s.action.get("content") for s in t.steps] == ["First 3*4 = 12.", "Then 2 + 12 = 14.", "So \\boxed{14}."]
    plain = load_trajectories(bundled_math).trajectories
    assert len(plain) == 8 and all(t.source_format == "math-steps" for t in plain)


def test_bundled_swe(bundled_swe: Path):
    trajs = load_trajectories(bundled_swe).trajectories
    assert len(trajs) == 4
    assert all(t.resolved and t.steps[-1].action.name == "submit" for t in trajs)
    assert {s.action.name for t in trajs for s in t.steps} == {"bash", "str_replace_editor", "submit"}


def test_explicit_reports_override(trajectories_dir: Path):
    root = trajectories_dir / "swe-agent"
    result = load_trajectories(root, reports={"marshmallow-code__marshmallow-1867": True})
    assert len(result.trajectories) == 5  # the variants whose replay config names the instance
