"""Property tests: loaders and the action parser fail only with their own error types; actions round-trip
through every syntax; the step reward is difflib's ratio and is bounded even on megabyte inputs."""

from __future__ import annotations

import contextlib
import difflib
import json
import random
import re
import string
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from srl_swe.actions import SYNTAXES, parse_output, render
from srl_swe.errors import ActionParseError, TrajectoryFormatError
from srl_swe.rewards import FORMAT_PENALTY, format_violation, score_output
from srl_swe.schema import ToolCall
from srl_swe.trajectories import load_file, load_trajectories

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SYNTAX_NAMES = sorted(SYNTAXES)

# ------------------------------------------------------------------------------------ JSON strategies

REAL_KEYS = [
    "messages", "role", "content", "tool_calls", "trajectory", "history", "action", "observation", "question",
    "answer", "problem", "steps", "solution", "trajectory_format", "info", "instance_id", "resolved",
]
# Text that reaches the format detectors and parsers rather than failing at the first check.
TEXT_FRAGMENTS = [
    "mini-swe-agent-1", "user", "assistant", "system", "tool", "<function=bash>", "<parameter=command>ls</parameter>",
    "</function>", "<tool_call>", '{"name": "bash", "arguments": {"command": "ls"}}', "</tool_call>",
    "```bash\nls\n```", "THOUGHT: ", "OBSERVATION:\n", "#### 42", "1. step one\n2. step two", "\\boxed{3}",
    "<pr_description>\nfix it\n</pr_description>", "\n", "",
]
texts = st.text(max_size=20) | st.sampled_from(TEXT_FRAGMENTS)
leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
        | st.dictionaries(st.sampled_from(REAL_KEYS), children, max_size=6)
    )


json_values = st.recursive(leaves, _containers, max_leaves=30)

# Shapes close to the real formats, with any field possibly of the wrong type.
tool_calls = st.lists(
    st.fixed_dictionaries({"function": st.fixed_dictionaries(
        {}, optional={"name": st.sampled_from(["bash", "", "str_replace_editor"]) | json_values,
                      "arguments": st.sampled_from(['{"command": "ls"}', "", "{", "[1]"]) | json_values},
    )}, optional={"id": st.sampled_from(["a", "b"])}) | json_values,
    max_size=3,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool"]) | json_values},
        optional={
            "content": texts | st.lists(st.fixed_dictionaries({"text": texts}) | texts, max_size=3) | json_values,
            "tool_calls": tool_calls, "tool_call_id": st.sampled_from(["a", "b"]),
        },
    ),
    max_size=8,
)
chat_like = st.fixed_dictionaries(
    {"messages": messages | json_values},
    optional={
        "instance_id": texts | json_values, "resolved": st.booleans() | json_values, "trajectory_format": texts,
        "info": st.fixed_dictionaries({}, optional={"submission": texts}) | json_values,
    },
)
swe_agent_steps = st.fixed_dictionaries(
    {}, optional={k: texts | json_values for k in ("action", "thought", "observation")}
)
swe_agent_like = st.fixed_dictionaries(
    {"trajectory": st.lists(swe_agent_steps | json_values, max_size=4) | json_values},
    optional={"history": messages | json_values, "replay_config": json_values | st.just('{"env": {"repo": 1}}'),
              "info": json_values},
)
math_like = st.fixed_dictionaries(
    {},
    optional={k: texts | json_values | st.lists(texts, max_size=3)
              for k in ("question", "answer", "problem", "steps", "solution", "id")},
)
report_like = st.fixed_dictionaries(
    {}, optional={k: json_values | st.lists(texts, max_size=3) for k in ("resolved", "resolved_ids", "unresolved_ids",
                                                                        "error_ids", "inst")},
)
records = json_values | chat_like | swe_agent_like | math_like | report_like
documents = records | st.lists(records, max_size=4)

