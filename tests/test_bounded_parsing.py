"""Parsing and scoring in bounded time, with one outcome for malformed outputs: −1 and a reason.

* The linear readers find what the regexes they replace found (those regexes are kept here to check it).
* Any output up to the action space's maximum size (``MAX_OUTPUT_CHARS``, 2**20 characters) is scored in
  < 1 s of CPU time, adversarial ones included (unclosed tags, 30k parameters, deep nesting, many ``<think>``
  tags, mixed syntaxes), through ``score_output``, ``format_violation``, ``env.step`` and ``SRLReward``.
* JSON nested past ``MAX_JSON_DEPTH`` scores −1 at every depth up to and past the recursion limit (a depth
  that ``json.loads`` accepted and ``json.dumps`` could not write used to raise RecursionError).
"""

from __future__ import annotations

import functools
import re
import time

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from srl_swe.actions import BashSyntax, Match, QwenSyntax, XmlSyntax, _json_loads, tool_call_from_json
from srl_swe.envs.base import MAX_OUTPUT_CHARS
from srl_swe.errors import ActionParseError
from srl_swe.rewards import FORMAT_PENALTY, SRLReward, format_violation, score_output
from srl_swe.schema import MAX_JSON_DEPTH, ToolCall

SYNTAXES = ("xml", "qwen", "bash", "text")
CPU_SECONDS = 1.0  # the documented bound for one output of up to MAX_OUTPUT_CHARS characters
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WS = [" ", "\n", "\t", "\r", "\x0b", "\x1c", "\x85", "\xa0", "\u2028"]  # white space to str.isspace() and to \s

# ------------------------------------------------------------------- the regexes the linear readers replace

OLD_FUNC = re.compile(r"<function=([^>\s]+)>(.*?)</function>", re.S)
OLD_QWEN = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
OLD_BASH = re.compile(r"```bash\s*\n(.*?)\n```", re.S)


def _joined(fragments: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(fragments + WS) | st.text(max_size=2), max_size=24).map("".join)


def _outcome(find, text: str):
    try:
        return [(m.start, m.end, m.call) for m in find(text)]
    except ActionParseError as e:
        return str(e)


def _old_xml(text: str) -> list[Match]:
    return [Match(m.start(), m.end(), ToolCall(m.group(1), XmlSyntax()._params(m.group(1), m.group(2))))
            for m in OLD_FUNC.finditer(text)]


@FAST
@given(text=_joined(["<function=", "a", ">", "</function>", "<parameter=", "x>", "</parameter>", "<", "=b>"]))
@example(text="<function=a<function=b c>x</function><function=d>\n</function>")
def test_xml_find_reads_as_the_regex_did(text: str) -> None:
    assert _outcome(XmlSyntax().find, text) == _outcome(_old_xml, text)


def _old_qwen(text: str) -> list[Match]:
    return [Match(m.start(), m.end(), tool_call_from_json(_json_loads(m.group(1), "<tool_call> body")))
            for m in OLD_QWEN.finditer(text)]


def _old_bash(text: str) -> list[Match]:
    return [Match(m.start(), m.end(), ToolCall.bash(m.group(1))) for m in OLD_BASH.finditer(text)]


PAYLOAD = '{"name": "f", "arguments": {"k": [1]}}'


@FAST
@given(text=_joined(["<tool_call>", "</tool_call>", "</tool_call", PAYLOAD, "```bash", "```", "\n```", "`", "bash"]))
@example(text="```bash\n\n```")
@example(text="```bash \n \n```x\n```")
@example(text=f"<tool_call>{PAYLOAD}</tool_call><tool_call><tool_call>{PAYLOAD}</tool_call>")
def test_qwen_and_bash_find_read_as_the_regexes_did(text: str) -> None:
    assert _outcome(BashSyntax().find, text) == _outcome(_old_bash, text)
    assert _outcome(QwenSyntax().find, text) == _outcome(_old_qwen, text)


