"""Action syntaxes and the SRL reward, on real expert actions."""

from __future__ import annotations

import difflib
import random
from pathlib import Path

import pytest

from srl_swe.actions import SYNTAXES, extract_action, parse_output, render
from srl_swe.errors import ActionParseError
from srl_swe.rewards import FORMAT_PENALTY, SRLReward, lcs_similarity, score_output, sequence_similarity
from srl_swe.schema import ToolCall
from srl_swe.trajectories import load_trajectories

EDIT = ToolCall.make("str_replace_editor", command="str_replace", path="/testbed/a.py",
                     old_str="    return x\n", new_str="    return x + 1\n")


def test_render_formats():
    xml = "<function=bash>\n<parameter=command>ls -la</parameter>\n</function>"
    assert render(ToolCall.bash("ls -la"), "xml") == xml
    assert render(ToolCall("submit", ()), "xml") == "<function=submit>\n</function>"
    assert render(ToolCall.bash("ls"), "bash") == "```bash\nls\n```"
    qwen = '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call>'
    assert render(ToolCall.bash("ls"), "qwen") == qwen
    assert "<parameter=old_str>\n    return x\n\n</parameter>" in render(EDIT, "xml")
    with pytest.raises(ActionParseError, match="bash syntax can only write bash"):
        render(EDIT, "bash")


@pytest.mark.parametrize("syntax", ["xml", "qwen"])
def test_round_trip_edit(syntax: str):
    assert parse_output("<think>fix it</think>\n" + render(EDIT, syntax), syntax).action == EDIT


@pytest.mark.parametrize("text, reason", [
    ("<function=bash>\n<parameter=command>ls</parameter>\n</function>", "must start with <think>"),
    ("<think>a</think>", "no action after </think>"),
    ("<think>a</think>hello", "no well-formed xml action"),
    ("<think>a</think><function=bash>\n<parameter=command>ls</parameter>\n</function>\ndone", "text after"),
    ("<think>a</think>I will list.<function=bash><parameter=command>ls</parameter></function>", "text before"),
    ("<think>a</think><function=bash></function><function=submit></function>", "exactly one xml action, found 2"),
    ("<think>a</think><function=bash><parameter=command>ls</parameter>oops</function>", "stray text"),
    ("<think>a</think><think>b</think><function=submit></function>", "more than one <think>"),
    ("<think>a</think><function=bash><parameter=command>ls", "no well-formed xml action"),
])
def test_invalid_outputs(text: str, reason: str):
    with pytest.raises(ActionParseError, match=reason):
        parse_output(text, "xml")
    score = score_output(text, ToolCall.bash("ls"), "xml")
    assert score.reward == FORMAT_PENALTY == -1.0 and not score.valid and reason in score.reason


def test_qwen_and_bash_parsing():
    openai_style = '{"name": "bash", "arguments": "{\\"command\\": \\"ls\\"}"}'
    out = parse_output(f"<think>x</think><tool_call>{openai_style}</tool_call>", "qwen")
    assert out.action == ToolCall.bash("ls")  # OpenAI-style string arguments are accepted
    with pytest.raises(ActionParseError, match="not JSON"):
        parse_output("<think>x</think><tool_call>{oops}</tool_call>", "qwen")
    fenced = parse_output("<think>x</think>\n```bash\ngrep -n foo a.py\n```\n", "bash")
    assert fenced.action.get("command") == "grep -n foo a.py"
    with pytest.raises(ActionParseError, match="found 2"):
        parse_output("<think>x</think>```bash\nls\n```\n```bash\npwd\n```", "bash")
    assert extract_action("THOUGHT: look\n\n```bash\nls\n```", "bash") == ("THOUGHT: look", ToolCall.bash("ls"))
    assert set(SYNTAXES) == {"xml", "qwen", "bash", "text"}


def test_monologue_is_not_scored():
    expert = ToolCall.bash("grep -n 'def mean' stats/core.py")
    guess = render(ToolCall.bash("grep -n mean stats/core.py"))
    short = score_output("<think>x</think>" + guess, expert)
    long = score_output("<think>" + "very long reasoning " * 500 + "</think>" + guess, expert)
    assert short.reward == long.reward and short.valid
    assert short.reward == difflib.SequenceMatcher(None, short.predicted, short.expert).ratio()
    assert score_output("<think>x</think>" + render(expert), expert).reward == 1.0


