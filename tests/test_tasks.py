"""Task kinds (srl_swe.tasks): one object per kind decides syntax, window, prompts and targets, and the SWE kind's
one tool schema and task wording reach every consumer (step envs, the agent, the RLVR tool env, the toolbox)."""

from __future__ import annotations

import pytest

from srl_swe.registry import UnknownComponentError
from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.steps import PromptBuilder, StepConfig
from srl_swe.tasks import TASKS
from srl_swe.tasks.math import MATH
from srl_swe.tasks.swe import SWE, TOOLS
from srl_swe.tools import TOOL_PARAMS


def _swe_traj() -> Trajectory:
    steps = (Step(ToolCall.make("bash", command="ls"), "look", "a\nb"),
             Step(ToolCall.make("str_replace_editor", command="view", path="/testbed/a"), "read", "1 x"),
             Step(ToolCall.make("submit"), "done", ""))
    return Trajectory(Task("t1", "The bug."), steps, "test", "test", "swe", resolved=True)


def _math_traj() -> Trajectory:
    steps = tuple(Step(ToolCall.make("text", content=c)) for c in ("2 + 2 = 4", "4 * 3 = 12"))
    return Trajectory(Task("m1", "What is (2+2)*3?", answer="12"), steps, "test", "test", "math", resolved=True)


def test_kinds_resolve_syntax_and_window():
    assert [TASKS.get(k) for k in TASKS.names()] == [SWE, MATH]
    assert (SWE.resolve_syntax(None), SWE.resolve_syntax("qwen"), MATH.resolve_syntax(None)) == ("xml", "qwen", "text")
    with pytest.raises(ValueError, match="does not fit math tasks: use one of text"):
        MATH.resolve_syntax("xml")
    # a data set's syntax is the kind's when the kind has one (mixed data), else the asked one
    assert (MATH.step_syntax("xml"), SWE.step_syntax("bash"), SWE.step_syntax(None)) == ("text", "bash", "xml")
    assert (SWE.resolve_window("default"), MATH.resolve_window("default"), SWE.resolve_window(None)) == (2, None, None)
    assert StepConfig.for_task("swe") == StepConfig(syntax="xml", window=2)
    assert StepConfig.for_task("math", "xml", window=3) == StepConfig(syntax="text", window=3)
    with pytest.raises(UnknownComponentError, match="unknown task kind 'code'; choose one of: swe, math"):
        TASKS.get("code")


def test_mixed_data_is_built_by_each_kind():
    builder = PromptBuilder([_swe_traj(), _math_traj()], StepConfig(syntax="xml", window=1))
    assert (builder.syntax_of(0), builder.syntax_of(1)) == ("xml", "text")
    swe = builder.prompt(0, 2)
    assert swe[0] == ("system", builder.system["swe"]) and "- bash(command): " + TOOLS["bash"].description in swe[0][1]
    assert swe[1][1].endswith("[1 earlier actions and their outputs are omitted]")
    assert [m[0] for m in swe] == ["system", "user", "assistant", "user"]  # window 1: one pair
    math = builder.prompt(1, 1)
    assert math[0][1] == builder.system["math"] and math[1][1].endswith("Step 1: 2 + 2 = 4\n\nWrite step 2.")
    assert (builder.target(1, 1), builder.target(0, 2)) == ("4 * 3 = 12", "<function=submit>\n</function>")
    from srl_swe.steps import render_chatml

    for i, k in ((0, 0), (0, 2), (0, 3), (1, 0), (1, 2)):
        assert builder.prompt_text(i, k) == render_chatml(builder.prompt(i, k))


def test_one_tool_schema_for_the_toolbox_the_prompts_and_trl():
    assert {name: tool.param_names for name, tool in TOOLS.items()} == TOOL_PARAMS
    system = SWE.agent_system_prompt("xml")
    for name, tool in TOOLS.items():
        assert f"- {name}({', '.join(tool.param_names)}): {tool.description}" in system
    pytest.importorskip("transformers")
    from transformers.utils import get_json_schema

    from srl_swe.train.exec_env import SWEToolEnv

    for name, tool in TOOLS.items():
        fn = get_json_schema(getattr(SWEToolEnv, name))["function"]
        assert fn["description"] == tool.description
        props = fn["parameters"].get("properties", {})
        assert list(props) == list(tool.param_names)
        assert {k: v["description"] for k, v in props.items()} == {p.name: p.description for p in tool.params}
        assert sorted(fn["parameters"].get("required", [])) == sorted(tool.required)


def test_one_task_wording():
    from srl_swe.runtime.base import REPO_DIR
    from srl_swe.swebench.instance import SWEInstance
    from srl_swe.train.exec_env import exec_rows

    opening = "Solve this issue in the repository:\n\n<issue>\nThe bug.\n</issue>"
    assert SWE.task_message("The bug.") == opening
    assert SWE.task_message("The bug.", repo=REPO_DIR) == opening + f"\n\nThe repository is checked out at {REPO_DIR}."
    inst = SWEInstance(instance_id="x__y-1", repo="x/y", base_commit="0" * 40, problem_statement="The bug.")
    (row,) = exec_rows([inst])
    assert row["prompt"][0]["content"].startswith(opening + f"\n\nThe repository is checked out at {REPO_DIR}.")
    assert row["prompt"][0]["content"].endswith("then call submit.")
