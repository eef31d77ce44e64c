"""Loading in bounded time and space: linear readers, JSON depth, files that are not regular, names.

* The task-message reader and the observation walker give what the regexes and the list scans they replace
  gave (kept here to check it), and adversarial files of about 1 MB load in < 1 s of CPU time.
* JSON nested past ``MAX_JSON_DEPTH`` is a TrajectoryFormatError at every depth (a reported skip in a scan).
* A FIFO, a device, a socket or a dangling link is refused by its type without blocking, as a single path
  (an error) or in a scan (a reported skip); reads stop at ``MAX_FILE_BYTES`` even when the size lies.
* ``data inspect`` shows a file name that is not UTF-8 escaped, even on a strict UTF-8 stdout.
"""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from srl_swe.cli import main
from srl_swe.errors import TrajectoryFormatError
from srl_swe.schema import MAX_JSON_DEPTH, ToolCall
from srl_swe.trajectories import io as trajectory_io
from srl_swe.trajectories import load_file, load_trajectories
from srl_swe.trajectories.chat import _Pending, walk_messages
from srl_swe.trajectories.io import problem_from_task_message

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OLD_PROBLEM = (
    re.compile(r"<pr_description>\s*(?:Consider the following PR description:\s*)?(.*?)\s*</pr_description>", re.S),
    re.compile(r"ISSUE:\s*\n(.*?)\n\s*INSTRUCTIONS:", re.S),
)
OK = "```bash\nls\n```"
WS = [" ", "\n", "\t", "\r", "\x0b", "\x1c", "\x85", "\xa0", "\u2028"]  # white space to str.isspace() and to \s


def _record(action: str = OK, turn: dict | None = None, task: str = "task") -> dict:
    messages = [{"role": "user", "content": task}, turn or {"role": "assistant", "content": action},
                {"role": "user", "content": "ok"}]
    return {"instance_id": "good", "messages": messages}


def _joined(fragments: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(fragments + WS) | st.text(max_size=2), max_size=24).map("".join)


# ---------------------------------------------------------------- what the regexes and list scans gave


def _old_problem(text: str) -> str:
    for pattern in OLD_PROBLEM:
        m = pattern.search(text)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return text.strip()


@FAST
@given(text=_joined(["<pr_description>", "</pr_description>", "Consider the following PR description:", "ISSUE:",
                     "INSTRUCTIONS:", "x", "y"]))
@example(text="ISSUE:\n\nINSTRUCTIONS:")
@example(text="ISSUE:\nINSTRUCTIONS: x\nINSTRUCTIONS:")
def test_problem_text_reads_as_the_regexes_did(text: str) -> None:
    assert problem_from_task_message(text) == _old_problem(text)


def _old_attach(steps: list, text: str, msg: dict) -> None:
    ids = msg.get("tool_call_ids") or ([msg["tool_call_id"]] if msg.get("tool_call_id") else [])
    for p in steps:
        if p.observation is None and p.call_id is not None and p.call_id in ids:
            p.observation = text
            return
    for p in steps:
        if p.observation is None:
            p.observation = text
            return


def _old_observations(messages: list[dict]) -> list[str]:
    """What the quadratic walker gave, for transcripts of tool-call turns and tool replies."""
    steps: list = []
    for m in messages[1:]:
        if m["role"] == "assistant":
            steps += [_Pending(ToolCall.bash(""), "", tc.get("id")) for tc in m["tool_calls"]]
        else:
            _old_attach(steps, m["content"], m)
    return [p.observation or "" for p in steps]


ids = st.sampled_from(["a", "b", "c"])
turns = st.lists(
    st.fixed_dictionaries({"role": st.just("assistant"), "content": st.just(""), "tool_calls": st.lists(
        st.fixed_dictionaries({"function": st.just({"name": "bash", "arguments": "{}"})}, optional={"id": ids}),
        min_size=1, max_size=3)})
    | st.fixed_dictionaries({"role": st.just("tool"), "content": st.text("xyz", max_size=3)},
                            optional={"tool_call_id": ids, "tool_call_ids": st.lists(ids, max_size=2)}),
    max_size=10,
)


