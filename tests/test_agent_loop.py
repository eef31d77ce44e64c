"""The agent loop on real runtimes: the project's expert trajectory resolves marshmallow-1867 (local runtime
graded in a fresh sandbox, Docker runtime graded by the real swebench harness), doing nothing resolves nothing,
and the limits (steps, wall time, tokens, malformed outputs, command timeouts) end or continue episodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from srl_swe.agent import EXIT_STATUSES, ModelPolicy, ReplayPolicy, run_agent
from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.trajectories import load_trajectories

REPO = Path(__file__).resolve().parents[1]
TASK = "marshmallow-code__marshmallow-1867"
EXPERT = REPO / "trajectories" / "swe-exec" / "marshmallow-1867.jsonl"


@pytest.fixture(scope="module")
def instance(local_tasks: Path):
    from srl_swe.swebench.datasets import load_instances

    (inst,) = load_instances(local_tasks, [TASK])
    return inst


@pytest.fixture(scope="module")
def expert() -> Trajectory:
    (traj,) = load_trajectories(EXPERT).trajectories  # keep="resolved": its report says resolved
    return traj


def script(*calls: ToolCall) -> Trajectory:
    return Trajectory(Task(TASK, "scripted"), tuple(Step(c, f"step {i}") for i, c in enumerate(calls)), "test", "-")


class Outputs:
    """A policy that writes the given outputs in order (for malformed outputs, which no replay produces)."""

    def __init__(self, *outputs: str):
        self.outputs, self.i = outputs, 0

    def act(self, messages: list[dict[str, str]]) -> str:
        self.i += 1
        return self.outputs[min(self.i, len(self.outputs)) - 1]


def local(instance):
    from srl_swe.swebench.runtimes import task_runtime

    return task_runtime("local", instance)


def check_expert_run(result, expert: Trajectory) -> None:
    assert result.exit_status == "submitted" and len(result.steps) == len(expert.steps)
    assert set(result.prediction.to_dict()) == {"instance_id", "model_name_or_path", "model_patch"}
    assert result.prediction.instance_id == TASK
    assert "+        return value // base_unit" in result.patch
    assert "-        return int(value.total_seconds() / base_unit.total_seconds())" in result.patch
    # The transcript: system, task, then each raw output followed by its real observation.
    msgs = result.messages
    assert [m["role"] for m in msgs] == ["system", "user"] + ["assistant", "user"] * len(expert.steps)
    assert expert.task.problem_statement in msgs[1]["content"] and "/testbed" in msgs[1]["content"]
    assert msgs[2]["content"].startswith("<think>\n" + expert.steps[0].thought)
    before, after = msgs[7]["content"], msgs[11]["content"]  # the reproduction, before and after the fix
    assert before == "OBSERVATION:\n344\n1\n" and after == "OBSERVATION:\n345\n1\n"
    assert "1114 passed" in msgs[13]["content"] and "failed" not in msgs[13]["content"]


@pytest.mark.slow
def test_expert_replay_resolves_on_local_runtime(instance, expert):
    from srl_swe.swebench.grading import grade_in_runtime

    with local(instance) as rt:
        result = run_agent(ReplayPolicy(expert), instance, rt, max_steps=20)
    check_expert_run(result, expert)
    assert result.total_tokens is None  # a replay has no tokenizer
    grade = grade_in_runtime(instance, result.patch, runtime="local")
    assert (grade.status, grade.resolved) == ("resolved", True)
    assert grade.report["tests_status"]["FAIL_TO_PASS"]["success"] == list(instance.FAIL_TO_PASS)


@pytest.mark.slow
def test_expert_replay_resolves_on_docker_graded_by_harness(instance, expert, docker_client, tmp_path):
    from srl_swe.swebench.grading import grade_with_harness
    from srl_swe.swebench.runtimes import task_runtime

    with task_runtime("docker", instance, client=docker_client) as rt:
        result = run_agent(ReplayPolicy(expert), instance, rt, max_steps=20)
    check_expert_run(result, expert)
    graded = grade_with_harness([result.prediction], [instance], run_id="agent-expert", workdir=tmp_path)
    assert (graded[TASK].status, graded[TASK].resolved) == ("resolved", True)
    assert graded[TASK].report["tests_status"]["FAIL_TO_PASS"]["success"] == list(instance.FAIL_TO_PASS)


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_submitting_nothing_resolves_nothing(instance, backend, request, tmp_path):
    from srl_swe.swebench.grading import grade_in_runtime, grade_with_harness
    from srl_swe.swebench.runtimes import task_runtime

    kwargs = {"client": request.getfixturevalue("docker_client")} if backend == "docker" else {}
    policy = ReplayPolicy(script(ToolCall.bash("grep -n total_seconds src/marshmallow/fields.py"),
                                 ToolCall.make("submit")))
    with task_runtime(backend, instance, **kwargs) as rt:
        result = run_agent(policy, instance, rt)
    assert result.exit_status == "submitted" and len(result.steps) == 2 and result.patch == ""
    assert "return int(value.total_seconds() / base_unit.total_seconds())" in result.steps[0].observation
    if backend == "docker":
        grade = grade_with_harness([result.prediction], [instance], run_id="agent-nothing", workdir=tmp_path)[TASK]
    else:
        grade = grade_in_runtime(instance, result.patch, runtime="local")
    assert (grade.status, grade.resolved) == ("empty_patch", False)


def test_max_steps_stops_an_endless_policy_and_autosubmits(instance):
    endless = script(ToolCall.bash("echo '# touched' >> src/marshmallow/utils.py"),
                     *[ToolCall.bash(f"echo step {i}") for i in range(1, 100)])
    with local(instance) as rt:
        result = run_agent(ReplayPolicy(endless), instance, rt, max_steps=4)
    assert result.exit_status == "max_steps" and len(result.steps) == 4
    assert [s.observation for s in result.steps[1:]] == ["step 1\n", "step 2\n", "step 3\n"]
    # SWE-agent's autosubmission: the diff so far is the prediction.
    assert "+# touched" in result.patch and "src/marshmallow/utils.py" in result.patch


def test_a_timed_out_command_is_an_observation_and_the_loop_continues(instance):
    policy = ReplayPolicy(script(ToolCall.bash("sleep 60"), ToolCall.bash("echo after the timeout")))
    with local(instance) as rt:
        result = run_agent(policy, instance, rt, command_timeout=1)
    assert result.exit_status == "submitted" and len(result.steps) == 3
    assert result.steps[0].observation == (
        "The command 'sleep 60' was cancelled because it took more than 1 seconds. Please try a different command "
        "that completes more quickly.")
    assert result.steps[0].seconds < 10
    assert result.steps[1].observation == "after the timeout\n"


def test_wall_time_limit(instance):
    policy = ReplayPolicy(script(*[ToolCall.bash("sleep 0.7") for _ in range(10)]))
    with local(instance) as rt:
        result = run_agent(policy, instance, rt, max_seconds=1.0)
    assert result.exit_status == "timeout" and len(result.steps) == 2 and result.seconds >= 1.0


def test_malformed_outputs_get_the_format_and_count_to_a_limit(instance):
    good = "<think>\nlook\n</think>\n<function=bash>\n<parameter=command>echo ok</parameter>\n</function>"
    policy = Outputs("no think block", good, "<think>x</think> prose only", "<think>x</think>", "never reached")
    with local(instance) as rt:
        result = run_agent(policy, instance, rt, max_format_errors=2)
    assert result.exit_status == "format_error_limit" and policy.i == 4
    assert [s.action is None for s in result.steps] == [True, False, True, True]
    assert result.steps[0].observation.startswith(
        "Your output was not in the expected format (output must start with <think>…</think> before the action).")
    assert "<function=bash>" in result.steps[0].observation  # the format is shown
    assert result.steps[1].observation == "ok\n"  # a valid action resets the consecutive count
    assert result.prediction.model_patch == ""


def test_prompt_window_follows_srl_swe_v0(instance):
    from srl_swe.agent import Episode

    with local(instance) as rt:
        ep = Episode(TASK, instance.problem_statement, rt, window=2)
        for i in range(3):
            ep.step(f"<think>t</think><function=bash><parameter=command>echo {i}</parameter></function>")
        prompt = ep.prompt()
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert prompt[1]["content"].endswith("[1 earlier actions and their outputs are omitted]")
    assert prompt[2]["content"] == "<function=bash>\n<parameter=command>echo 1</parameter>\n</function>"
    assert prompt[5]["content"] == "OBSERVATION:\n2\n"
    assert "str_replace_editor(command, path, file_text, old_str, new_str, insert_line, view_range)" in \
        prompt[0]["content"]


@pytest.mark.slow
def test_model_policy_with_a_tiny_model(instance, tmp_path):
    pytest.importorskip("torch")
    from srl_swe.models.generation import TransformersGenerator
    from srl_swe.models.tiny import make_tiny_qwen2

    gen = TransformersGenerator.from_spec(str(make_tiny_qwen2(tmp_path / "tiny")), progress=False)
    policy = ModelPolicy(gen, max_new_tokens=24, name="tiny")
    with local(instance) as rt:
        result = run_agent(policy, instance, rt, max_steps=3, max_format_errors=5)
        again = run_agent(policy, instance, rt, max_steps=50, max_tokens=30, max_format_errors=50)
    assert result.exit_status in EXIT_STATUSES and 1 <= len(result.steps) <= 3
    assert result.prediction.to_dict() == {"instance_id": TASK, "model_name_or_path": "tiny",
                                           "model_patch": result.patch}
    assert isinstance(result.patch, str) and result.total_tokens == sum(
        policy.count_tokens(s.output) for s in result.steps)
    assert all(s.output == m["content"] for s, m in zip(result.steps, result.messages[2::2], strict=True))
    # A token budget ends the episode once the outputs' tokens reach it (greedy outputs repeat exactly).
    assert again.exit_status == "max_tokens" and again.total_tokens >= 30
    assert [s.output for s in again.steps[:3]] == [s.output for s in result.steps]
    with pytest.raises(ValueError, match="max_tokens needs a policy that counts tokens"):
        run_agent(ReplayPolicy(script()), instance, None, max_tokens=10)


def test_a_dead_sandbox_ends_the_episode_with_a_reason(instance):
    from srl_swe.agent import Episode

    rt = local(instance)
    ep = Episode(TASK, instance.problem_statement, rt)
    ep.step("<think>t</think><function=bash><parameter=command>echo 1</parameter></function>")
    rt.close()  # the sandbox disappears under the agent (a container killed from outside, say)
    step = ep.step("<think>t</think><function=bash><parameter=command>echo 2</parameter></function>")
    assert step.observation.startswith("The sandbox failed: local runtime is closed")
    result = ep.result()
    assert (result.exit_status, result.patch, len(result.steps)) == ("runtime_error", "", 2)
    assert "local runtime is closed" in result.error
