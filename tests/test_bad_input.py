"""Malformed inputs fail with a TrajectoryFormatError that names the file, the record and what was expected.

The bad files are derived from real ones in ../shared/data (copied into ``tmp_path`` and damaged there)
or written from scratch; the shared data itself must come out of every test byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from srl_swe.errors import TrajectoryFormatError
from srl_swe.trajectories import SUFFIXES, Skipped, load_file, load_trajectories

# --------------------------------------------------------------------------------------------- helpers


def _mini_swe_agent_file(trajectories_dir: Path) -> Path:
    """The smallest real mini-swe-agent trajectory (keeps the tests fast)."""
    files = sorted((trajectories_dir / "mini-swe-agent").rglob("*.traj.json"), key=lambda p: (p.stat().st_size, p.name))
    assert files, f"no mini-swe-agent trajectories under {trajectories_dir}"
    return files[0]


def _swe_agent_file(trajectories_dir: Path) -> Path:
    # A SWE-agent .traj with a "trajectory" list (the xml variant).
    path = trajectories_dir / "swe-agent" / "xml_sys-env_window100__t-0.20__p-0.95__c-2.00__install-1.traj"
    assert path.is_file(), path
    return path


def _swe_smith_jsonl(trajectories_dir: Path) -> Path:
    path = trajectories_dir / "swe-smith" / "ft_xml_example.jsonl"
    assert path.is_file(), path
    return path


def _raises(path: Path, loader=load_file) -> TrajectoryFormatError:
    """Load ``path`` expecting exactly a TrajectoryFormatError (not a subclass-free ValueError, not anything else)."""
    with pytest.raises(TrajectoryFormatError) as info:
        loader(path)
    assert type(info.value) is TrajectoryFormatError
    return info.value


def _assert_names(err: TrajectoryFormatError, path: Path, expected: str, record: str | None = None) -> str:
    msg = str(err)
    assert err.source == str(path)
    assert msg.startswith(str(path)), msg
    assert path.name in msg
    assert f"expected {expected}" in msg, msg
    if record is None:
        assert err.record is None, msg
    else:
        assert f"[record {record}]" in msg, msg
    return msg


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _chat_record(actions: list[str], instance_id: str = "demo__demo-1") -> dict:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "<pr_description>\nFix the bug.\n</pr_description>"},
    ]
    for action in actions:
        messages.append({"role": "assistant", "content": f"Let me look.\n\n{action}"})
        messages.append({"role": "user", "content": "OBSERVATION:\nok"})
    return {"instance_id": instance_id, "messages": messages}


# ------------------------------------------------------------------------------- whole-file problems


@pytest.mark.shared_data
def test_truncated_mini_swe_agent_json(trajectories_dir: Path, tmp_path: Path) -> None:
    real = _mini_swe_agent_file(trajectories_dir)
    text = real.read_text(encoding="utf-8")
    bad = tmp_path / real.name
    bad.write_text(text[: len(text) // 2], encoding="utf-8")

    err = _raises(bad)
    msg = _assert_names(err, bad, "valid JSON")
    assert "line" in msg and "column" in msg, msg
    # The same error surfaces when the file is given to load_trajectories directly.
    assert str(_raises(bad, lambda p: load_trajectories(p, keep="all"))) == msg


@pytest.mark.shared_data
def test_mini_swe_agent_without_messages(trajectories_dir: Path, tmp_path: Path) -> None:
    obj = json.loads(_mini_swe_agent_file(trajectories_dir).read_text(encoding="utf-8"))
    del obj["messages"]
    bad = tmp_path / "no-messages.traj.json"
    bad.write_text(json.dumps(obj), encoding="utf-8")

    msg = _assert_names(_raises(bad), bad, 'a field "messages"')
    assert "trajectory_format" in msg  # "got fields [...]" lists what is there


@pytest.mark.shared_data
def test_mini_swe_agent_messages_wrong_type(trajectories_dir: Path, tmp_path: Path) -> None:
    obj = json.loads(_mini_swe_agent_file(trajectories_dir).read_text(encoding="utf-8"))
    obj["messages"] = {"0": obj["messages"][0]}
    bad = tmp_path / "dict-messages.traj.json"
    bad.write_text(json.dumps(obj), encoding="utf-8")

    msg = _assert_names(_raises(bad), bad, '"messages" to be list')
    assert msg.endswith("got dict"), msg


@pytest.mark.shared_data
def test_mini_swe_agent_message_fields_wrong_type(trajectories_dir: Path, tmp_path: Path) -> None:
    obj = json.loads(_mini_swe_agent_file(trajectories_dir).read_text(encoding="utf-8"))
    assert obj["messages"][3]["role"] == "user"

    role = json.loads(json.dumps(obj))
    role["messages"][3]["role"] = 7
    bad = tmp_path / "role.traj.json"
    bad.write_text(json.dumps(role), encoding="utf-8")
    msg = _assert_names(_raises(bad), bad, '"role" to be str', record="message 3")
    assert msg.endswith("got int"), msg

    # A wrong content type in an *assistant* turn must also name the file (not a placeholder source).
    content = json.loads(json.dumps(obj))
    assert content["messages"][2]["role"] == "assistant"
    content["messages"][2]["content"] = 12345
    bad = tmp_path / "content.traj.json"
    bad.write_text(json.dumps(content), encoding="utf-8")
    msg = _assert_names(_raises(bad), bad, "message content as a string or list of parts", record="message 2")
    assert msg.endswith("got int"), msg


@pytest.mark.shared_data
def test_non_utf8_bytes(trajectories_dir: Path, tmp_path: Path) -> None:
    real = _mini_swe_agent_file(trajectories_dir)
    raw = real.read_bytes()
    offset = len(raw) // 3
    bad = tmp_path / real.name
    bad.write_bytes(raw[:offset] + b"\xff\xfe" + raw[offset:])

    msg = _assert_names(_raises(bad), bad, "UTF-8 text")
    assert msg.endswith(f"got undecodable byte at offset {offset}"), msg

    # In a JSONL file an undecodable byte is a whole-file problem too (lines cannot be split reliably).
    jsonl = _swe_smith_jsonl(trajectories_dir).read_bytes()
    bad_jsonl = tmp_path / "latin1.jsonl"
    bad_jsonl.write_bytes(jsonl[:100] + "é".encode("latin-1") + jsonl[100:])
    msg = _assert_names(_raises(bad_jsonl), bad_jsonl, "UTF-8 text")
    assert msg.endswith("got undecodable byte at offset 100"), msg


def test_json_scalars_and_huge_numbers(tmp_path: Path) -> None:
    scalar = tmp_path / "scalar.json"
    scalar.write_text("42", encoding="utf-8")
    msg = _assert_names(_raises(scalar), scalar, "a JSON object or list of records")
    assert msg.endswith("got int"), msg

    # Python refuses integers longer than 4300 digits with a plain ValueError; it must not escape as such.
    huge = tmp_path / "huge.json"
    huge.write_text('{"messages": [], "n": ' + "9" * 5000 + "}", encoding="utf-8")
    msg = _assert_names(_raises(huge), huge, "valid JSON")

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    msg = _assert_names(_raises(deep), deep, "valid JSON")
    assert msg.endswith("got nesting deeper than 100 levels"), msg


# ------------------------------------------------------------------------------ record-level problems


@pytest.mark.shared_data
def test_chat_record_with_zero_actions(trajectories_dir: Path, tmp_path: Path) -> None:
    """A real SWE-smith record whose assistant turns lost their <function=...> calls has no expert action."""
    record = json.loads(_swe_smith_jsonl(trajectories_dir).read_text(encoding="utf-8").splitlines()[0])
    n_assistant = 0
    for msg in record["messages"]:
        if msg["role"] == "assistant":
            msg["content"] = "I will think about it some more."
            n_assistant += 1
    assert n_assistant > 1

    as_json = tmp_path / "zero.json"
    as_json.write_text(json.dumps(record), encoding="utf-8")
    msg = _assert_names(_raises(as_json), as_json, "at least one action", record=record["instance_id"])
    assert msg.endswith(f"got 0 actions ({n_assistant} malformed assistant turns)"), msg

    # As the only record of a JSONL file: the file has no readable record, and says which one failed why.
    as_jsonl = tmp_path / "zero.jsonl"
    as_jsonl.write_text(json.dumps(record) + "\n", encoding="utf-8")
    msg = _assert_names(_raises(as_jsonl), as_jsonl, "at least one readable record")
    assert "at least one action" in msg and f"{n_assistant} malformed assistant turns" in msg, msg


@pytest.mark.shared_data
def test_chat_record_content_wrong_type(trajectories_dir: Path, tmp_path: Path) -> None:
    """Content of the wrong type in a chat JSONL record names the file, line and message."""
    lines = _swe_smith_jsonl(trajectories_dir).read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    assert record["messages"][2]["role"] == "assistant"
    record["messages"][2]["content"] = 3.5
    bad = tmp_path / "content.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(record), lines[2]]) + "\n", encoding="utf-8")
    trajs, skipped = load_file(bad)
    assert len(trajs) == 2
    assert [(s.source, s.record, s.reason) for s in skipped] == [(
        str(bad), "line 2",
        f"{bad} [record line 2, message 2]: expected message content as a string or list of parts; got float",
    )]


def test_chat_record_tool_calls_broken(tmp_path: Path) -> None:
    record = _chat_record([])
    record["messages"].append({"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {}}}]})
    bad = tmp_path / "tool_calls.json"
    bad.write_text(json.dumps(record), encoding="utf-8")
    msg = _assert_names(_raises(bad), bad, "a valid tool call", record="0, message 2")
    assert '"name"' in msg

    record["messages"][-1]["tool_calls"] = "bash ls"
    bad.write_text(json.dumps(record), encoding="utf-8")
    _assert_names(_raises(bad), bad, '"tool_calls" to be a list', record="0, message 2")


def test_record_of_unknown_shape(tmp_path: Path) -> None:
    bad = tmp_path / "unknown.json"
    bad.write_text(json.dumps({"prompt": "hi", "completion": "there"}), encoding="utf-8")
    msg = _assert_names(_raises(bad), bad, 'a chat record with "messages" or a math record', record="0")
    assert "got fields ['completion', 'prompt']" in msg


def test_math_records_wrong_types(tmp_path: Path) -> None:
    bad = tmp_path / "math.jsonl"
    lines = [
        {"problem": "1+1?", "steps": ["1+1=2"], "answer": "2"},
        {"problem": "2+2?", "steps": "2+2=4", "answer": "4"},
        {"problem": ["3+3?"], "steps": ["6"]},
        {"problem": "4+4?", "solution": "It is 8."},
        {"problem": "5+5?", "steps": [10]},
    ]
    bad.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    trajs, skipped = load_file(bad)
    assert [t.task.problem_statement for t in trajs] == ["1+1?"]
    assert [s.record for s in skipped] == ["line 2", "line 3", "line 4", "line 5"]
    expected = ['"steps" to be list', '"problem" to be str', 'a "solution" written as numbered steps',
                '"steps" to be a list of strings']
    for s, exp in zip(skipped, expected, strict=True):
        assert isinstance(s, Skipped)
        assert s.source == str(bad)
        assert s.reason.startswith(f"{bad} [record {s.record}]: expected {exp}"), s.reason


@pytest.mark.shared_data
def test_swe_agent_traj_with_empty_trajectory(trajectories_dir: Path, tmp_path: Path) -> None:
    obj = json.loads(_swe_agent_file(trajectories_dir).read_text(encoding="utf-8"))
    assert obj["trajectory"]
    obj["trajectory"] = []
    bad = tmp_path / "empty.traj"
    bad.write_text(json.dumps(obj), encoding="utf-8")
    msg = _assert_names(_raises(bad), bad, "at least one action")
    assert msg.endswith("got an empty trajectory"), msg
    assert str(_raises(bad, load_trajectories)) == msg


@pytest.mark.shared_data
def test_swe_agent_traj_step_wrong_type(trajectories_dir: Path, tmp_path: Path) -> None:
    obj = json.loads(_swe_agent_file(trajectories_dir).read_text(encoding="utf-8"))
    obj["trajectory"][3]["action"] = ["ls", "-la"]
    bad = tmp_path / "action.traj"
    bad.write_text(json.dumps(obj), encoding="utf-8")
    msg = _assert_names(_raises(bad), bad, '"action" to be str', record="trajectory step 3")
    assert msg.endswith("got list"), msg

    obj["trajectory"] = {"0": obj["trajectory"][0]}
    bad.write_text(json.dumps(obj), encoding="utf-8")
    _assert_names(_raises(bad), bad, '"trajectory" to be list')


# ------------------------------------------------------------------------------- JSONL and directories


@pytest.mark.shared_data
def test_jsonl_line_2_of_3_broken(trajectories_dir: Path, tmp_path: Path) -> None:
    real = _swe_smith_jsonl(trajectories_dir)
    lines = real.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    ids = [json.loads(line)["instance_id"] for line in lines]

    bad = tmp_path / real.name
    bad.write_text("\n".join([lines[0], lines[1][: len(lines[1]) // 2], lines[2]]) + "\n", encoding="utf-8")
    trajs, skipped = load_file(bad)
    assert [t.id for t in trajs] == [ids[0], ids[2]]
    assert len(skipped) == 1
    (s,) = skipped
    assert s.source == str(bad)
    assert s.record == "line 2"
    assert s.reason.startswith(f"{bad} [record line 2]: expected valid JSON; got "), s.reason

    # Valid JSON of the wrong shape on line 2 is reported the same way.
    wrong = json.loads(lines[1])
    wrong["messages"] = "system: hi"
    bad.write_text("\n".join([lines[0], json.dumps(wrong), lines[2]]) + "\n", encoding="utf-8")
    trajs, skipped = load_file(bad)
    assert [t.id for t in trajs] == [ids[0], ids[2]]
    assert [(s.record, s.reason) for s in skipped] == [
        ("line 2", f'{bad} [record line 2]: expected "messages" to be list; got str')
    ]


@pytest.mark.shared_data
def test_directory_scan_reports_broken_file_and_loads_the_rest(trajectories_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    good = [_mini_swe_agent_file(trajectories_dir), _swe_agent_file(trajectories_dir),
            _swe_smith_jsonl(trajectories_dir)]
    expected_ids = []
    for src in good:
        dst = data / src.name
        dst.write_bytes(src.read_bytes())
        expected_ids += [t.id for t in load_file(dst)[0]]
    assert len(expected_ids) == 5

    broken = data / "sub" / "broken.traj.json"
    broken.parent.mkdir()
    text = good[0].read_text(encoding="utf-8")
    broken.write_text(text[: len(text) // 2], encoding="utf-8")

    result = load_trajectories(data, keep="all")
    assert sorted(t.id for t in result.trajectories) == sorted(expected_ids)
    assert len(result.skipped) == 1
    (s,) = result.skipped
    assert s.source == str(broken)
    assert s.record is None
    assert s.reason.startswith(f"{broken}: expected valid JSON; got "), s.reason
    assert result.summary()["unreadable"]["skipped"] == {"malformed": 1}

    # The broken file alone raises, with the same message the scan recorded.
    assert str(_raises(broken, load_trajectories)) == s.reason


@pytest.mark.shared_data
def test_directory_scan_with_broken_jsonl_line_and_broken_report(trajectories_dir: Path, tmp_path: Path) -> None:
    lines = _swe_smith_jsonl(trajectories_dir).read_text(encoding="utf-8").splitlines()
    jsonl = tmp_path / "chat.jsonl"
    jsonl.write_text("\n".join([lines[0], "{not json", lines[2]]) + "\n", encoding="utf-8")
    report = tmp_path / "run.report.json"
    report.write_text(json.dumps({"resolved_ids": ["a"], "unresolved_ids": "b"}), encoding="utf-8")

    result = load_trajectories(tmp_path, keep="all")
    assert len(result.trajectories) == 2
    by_source = {s.source: s for s in result.skipped}
    assert set(by_source) == {str(jsonl), str(report)}
    assert by_source[str(jsonl)].record == "line 2"
    assert "[record line 2]: expected valid JSON" in by_source[str(jsonl)].reason
    assert by_source[str(report)].reason.startswith(f"{report}: expected "), by_source[str(report)].reason
    assert "unresolved_ids" in by_source[str(report)].reason

    msg = _assert_names(_raises(report, load_trajectories), report, '"unresolved_ids" to be a list')
    assert msg.endswith("got str"), msg


def test_long_instance_id_does_not_break_report_lookup(tmp_path: Path) -> None:
    """Outcome lookup builds file names from instance ids; an id too long for a file name is simply not found."""
    record = _chat_record(["```bash\nls\n```"], instance_id="x" * 400)
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    for target in (path, tmp_path):
        result = load_trajectories(target, keep="all")
        assert [t.id for t in result.trajectories] == ["x" * 400]
        assert result.trajectories[0].resolved is None


def test_unreadable_replay_config_is_ignored(tmp_path: Path) -> None:
    obj = {"trajectory": [{"action": "ls\n", "observation": "a.py"}], "replay_config": "9" * 5000}
    path = tmp_path / "rc.traj"
    path.write_text(json.dumps(obj), encoding="utf-8")
    (t,), skipped = load_file(path)
    assert not skipped
    assert t.steps[0].action.args == {"command": "ls"}


# ------------------------------------------------------------------------------------ no corruption


@pytest.mark.shared_data
def test_shared_data_unchanged_by_loading(trajectories_dir: Path, tmp_path: Path) -> None:
    before = _sha256_tree(trajectories_dir)
    assert before

    result = load_trajectories(trajectories_dir, keep="all")
    assert result.trajectories and not result.skipped
    for path in sorted(trajectories_dir.rglob("*")):
        if path.is_file() and path.name.endswith(SUFFIXES) and not path.name.endswith(".report.json"):
            load_file(path)
    # Deriving broken copies only reads the originals.
    for src in (_mini_swe_agent_file(trajectories_dir), _swe_smith_jsonl(trajectories_dir)):
        raw = src.read_bytes()
        cut = raw.index(b"\n") // 2 if src.suffix == ".jsonl" else len(raw) // 2  # inside the first record
        (tmp_path / src.name).write_bytes(raw[:cut])
        with pytest.raises(TrajectoryFormatError):
            load_trajectories(tmp_path / src.name)

    assert _sha256_tree(trajectories_dir) == before