@FAST
@given(turns=turns)
def test_observations_attach_as_before(turns: list[dict]) -> None:
    messages = [{"role": "user", "content": "task"}, *turns]
    walked = walk_messages(messages, "<test>", None, syntax="tool_calls")
    assert [s.observation for s in walked.steps] == _old_observations(messages)


# -------------------------------------------------------------------------------------------- deep nesting


def test_deep_tool_call_arguments_in_a_file_are_refused_at_every_depth(tmp_path: Path, capsys) -> None:
    # Every depth from below the limit to past the recursion limit: the band that json.loads accepted and
    # json.dumps could not write (about 983 at the top level, about 950 inside pytest) lies somewhere in there.
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_record()) + "\n", encoding="utf-8")
    bad = tmp_path / "deep.jsonl"
    turn = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "bash", "arguments": "A"}}]}
    template = json.dumps(_record("", turn))
    for n in [*range(MAX_JSON_DEPTH - 9, MAX_JSON_DEPTH + 2), *range(850, 1001), 5000]:
        nested = '{"c": ' + "[" * n + "]" * n + "}"
        # As an object, seven levels around the nested list (record, messages, message, tool_calls, call,
        # function, arguments); as OpenAI's JSON string, one (its own object).
        for arguments, around in ((nested, 7), (json.dumps(nested), 1)):
            bad.write_text(template.replace('"A"', arguments) + "\n", encoding="utf-8")
            if n + around <= MAX_JSON_DEPTH:
                assert load_file(bad)[0][0].steps[0].action.name == "bash"
                continue
            with pytest.raises(TrajectoryFormatError, match="deeper than 100 levels"):
                load_file(bad)
            result = load_trajectories(tmp_path, keep="all")
            assert [t.id for t in result.trajectories] == ["good"]
            assert [s.source for s in result.skipped] == [str(bad)]
    assert main(["data", "inspect", str(tmp_path), "--keep", "all"]) == 0
    assert "deeper than 100 levels" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- loading, timed

