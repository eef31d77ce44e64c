"""Step decomposition: one example per expert action, context windows, truncation, math construction."""

from __future__ import annotations

from pathlib import Path

import pytest

from srl_swe.actions import render
from srl_swe.steps import PromptBuilder, StepConfig, build_steps, render_chatml
from srl_swe.tasks import truncate
from srl_swe.trajectories import load_trajectories


def test_one_example_per_action_full_prefix(bundled_swe: Path):
    trajs = load_trajectories(bundled_swe).trajectories
    examples = build_steps(trajs)
    assert len(examples) == sum(len(t.steps) for t in trajs)
    t = trajs[0]
    for k, ex in enumerate(examples[: len(t.steps)]):
        assert ex.step_index == k and ex.num_steps == len(t.steps)
        assert ex.expert_action == render(t.steps[k].action, "xml")
        roles = [r for r, _ in ex.messages]
        assert roles == ["system", "user"] + ["assistant", "user"] * k
        if k:  # the prefix holds the expert's previous action and its real observation
            assert ex.messages[-2][1] == render(t.steps[k - 1].action, "xml")
            assert ex.messages[-1][1] == "OBSERVATION:\n" + truncate(t.steps[k - 1].observation, 4000)
    assert t.task.problem_statement in examples[0].messages[1][1]


def test_last_k_window(bundled_swe: Path):
    t = load_trajectories(bundled_swe).trajectories[2]
    ex = PromptBuilder([t], StepConfig(window=2)).example(0, 5)
    assert [r for r, _ in ex.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "[3 earlier actions and their outputs are omitted]" in ex.messages[1][1]
    assert ex.messages[2][1] == render(t.steps[3].action, "xml")
    assert ex.messages[4][1] == render(t.steps[4].action, "xml")
    first = PromptBuilder([t], StepConfig(window=2)).example(0, 1)
    assert "omitted" not in first.messages[1][1] and len(first.messages) == 4


def test_syntax_and_thoughts(bundled_swe: Path):
    t = load_trajectories(bundled_swe).trajectories[0]
    ex = PromptBuilder([t], StepConfig(syntax="qwen", include_thoughts=True)).example(0, 1)
    assert ex.expert_action.startswith("<tool_call>\n{")
    assert ex.messages[2][1].startswith("<think>\n" + t.steps[0].thought)
    assert '"name": "bash"' in ex.messages[0][1]  # the system prompt shows the syntax


def test_truncate_marker():
    text = "A" * 5000 + "B" * 5000
    out = truncate(text, 1000)
    assert len(out) <= 1000 and out.startswith("A") and out.endswith("B")
    assert "[... 9000 characters truncated ...]" in out
    assert truncate("short", 1000) == "short"
    with pytest.raises(ValueError, match="max_observation_chars"):
        StepConfig(max_observation_chars=10)


@pytest.mark.shared_data
def test_long_observations_are_truncated(trajectories_dir: Path):
    trajs = load_trajectories(trajectories_dir / "mini-swe-agent", keep="all").trajectories
    examples = build_steps(trajs, StepConfig(max_observation_chars=500, window=2))
    obs = [c for ex in examples for r, c in ex.messages[2:] if r == "user"]
    assert obs and all(len(c) <= len("OBSERVATION:\n") + 500 for c in obs)
    assert any("characters truncated ...]" in c for c in obs)


def test_math_construction(bundled_math: Path):
    t = load_trajectories(bundled_math).trajectories[1]
    steps = [s.action.get("content") for s in t.steps]
    examples = build_steps([t])
    assert len(examples) == len(steps)
    for k, ex in enumerate(examples):
        user = ex.messages[1][1]
        assert ex.expert_action == steps[k] and ex.syntax == "text" and ex.answer == t.task.answer
        assert t.task.problem_statement in user and f"Write step {k + 1}." in user
        for i, s in enumerate(steps):
            assert (f"Step {i + 1}: {s}" in user) == (i < k)


def test_chatml_rendering():
    text = render_chatml([("system", "S"), ("user", "U")])
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