# ------------------------------------------------------------------ outputs of the action space's maximum size


def _fill(unit: str, prefix: str = "<think>x</think>", suffix: str = "") -> str:
    body = (unit * (MAX_OUTPUT_CHARS // len(unit) + 1))[: MAX_OUTPUT_CHARS - len(prefix) - len(suffix)]
    return prefix + body + suffix


@functools.cache
def _adversarial() -> dict[str, str]:
    params = "".join(f"<parameter=p{i}>v</parameter>\n" for i in range(MAX_OUTPUT_CHARS // 20))
    fit = params[: MAX_OUTPUT_CHARS - 80].rsplit("\n", 1)[0]
    mixed = ["<function=a>", "<function=", "<parameter=x>", "</parameter>", "</function>", "<tool_call>",
             "</tool_call>", "```bash\n", "\n```", "{", "[", '"', " ", "\n", "x", ">"]
    return {
        "unclosed <function=a>": _fill("<function=a>"),
        "<function= chain cut by a space": _fill("<function=", suffix=" "),
        "unclosed <parameter=": _fill("<parameter=x>", prefix="<think>x</think><function=a>"),
        "30k parameters": f"<think>x</think><function=a>\n{fit}\n</function>",
        "30k parameters, last one twice": f"<think>x</think><function=a>\n{fit}<parameter=p0>v</parameter></function>",
        "unclosed <tool_call>": _fill("<tool_call>"),
        "nested 1M deep": _fill("[", '<think>x</think><tool_call>{"name": "a", "arguments": {"k": ', "</tool_call>"),
        "nested 990 deep": '<think>x</think><tool_call>{"name": "a", "arguments": {"k": '
                           + "[" * 990 + "]" * 990 + "}}</tool_call>",
        "unclosed ```bash": _fill("```bash\n"),
        "```bash then newlines": _fill("\n", prefix="<think>x</think>```bash"),
        "many <think>": _fill("<think>", prefix=""),
        "many <think></think>": _fill("<think></think>", prefix=""),
        "spaces then <think>": _fill(" ", prefix="", suffix="<think>"),
        "mixed syntaxes": "<think>x</think>" + "".join(mixed[(i * 7919) % len(mixed)] for i in range(300_000))[
            : MAX_OUTPUT_CHARS - 16],
        "one 1M-character command": _fill("ab c\n", prefix="<think>x</think>```bash\n", suffix="\n```"),
    }


@pytest.fixture(scope="module")
def adversarial() -> dict[str, str]:
    return _adversarial()


def test_action_space_bound_is_the_one_timed(adversarial: dict[str, str]) -> None:
    env = gym.make("SRL-SWE-v0")
    assert env.action_space.max_length == MAX_OUTPUT_CHARS == 2**20
    assert all(len(text) <= MAX_OUTPUT_CHARS and env.action_space.contains(text) for text in adversarial.values())
    full = [name for name, text in adversarial.items() if len(text) > 0.99 * MAX_OUTPUT_CHARS]
    assert len(full) == len(adversarial) - 1  # all but "nested 990 deep" are at the maximum size


@pytest.mark.parametrize("name", list(_adversarial()))
def test_max_size_outputs_score_within_a_second(adversarial: dict[str, str], name: str) -> None:
    text = adversarial[name]
    expert = "<function=a>\n<parameter=p0>v</parameter>\n</function>"
    for syntax in SYNTAXES:
        for require_think in (True, False):
            start = time.process_time()
            score = score_output(text, expert, syntax, require_think=require_think)
            elapsed = time.process_time() - start
            assert elapsed < CPU_SECONDS, f"{name} ({syntax}): {elapsed:.2f} s"
            assert score.reason and (score.reward == FORMAT_PENALTY) is (not score.valid)
            assert score.valid or score.similarity is None
            assert -1.0 <= score.reward <= 1.0
            assert format_violation(text, syntax, require_think) is (not score.valid)


def test_max_size_outputs_through_env_step_and_the_trl_reward(adversarial: dict[str, str]) -> None:
    texts = list(adversarial.values())
    for syntax in ("xml", "qwen"):
        env = gym.make("SRL-SWE-v0", syntax=syntax, mode="step")
        rewards = []
        for text in texts:
            env.reset(options={"index": 0})
            start = time.process_time()
            _, reward, terminated, _, info = env.step(text)
            assert time.process_time() - start < CPU_SECONDS and terminated
            assert reward == score_output(text, info["expert_action"], syntax).reward
            rewards.append(reward)
        experts = [info["expert_action"]] * len(texts)
        assert SRLReward(syntax)(completions=texts, expert_action=experts) == rewards


def test_known_cases_give_their_reasons(adversarial: dict[str, str]) -> None:
    reasons = {name: score_output(text, "x", "xml").reason for name, text in adversarial.items()}
    assert reasons["unclosed <function=a>"].startswith("expected exactly one xml action, found 87380")
    assert reasons["30k parameters"] == "ok"
    assert reasons["30k parameters, last one twice"] == "parameter 'p0' given twice"
    assert reasons["many <think></think>"] == "more than one <think> block"
    qwen = {name: score_output(text, "x", "qwen").reason for name, text in adversarial.items()}
    assert qwen["nested 1M deep"] == qwen["nested 990 deep"] == "<tool_call> body is nested deeper than 100 levels"
    assert score_output(adversarial["one 1M-character command"], "x", "bash").valid


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_joined(["<think>", "</think>", "<function=a>", "<parameter=x>", "</parameter>", "</function>",
                     "<tool_call>", "</tool_call>", '{"name": "a", "arguments": ', "[", "]", "{", "}", "```bash\n",
                     "\n```", '"', ":", ","]),
       depth=st.integers(0, 1200), syntax=st.sampled_from(SYNTAXES), require_think=st.booleans())
def test_adversarial_outputs_score_or_get_a_reason(text: str, depth: int, syntax: str, require_think: bool) -> None:
    for output in (text, text.replace("[", "[" * depth, 1).replace("]", "]" * depth, 1)):
        score = score_output(output, "x", syntax, require_think=require_think)
        assert (score.reward == FORMAT_PENALTY and score.reason != "ok") or (score.valid and 0 <= score.reward <= 1)


# -------------------------------------------------------------------------------------------- deep nesting

# Every depth from below the limit to past the recursion limit: the band that json.loads accepted and
# json.dumps could not write (about 983 at the top level, about 950 inside pytest) lies somewhere in there.
DEPTHS = [*range(MAX_JSON_DEPTH - 5, MAX_JSON_DEPTH + 5), *range(850, 1001), 5000]


def _nested(n: int) -> str:
    return "[" * n + "]" * n


def test_deep_tool_call_json_scores_minus_one_at_every_depth() -> None:
    env = gym.make("SRL-SWE-v0", syntax="qwen", mode="step")
    trl = SRLReward("qwen")
    for n in DEPTHS:
        # The payload and its "arguments" object are two levels; arguments sent as a JSON string, one.
        for body, around in (('{"name": "bash", "arguments": {"command": %s}}', 2),
                             ('{"name": "bash", "arguments": "{\\"c\\": %s}"}', 1)):
            output = "<think>x</think><tool_call>" + body % _nested(n) + "</tool_call>"
            score = score_output(output, "x", "qwen")
            if n + around <= MAX_JSON_DEPTH:
                assert score.valid, (n, score.reason)
                continue
            assert score.reward == FORMAT_PENALTY and "nested deeper than 100 levels" in score.reason, n
            assert format_violation(output, "qwen") is True
            assert trl(completions=[output], expert_action=["x"]) == [FORMAT_PENALTY]
            env.reset(options={"index": 0})
            assert env.step(output)[1] == FORMAT_PENALTY