@pytest.mark.shared_data
def test_reward_equals_stdlib_difflib_on_real_actions(trajectories_dir: Path):
    trajs = load_trajectories(trajectories_dir / "mini-swe-agent", keep="all").trajectories[:20]
    actions = [render(s.action, "xml") for t in trajs for s in t.steps]
    rng = random.Random(0)
    for expert in actions[:300]:
        cut = rng.randrange(len(expert))
        pred = expert[:cut] + "zz" + expert[cut + rng.randrange(1, 20):] if rng.random() < 0.7 else rng.choice(actions)
        assert sequence_similarity(pred, expert) == difflib.SequenceMatcher(None, pred, expert).ratio()


def test_lcs_metric_is_not_the_papers():
    a, b = "abxcd" * 3, "abcd" * 3
    assert lcs_similarity(a, b) >= sequence_similarity(a, b)
    assert lcs_similarity("kitten", "sitting") == pytest.approx(2 * 4 / 13)
    out = "<think>t</think>" + render(ToolCall.bash("ls -l"))
    assert score_output(out, ToolCall.bash("ls -la"), metric="lcs").reward == pytest.approx(
        lcs_similarity(render(ToolCall.bash("ls -l")), render(ToolCall.bash("ls -la"))))


def test_trl_reward_adapter():
    f = SRLReward()
    expert = [render(ToolCall.bash("ls")), render(ToolCall.bash("pwd")), render(ToolCall.bash("ls"))]
    completions = [
        [{"role": "assistant", "content": "<think>a</think>" + expert[0]}],   # conversational
        "<think>b</think>" + render(ToolCall.bash("pwd -P")),                # plain text
        "no think",                                                           # format violation
    ]
    rewards = f(prompts=[None] * 3, completions=completions, expert_action=expert)
    assert rewards[0] == 1.0 and rewards[2] == -1.0
    assert rewards[1] == difflib.SequenceMatcher(None, render(ToolCall.bash("pwd -P")), expert[1]).ratio()
    assert f.__name__ == "srl_sequence_matcher"
    with pytest.raises(ValueError, match="completions but"):
        f(completions=["x"], expert_action=[])


def test_c_backend_is_built_and_exact():
    """CI builds the C extension; it must equal the standard library on edge cases and autojunk boundaries."""
    from srl_swe import _fastdiff
    from srl_swe.rewards import RATIO_BACKEND

    assert RATIO_BACKEND == "srl_swe._fastdiff"
    rng = random.Random(1)
    cases = [("", ""), ("a", ""), ("", "a"), ("abc", "abc"), ("é😀ab", "😀ab\x00"), ("ab" * 500, "ba" * 500)]
    for n in (198, 199, 200, 201, 399, 400, 401, 1000):  # len(b) >= 200 switches autojunk on
        b = "".join(rng.choice("abcx") for _ in range(n))
        cases += [(b[::-1], b), ("x" * n, b), (b[: n // 2] + "zz" + b[n // 2 :], b)]
        # a character exactly at, and one above, the popularity threshold len(b)//100 + 1
        limit = n // 100 + 1
        for count in (limit, limit + 1):
            b2 = list("".join(rng.choice("abcdefghijklmnopqrstuvw") for _ in range(n)).replace("q", "r"))
            for p in rng.sample(range(n), count):
                b2[p] = "q"
            cases.append(("".join(rng.choice("qrs") for _ in range(n)), "".join(b2)))
    for a, b in cases:
        assert _fastdiff.ratio(a, b) == difflib.SequenceMatcher(None, a, b).ratio(), (a[:20], b[:20])


def test_require_think_false_scores_bare_actions():
    expert = ToolCall.text("She makes 9 * 2 = $18 every day.")
    bare = "She makes 9 * 2 = 18 dollars."
    strict = score_output(bare, expert, "text")
    lenient = score_output(bare, expert, "text", require_think=False)
    assert strict.reward == -1.0 and not strict.valid
    assert lenient.valid and lenient.reward == difflib.SequenceMatcher(None, bare, expert.get("content")).ratio()
    # a think block, when present, must still be well formed; and thinking is never scored
    assert score_output("<think>x", expert, "text", require_think=False).reward == -1.0
    assert score_output("<think>x</think>" + bare, expert, "text", require_think=False).reward == lenient.reward
    assert SRLReward(require_think=False)(completions=[bare], expert_action=[expert.get("content")],
                                          syntax=["text"]) == [lenient.reward]