# File names: trajectory files, and report files (only read as reports by load_trajectories).
NAMES = ["data.json", "data.jsonl", "data.traj", "data.traj.json", "inst.report.json", "report.json"]
GOOD_RECORD = {
    "instance_id": "inst",
    "messages": [{"role": "user", "content": "task"}, {"role": "assistant", "content": "```bash\nls\n```"},
                 {"role": "user", "content": "a.py"}],
}


def _dump(doc: object, name: str, ensure_ascii: bool) -> str:
    if name.endswith(".jsonl") and isinstance(doc, list):
        return "".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in doc)
    return json.dumps(doc, ensure_ascii=ensure_ascii)


def _check_loaders(write) -> None:
    """Write one file with ``write(path)``; loading it (alone, or in a folder scan) raises nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            folder = Path(tmp) / name.replace(".", "_")
            folder.mkdir()
            path = folder / name
            write(path)
            for load in (load_file, lambda p: load_trajectories(p, keep="all")):
                with contextlib.suppress(TrajectoryFormatError):
                    load(path)
            # A folder scan never raises for bad content: it reports it in ``skipped``.
            (folder / "good.jsonl").write_text(json.dumps(GOOD_RECORD) + "\n", encoding="utf-8")
            result = load_trajectories(folder, keep="all")
            assert "inst" in [t.id for t in result.trajectories]


@FAST
@given(doc=documents, ensure_ascii=st.booleans())
def test_loaders_on_arbitrary_json(doc: object, ensure_ascii: bool) -> None:
    _check_loaders(lambda p: p.write_text(_dump(doc, p.name, ensure_ascii), encoding="utf-8"))


@FAST
@given(text=st.text(max_size=200)
       | st.lists(st.sampled_from([*TEXT_FRAGMENTS, "{", "}", "[", "]", '"', ","]), max_size=30).map("".join))
@example(text="1" * 5000)
@example(text='{"history": [], "replay_config": "' + "1" * 5000 + '"}')
@example(text='{"messages": [{"role": "user"}, {"role": "assistant", "content": 1}]}')
def test_loaders_on_arbitrary_text(text: str) -> None:
    _check_loaders(lambda p: p.write_text(text, encoding="utf-8"))


@FAST
@given(data=st.binary(max_size=200))
@example(data=b'{"messages": []}\xff')
@example(data=b"\xef\xbb\xbf[]")
def test_loaders_on_arbitrary_bytes(data: bytes) -> None:
    _check_loaders(lambda p: p.write_bytes(data))


LINE_BREAKERS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r", "\n"]


@FAST
@given(questions=st.lists(st.text(st.characters(codec="utf-8") | st.sampled_from(LINE_BREAKERS), max_size=30),
                          min_size=1, max_size=5),
       ensure_ascii=st.booleans())
@example(questions=["a\u2028b", "c\x85d"], ensure_ascii=False)
def test_jsonl_records_round_trip(questions: list[str], ensure_ascii: bool) -> None:
    """Every record json.dumps writes on a line is read back: JSON strings may hold U+2028, NEL, etc. raw."""
    rows = [{"question": q, "answer": "Add them.\n#### 7"} for q in questions]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gsm.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in rows), encoding="utf-8")
        trajs, skipped = load_file(path)
    assert skipped == []
    assert [t.task.problem_statement for t in trajs] == [q.strip() for q in questions]
    assert [t.id for t in trajs] == [f"gsm-{n}" for n in range(1, len(rows) + 1)]


# ------------------------------------------------------------------------------------------ parsing

PARSE_FRAGMENTS = [
    "<think>", "</think>", "<function=", "<function=bash>", "<parameter=x>", "</parameter>", "</function>",
    "<tool_call>", "</tool_call>", "```bash\n", "\n```", "{", "}", '"name"', '"arguments"', ":", ",", '"', "[", "]",
    "1", "ls", " ", "\n", "x", ">", "=", "99999999999999999999",
]
outputs = st.text() | st.lists(st.sampled_from(PARSE_FRAGMENTS) | st.text(max_size=4), max_size=25).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=outputs, syntax=st.sampled_from(SYNTAX_NAMES))
@example(text="<think></think><tool_call>" + "1" * 5000 + "</tool_call>", syntax="qwen")
@example(text="<think></think><tool_call>" + "[" * 100_000 + "</tool_call>", syntax="qwen")
@example(text='<think></think><tool_call>{"name": "a", "arguments": "' + "[" * 100_000 + '"}</tool_call>',
         syntax="qwen")
def test_parse_output_raises_only_action_parse_error(text: str, syntax: str) -> None:
    try:
        parsed = parse_output(text, syntax)
    except ActionParseError:
        return
    assert isinstance(parsed.action, ToolCall)
    assert render(parsed.action, syntax)  # whatever parses can be rendered back


@settings(max_examples=300, deadline=None)
@given(text=outputs, syntax=st.sampled_from(SYNTAX_NAMES), require_think=st.booleans())
@example(text="<think>t</think>\n<function=bash>\n<parameter=command>ls</parameter>\n</function>", syntax="xml",
         require_think=True)
def test_format_violation_agrees_with_score_output(text: str, syntax: str, require_think: bool) -> None:
    """The trainer's logged format-violation column checks the format without computing the similarity: it
    must flag exactly the outputs the reward penalises."""
    score = score_output(text, "ls", syntax, require_think=require_think)  # expert as its rendering
    assert format_violation(text, syntax, require_think) is (not score.valid)
    assert (score.reward == FORMAT_PENALTY) is (not score.valid)


# ----------------------------------------------------------------------------------------- round trip

IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
THINK_TAGS = ("<think>", "</think>")
# Delimiters a value may not contain in each syntax (the parser would end the value there, or count two actions).
FORBIDDEN = {
    "xml": ("</parameter>", "<parameter=", "</function>", "<function=", *THINK_TAGS),
    "qwen": ("<tool_call>", "</tool_call>", *THINK_TAGS),
    "bash": ("\n```", "```bash", *THINK_TAGS),
    "text": THINK_TAGS,
}
VALUE_FRAGMENTS = [
    "<", ">", "=", "/", "`", "``", "```", "\n", " ", "\t", "\r", "\\", '"', "{", "}", "<parameter", "</param",
    "<function", "function>", "tool_call", "<think", "think>", "bash", "é", "\u2028", "\x00",
]
raw_values = st.text() | st.lists(st.sampled_from(VALUE_FRAGMENTS) | st.text(max_size=3), max_size=12).map("".join)


def _values(syntax: str) -> st.SearchStrategy[str]:
    return raw_values.filter(lambda v: not any(d in v for d in FORBIDDEN[syntax]))


def _bash_command_ok(cmd: str) -> bool:
    # The fence regex ```bash\s*\n swallows leading white space up to a newline: such commands are not representable.
    return re.match(r"\s*\n", cmd) is None


def calls(syntax: str) -> st.SearchStrategy[ToolCall]:
    if syntax == "bash":
        return _values("bash").filter(_bash_command_ok).map(ToolCall.bash)
    if syntax == "text":
        return _values("text").map(str.strip).filter(bool).map(ToolCall.text)
    arguments = st.lists(st.tuples(IDENT, _values(syntax)), max_size=4, unique_by=lambda kv: kv[0]).map(tuple)
    return st.builds(ToolCall, IDENT, arguments)


syntax_and_call = st.sampled_from(SYNTAX_NAMES).flatmap(lambda s: st.tuples(st.just(s), calls(s)))
syntax_and_two_calls = st.sampled_from(SYNTAX_NAMES).flatmap(lambda s: st.tuples(st.just(s), calls(s), calls(s)))


@settings(max_examples=400, deadline=None)
@given(sc=syntax_and_call)
@example(sc=("xml", ToolCall("f", ())))
@example(sc=("bash", ToolCall.bash("")))
@example(sc=("bash", ToolCall.bash("  ls\n``\n")))
@example(sc=("qwen", ToolCall("a.b-c", (("x", "</function>"), ("y", '"\n')))))
def test_render_parse_round_trip(sc: tuple[str, ToolCall]) -> None:
    syntax, call = sc
    parsed = parse_output("<think>t</think>\n" + render(call, syntax), syntax)
    assert parsed.action == call
    assert parsed.thought == "t"


@settings(max_examples=300, deadline=None)
@given(sc=syntax_and_call)
def test_expert_action_scores_one(sc: tuple[str, ToolCall]) -> None:
    syntax, call = sc
    score = score_output("<think>x</think>" + render(call, syntax), call, syntax)
    assert score.valid and score.reward == 1.0 and score.similarity == 1.0


@settings(max_examples=300, deadline=None)
@given(sab=syntax_and_two_calls)
def test_reward_is_difflib_ratio(sab: tuple[str, ToolCall, ToolCall]) -> None:
    syntax, a, b = sab
    ra, rb = render(a, syntax), render(b, syntax)
    expected = difflib.SequenceMatcher(None, ra, rb).ratio()
    for expert in (b, rb):  # the expert as a ToolCall or as its canonical rendering
        score = score_output("<think>x</think>\n" + ra, expert, syntax)
        assert score.valid
        assert score.reward == expected
        assert score.similarity == expected
        assert 0.0 <= score.reward <= 1.0


@settings(max_examples=300, deadline=None)
@given(sc=syntax_and_call, junk=outputs, which=st.integers(0, 2))
def test_invalid_output_scores_format_penalty(sc: tuple[str, ToolCall], junk: str, which: int) -> None:
    syntax, call = sc
    bad = [render(call, syntax), "<think>x</think>  \n", "<think>x</think><think>y</think>" + render(call, syntax)]
    for output in (bad[which], junk):
        try:
            parse_output(output, syntax)
        except ActionParseError:
            score = score_output(output, call, syntax)
            assert score.reward == FORMAT_PENALTY == -1.0
            assert score.valid is False and score.similarity is None and score.predicted is None
            assert score.reason
        else:
            assert output is junk, f"{output!r} should not parse in {syntax}"
            assert 0.0 <= score_output(output, call, syntax).reward <= 1.0


# --------------------------------------------------------------------------------------- large inputs


def test_megabyte_actions_are_scored_quickly(bundled_swe: Path) -> None:
    trajs, _ = load_file(bundled_swe)
    real = max((s.action for t in trajs for s in t.steps), key=lambda a: len(render(a, "xml")))
    rng = random.Random(20251025)
    printable = "".join(rng.choice(string.printable) for _ in range(10**6))
    repetitive = "x" * 10**6
    expert_mb = render(ToolCall.bash("".join(rng.choice(string.printable) for _ in range(10**6))), "xml")
    assert len(expert_mb) > 10**6

    for action in (printable, repetitive):
        output = "<think>long</think>\n" + render(ToolCall.bash(action), "xml")
        for expert in (real, expert_mb):
            start = time.perf_counter()
            score = score_output(output, expert, "xml")
            elapsed = time.perf_counter() - start
            assert score.valid, score.reason
            assert isinstance(score.reward, float) and 0.0 <= score.reward <= 1.0
            assert elapsed < 5.0, f"{elapsed:.2f}s for a {len(output)}-character output"


@pytest.mark.parametrize("syntax", SYNTAX_NAMES)
def test_megabyte_output_parse_is_bounded(syntax: str) -> None:
    """Many unclosed openers in a 1 MB output must not make parsing quadratic."""
    text = "<think>x</think>" + ("```bash\n<function=a><tool_call>" * 30_000)[: 10**6]
    start = time.perf_counter()
    with contextlib.suppress(ActionParseError):
        parse_output(text, syntax)
    assert time.perf_counter() - start < 5.0
