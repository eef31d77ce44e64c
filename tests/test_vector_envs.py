"""gym.make_vec for every registered id: the default (the ids' vector entry point: worker processes, observations
pickled over pipes) and "sync" give, env by env, the observations, rewards and infos of the same envs run one by
one, non-ASCII text included; closing leaves no worker process or sandbox behind."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import gymnasium as gym
import pytest

from srl_swe import ENV_IDS, EXEC_ENV_IDS
from srl_swe.envs.policies import ExpertStepPolicy, NoisyExpertStepPolicy

# Seed 12 starts SRL-Math-v0 on the one bundled solution with a non-ASCII character ("á"); the others are
# spread over the rest.
SEEDS = [0, 12, 5]
# Longer than every bundled episode (at most 9 steps), so each env ends one and is autoreset by the vector env.
STEPS = 12


def unbatch(infos: dict, i: int) -> dict:
    """Env ``i``'s top-level info from a vector env's batched infos (a key counts where its ``_key`` mask is
    set). Nested dicts (``score``) are left out: batching turns their None into nan."""
    return {k: v[i] for k, v in infos.items()
            if not k.startswith("_") and not isinstance(v, dict) and infos[f"_{k}"][i]}


def flat(info: dict) -> dict:
    return {k: v for k, v in info.items() if not isinstance(v, dict)}


def assert_closed_cleanly(vec: gym.vector.VectorEnv) -> None:
    vec.close()
    if isinstance(vec, gym.vector.AsyncVectorEnv):
        assert [p.exitcode for p in vec.processes] == [0] * vec.num_envs and not any(
            p.is_alive() for p in vec.processes)


def test_every_id_has_the_vector_entry_point():
    ours = {s.id: s for s in gym.registry.values() if str(s.entry_point).startswith("srl_swe.")}
    assert sorted(ours) == sorted({**ENV_IDS, **EXEC_ENV_IDS})
    for env_id, spec in ours.items():
        assert spec.vector_entry_point == f"srl_swe.envs.vector:{env_id}"
        # a string entry point keeps the spec serialisable, as it was before
        assert json.loads(spec.to_json())["vector_entry_point"] == spec.vector_entry_point


@pytest.mark.parametrize("mode", [None, "sync"])
@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_step_envs_vectorized_match_one_by_one(env_id: str, mode: str | None):
    vec = gym.make_vec(env_id, num_envs=3, vectorization_mode=mode)
    assert type(vec) is (gym.vector.SyncVectorEnv if mode else gym.vector.AsyncVectorEnv)
    assert getattr(vec, "shared_memory", False) is False
    envs = [gym.make(env_id) for _ in SEEDS]
    # Env 0 writes the expert's action, env 1 a corrupted one, env 2 breaks the format.
    policies = [ExpertStepPolicy(envs[0].unwrapped), NoisyExpertStepPolicy(envs[1].unwrapped, seed=1),
                lambda obs, info: "no think block"]

    obs, infos = vec.reset(seed=SEEDS)
    singles = [env.reset(seed=s) for env, s in zip(envs, SEEDS, strict=True)]
    assert vec.observation_space.contains(obs)
    done, rewards, prompts, autoresets = [False] * 3, [[] for _ in SEEDS], [], 0
    for t in range(STEPS + 1):
        for i, (o, info) in enumerate(singles):
            assert obs["prompt"][i] == o["prompt"] and obs["messages"][i] == o["messages"]
            assert unbatch(infos, i) == flat(info)
            prompts.append(o["prompt"])
        if t == STEPS:
            break
        # an ended env's action is ignored (the vector env resets it), and its policy has no step to write
        actions = ["ignored" if d else policy(o, info)
                   for d, policy, (o, info) in zip(done, policies, singles, strict=True)]
        obs, reward, terminated, truncated, infos = vec.step(actions)
        for i, env in enumerate(envs):
            if done[i]:  # the vector env resets an ended env on the next step (gymnasium's NEXT_STEP autoreset)
                singles[i], r, done[i] = env.reset(), 0.0, False
                autoresets += 1
            else:
                o, r, done[i], _, info = env.step(actions[i])
                singles[i] = (o, info)
                rewards[i].append(r)
            assert (reward[i], terminated[i], truncated[i]) == (r, done[i], False)
    assert_closed_cleanly(vec)
    assert autoresets >= 3 and set(rewards[0]) == {1.0} and set(rewards[2]) == {-1.0} and min(rewards[1]) < 1.0
    assert any("á" in p for p in prompts) == (env_id == "SRL-Math-v0")  # only the math data has non-ASCII


def test_explicit_async_needs_shared_memory_off():
    # Naming "async" bypasses the vector entry point (gymnasium builds AsyncVectorEnv itself, shared memory on)
    with pytest.raises(TypeError, match="disable `shared_memory`"):
        gym.make_vec("SRL-Math-v0", num_envs=2, vectorization_mode="async")
    vec = gym.make_vec("SRL-Math-v0", num_envs=2, vectorization_mode="async", vector_kwargs={"shared_memory": False})
    obs, _ = vec.reset(seed=[12, 12])
    assert "á" in obs["prompt"][0] and obs["prompt"][0] == obs["prompt"][1]
    assert_closed_cleanly(vec)


def test_exec_env_vectorized_matches_one_by_one(local_tasks: Path):
    kwargs = {"data": str(local_tasks), "runtime": "local"}
    vec = gym.make_vec("SRL-SWE-Exec-v0", num_envs=2, **kwargs)
    pids = [p.pid for p in vec.processes]
    envs = [gym.make("SRL-SWE-Exec-v0", **kwargs) for _ in range(2)]
    obs, infos = vec.reset(seed=[0, 1])
    singles = [env.reset(seed=s) for env, s in zip(envs, [0, 1], strict=True)]
    ids = [info["instance_id"] for _, info in singles]
    assert list(infos["instance_id"]) == ids and len(set(ids)) == 2

    def bash(command: str) -> str:
        return f"<think>t</think><function=bash><parameter=command>{command}</parameter></function>"

    # Env 0 applies its task's gold patch, env 1 prints non-ASCII text; both run one by one as well.
    gold = (local_tasks / ids[0] / "gold.patch").read_text(encoding="utf-8")
    actions = [bash(f"git apply <<'PATCH'\n{gold}PATCH"), bash("echo 'café ✓ 日本語'")]
    obs, reward, terminated, truncated, infos = vec.step(actions)
    keys = ("instance_id", "step", "exit_status", "format_error")
    for i, (o, r, term, trunc, info) in enumerate(env.step(a) for env, a in zip(envs, actions, strict=True)):
        assert obs["prompt"][i] == o["prompt"] and obs["messages"][i] == o["messages"]
        assert (reward[i], terminated[i], truncated[i]) == (r, term, trunc) == (0.0, False, False)
        assert {k: unbatch(infos, i)[k] for k in keys} == {k: info[k] for k in keys}
    assert obs["messages"][1][-1]["content"] == "OBSERVATION:\ncafé ✓ 日本語\n"
    # Env 0 submits: graded in its worker (a fresh sandbox running the task's tests), resolved. Grading takes
    # seconds, so this step is checked against its known outcome, not run a second time one by one.
    obs, reward, terminated, truncated, infos = vec.step(["<think>t</think><function=submit></function>",
                                                          bash("git status --short")])
    assert list(reward) == [1.0, 0.0] and list(terminated) == [True, False] and not truncated.any()
    assert (unbatch(infos, 0)["exit_status"], unbatch(infos, 0)["resolved"]) == ("submitted", True)
    assert obs["messages"][1][-1]["content"] == envs[1].step(bash("git status --short"))[0]["messages"][-1]["content"]
    assert_closed_cleanly(vec)
    for env in envs:
        env.close()
    # each worker's close() removed its repository copy (srl-swe-local-HOST-PID-RANDOM)
    assert [d for pid in pids for d in Path(tempfile.gettempdir()).glob(f"srl-swe-local-*-{pid}-*")] == []
