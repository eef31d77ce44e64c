"""SRL-SWE-v0 and SRL-Math-v0 through the Gymnasium API."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import srl_swe
from srl_swe.actions import render
from srl_swe.envs.policies import ExpertStepPolicy, NoisyExpertStepPolicy
from srl_swe.errors import SRLError
from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.steps import StepConfig, build_steps


@pytest.mark.parametrize("env_id", sorted(srl_swe.ENV_IDS))
@pytest.mark.parametrize("mode", ["trajectory", "step"])
def test_check_env_without_warnings(env_id: str, mode: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        env = gym.make(env_id, mode=mode)
        check_env(env.unwrapped)
        env.close()
    assert gym.spec(env_id).version == 0


def test_import_is_cheap():
    code = ("import sys, srl_swe, gymnasium as gym; gym.make('SRL-SWE-v0');"
            "bad = [m for m in ('torch', 'docker', 'vllm', 'transformers', 'trl', 'datasets') if m in sys.modules];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_trajectory_episode_follows_the_expert(bundled_swe: Path):
    env = gym.make("SRL-SWE-v0", window=None)
    base = env.unwrapped
    obs, info = env.reset(seed=3, options={"index": 1})
    t = base.trajectories[1]
    assert info["task_id"] == t.id and info["step_index"] == 0 and info["num_steps"] == len(t.steps)
    assert obs["prompt"].endswith("<|im_start|>assistant\n") and t.task.problem_statement in obs["prompt"]
    assert obs["messages"][0]["role"] == "system"
    wrong = "<think>nothing</think>" + render(ToolCall.bash("echo unrelated"))
    rewards = []
    for k in range(len(t.steps)):
        obs, reward, terminated, truncated, info = env.step(wrong)
        rewards.append(reward)
        assert info["expert_action"] == render(t.steps[k].action)
        assert 0.0 <= reward < 1.0 and info["score"]["valid"] and not truncated
        # whatever the agent did, the next observation holds the expert's action and real output
        assert obs["messages"][-2]["content"] == render(t.steps[k].action)
        assert obs["messages"][-1]["content"].startswith("OBSERVATION:\n" + t.steps[k].observation[:100])
        assert terminated == (k == len(t.steps) - 1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(wrong)


def test_replay_policy_scores_one(bundled_swe: Path):
    env = gym.make("SRL-SWE-v0")
    policy = ExpertStepPolicy(env.unwrapped)
    for i in range(len(env.unwrapped.trajectories)):
        obs, info = env.reset(options={"index": i})
        done = False
        while not done:
            obs, reward, done, _, info = env.step(policy(obs, info))
            assert reward == 1.0


def test_noisy_policy_gets_graded_rewards():
    env = gym.make("SRL-Math-v0")
    policy = NoisyExpertStepPolicy(env.unwrapped, noise=0.5, seed=1)
    rewards = []
    for i in range(8):
        obs, info = env.reset(options={"index": i})
        done = False
        while not done:
            obs, reward, done, _, info = env.step(policy(obs, info))
            rewards.append(reward)
    assert all(0.0 <= r <= 1.0 for r in rewards) and min(rewards) < 0.95 and max(rewards) == 1.0


def test_step_mode_and_format_penalty():
    env = gym.make("SRL-SWE-v0", mode="step")
    n = env.unwrapped.num_examples
    assert n == 34
    _obs, info = env.reset(options={"index": 9})
    i, k = env.unwrapped.index[9]
    assert (info["trajectory_index"], info["step_index"]) == (i, k)
    obs2, reward, terminated, _truncated, info2 = env.step("I would run ls")
    assert reward == -1.0 and terminated and info2["format_error"] and "<think>" in info2["score"]["reason"]
    # One decision per episode: the final observation is the prompt the action answered (equal, not shared:
    # gymnasium's checker warns when reset and step share observation data).
    assert obs2 == _obs and obs2["messages"][0] is not _obs["messages"][0]
    assert info2["step_index"] == k + 1 and info2["expert_action"] == env.unwrapped.builder.target(i, k)
    with pytest.raises(IndexError, match=r"indices 0\.\.33"):
        env.reset(options={"index": 34})


@pytest.mark.parametrize("env_id", sorted(srl_swe.ENV_IDS))
def test_step_order_is_enforced_by_the_env(env_id: str):
    # registered with order_enforce=False: the env itself refuses a step outside an episode
    env = gym.make(env_id, mode="step")
    assert "OrderEnforcing" not in str(env) and "PassiveEnvChecker" in str(env)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step("<think>t</think>x")
    env.reset(options={"index": 0})
    env.step("<think>t</think>x")
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step("<think>t</think>x")


def test_seeded_reset_is_deterministic():
    env = gym.make("SRL-SWE-v0", mode="step")
    picks = [env.reset(seed=7)[1]["step_index"] for _ in range(2)]
    a = [env.reset(seed=s)[1]["trajectory_index"] for s in range(10)]
    b = [env.reset(seed=s)[1]["trajectory_index"] for s in range(10)]
    assert picks[0] == picks[1] and a == b and len(set(a)) > 1


def test_sync_vector_env():
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("SRL-Math-v0", mode="step") for _ in range(3)])
    obs, _ = envs.reset(seed=0)
    assert len(obs["prompt"]) == 3
    outputs = ["<think>a</think>" + "x", "no think", "<think>c</think>y"]
    obs, rewards, terminated, _truncated, _infos = envs.step(outputs)
    assert rewards[1] == -1.0 and 0.0 <= rewards[0] <= 1.0 and terminated.all()
    envs.close()


def test_data_argument_and_errors(tmp_path: Path, bundled_math: Path):
    env = gym.make("SRL-Math-v0", data=bundled_math, window=1)
    obs, _ = env.reset(options={"index": 0})
    env.step("<think>t</think>step")
    obs, *_ = env.step("<think>t</think>step")
    assert "[steps 1-1 omitted]" in obs["messages"][1]["content"]
    with pytest.raises(SRLError, match="no swe trajectories"):
        gym.make("SRL-SWE-v0", data=bundled_math)
    empty = tmp_path / "unresolved.jsonl"
    record = json.loads(Path(str(bundled_math).replace("math", "swe")).read_text().splitlines()[0])
    empty.write_text(json.dumps({**record, "resolved": False}) + "\n")
    with pytest.raises(SRLError, match="keep='all'"):
        gym.make("SRL-SWE-v0", data=empty)
    assert gym.make("SRL-SWE-v0", data=empty, keep="all").unwrapped.num_examples == len(record["messages"]) // 2 - 1
    with pytest.raises(ValueError, match="mode="):
        gym.make("SRL-SWE-v0", mode="episode")


def test_render_ansi_and_chat_template():
    env = gym.make("SRL-SWE-v0", render_mode="ansi", chat_template=lambda msgs: "|".join(m["role"] for m in msgs))
    obs, info = env.reset(options={"index": 0})
    assert obs["prompt"] == "system|user"
    env.step("<think>t</think>" + render(ToolCall.bash("ls")))
    text = env.render()
    assert "reward=" in text and "expert:" in text and info["task_id"] in text


@pytest.mark.shared_data
def test_shared_data_env(trajectories_dir: Path):
    env = gym.make("SRL-SWE-v0", data=trajectories_dir / "mini-swe-agent", syntax="bash", mode="step")
    assert env.unwrapped.num_examples == 2775
    obs, info = env.reset(seed=0)
    assert info["source_format"] == "mini-swe-agent" and "```bash" in obs["messages"][0]["content"]


def test_a_syntax_that_cannot_write_the_data_fails_at_construction():
    """The bash syntax writes only bash(command): on data with other tools it must fail in gym.make, saying which
    syntaxes can write the data, not with an ActionParseError at the first reset that meets such an action."""
    with pytest.raises(ValueError, match=r"^syntax='bash' cannot write this data: it writes only bash\(command=\.\.\.\)"
                                         r", and action \d+ of \S+ is str_replace_editor\(command, path\)\. Syntaxes "
                                         r"that can write every action: xml, qwen$"):
        gym.make("SRL-SWE-v0", syntax="bash")
    trajs = gym.make("SRL-SWE-v0").unwrapped.trajectories
    with pytest.raises(ValueError, match=r"syntax='text' cannot write this data"):
        build_steps(trajs, StepConfig(syntax="text"))  # what `srl-swe data build --syntax` goes through
    bash_only = [Trajectory(Task("t", "Fix it."), (Step(ToolCall.bash("ls"), "", "a.py"),), "test", "<test>")]
    env = gym.make("SRL-SWE-v0", data=bash_only, syntax="bash", mode="step")
    env.reset(options={"index": 0})
    assert env.step("<think>x</think>\n```bash\nls\n```")[1] == 1.0
    with pytest.raises(ValueError, match=r"Syntaxes that can write every action: xml, qwen, bash$"):
        gym.make("SRL-SWE-v0", data=bash_only, syntax="text")