M = 1 << 20
LOAD_CASES = {  # name: (record, trajectories kept), 1-2 MB of input each
    "unclosed <function=a> in a turn": (_record("<function=a>" * (M // 12)), 0),
    "<function= chain cut by a space": (_record("<function=" * (M // 10) + " "), 0),
    "unclosed <tool_call> in a turn": (_record("<tool_call>" * (M // 11)), 0),
    "```bash then newlines": (_record("```bash" + "\n" * M), 0),
    "unclosed <pr_description>": (_record(task="<pr_description>" * (M // 16)), 1),
    "<pr_description> then spaces": (_record(task="<pr_description>x" + " " * M), 1),
    "ISSUE: then newlines": (_record(task="ISSUE:" + "\n" * M), 1),
    "12k tool calls answered in reverse": ({"instance_id": "i", "messages": [{"role": "user", "content": "t"}] + [
        m for k in range(12_000) for m in (
            {"role": "assistant", "content": "", "tool_calls": [{"id": f"c{k}", "function": {"name": "bash"}}]},
            {"role": "tool", "content": "o", "tool_call_id": f"c{11_999 - k}"})]}, 1),
    "12k bash turns": ({"instance_id": "i", "messages": [{"role": "user", "content": "t"}] + [
        m for _ in range(12_000) for m in ({"role": "assistant", "content": OK}, {"role": "user", "content": "o"})]},
        1),
}


@pytest.mark.parametrize("name", list(LOAD_CASES))
def test_adversarial_files_load_in_linear_time(tmp_path: Path, name: str) -> None:
    record, kept = LOAD_CASES[name]
    (tmp_path / "a.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    start = time.process_time()
    result = load_trajectories(tmp_path, keep="all")
    elapsed = time.process_time() - start
    assert len(result.trajectories) == kept and len(result.skipped) == 1 - kept
    assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"  # quadratic before: 3 s to minutes


def test_tool_call_ids_of_any_type_do_not_break_the_walk() -> None:
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": ["x"], "function": {"name": "bash"}},
                                                                 {"id": "b", "function": {"name": "bash"}}]}
    messages = [{"role": "user", "content": "t"}, call, {"role": "tool", "content": "1", "tool_call_ids": 5},
                {"role": "tool", "content": "2", "tool_call_ids": "b"}, {"role": "tool", "content": "3"}]
    assert [s.observation for s in walk_messages(messages, "<test>", None).steps] == ["1", "2"]


# ------------------------------------------------------------------------------------ files that are not files

SINGLE_PATHS = """
import sys
from srl_swe.errors import TrajectoryFormatError
from srl_swe.trajectories import load_trajectories
for path in sys.argv[1:]:
    try:
        load_trajectories(path, keep="all")
        print("loaded", path)
    except TrajectoryFormatError as e:
        print(e)
"""


def test_a_fifo_or_a_device_as_the_path_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    # A subprocess with a time and memory limit: before, the FIFO blocked forever and /dev/zero read until
    # memory ran out.
    out = subprocess.run(
        [sys.executable, "-c", SINGLE_PATHS, str(fifo), "/dev/zero"], capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{fifo}: expected a regular file; got a FIFO (named pipe)",
                                       "/dev/zero: expected a regular file; got a character device"]


def test_a_folder_scan_reports_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(json.dumps(_record()) + "\n", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "device.json").symlink_to("/dev/null")
    (tmp_path / "gone.traj").symlink_to(tmp_path / "missing")
    (tmp_path / "folder.json").mkdir()  # a folder is scanned, not read
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock.jsonl"))
        result = load_trajectories(tmp_path, keep="all")
    finally:
        sock.close()
    assert [t.id for t in result.trajectories] == ["good"]
    assert {Path(s.source).name: s.reason.split(": ", 1)[1] for s in result.skipped} == {
        "device.json": "expected a regular file; got a character device",
        "gone.traj": "expected a readable file; got a symbolic link to a missing file",
        "pipe.jsonl": "expected a regular file; got a FIFO (named pipe)",
        "sock.jsonl": "expected a regular file; got a socket",
    }


def test_reads_are_capped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(trajectory_io, "MAX_FILE_BYTES", 100)
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps(_record()) + "\n", encoding="utf-8")
    with pytest.raises(TrajectoryFormatError, match=r"expected a file of at most 100 bytes .*; got \d+ bytes"):
        load_file(big)
    proc = Path("/proc/self/status")  # says it is 0 bytes long, holds more
    if not proc.is_file() or proc.stat().st_size:
        pytest.skip("no /proc file that lies about its size")
    with pytest.raises(TrajectoryFormatError, match=r"at most 100 bytes .*; got more, though its size said 0 bytes"):
        load_file(proc)


def test_non_utf8_file_names_are_shown_escaped(tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(json.dumps(_record()) + "\n", encoding="utf-8")
    name = os.fsencode(tmp_path) + b"/bad-\xff.json"
    fd = os.open(name, os.O_WRONLY | os.O_CREAT)
    os.write(fd, b'{"messages": [')
    os.close(fd)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    for target, code, stream in ((str(tmp_path), 0, "stdout"), (os.fsdecode(name), 2, "stderr")):
        out = subprocess.run([sys.executable, "-m", "srl_swe.cli", "data", "inspect", target, "--keep", "all"],
                             capture_output=True, env=env, timeout=60)
        assert out.returncode == code, out.stderr.decode(errors="replace")
        text = getattr(out, stream).decode("utf-8")  # strict: what was written is valid UTF-8
        assert "bad-\\xff.json" in text and "expected valid JSON" in text and "Traceback" not in text
