"""Trajectories as table rows (issue: public trajectory datasets): Parquet and Arrow files and `hf:` datasets
read by the same loaders as JSONL, written here from the shared SWE-smith transcripts and a SWE-agent
function-calling trajectory turned into an OpenAI tool-call transcript (SWE-Gym / OpenHands style)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from srl_swe.dataset import step_rows
from srl_swe.errors import TrajectoryFormatError
from srl_swe.schema import Trajectory
from srl_swe.steps import StepConfig
from srl_swe.trajectories import iter_files, load_trajectories
from srl_swe.trajectories.tabular import BATCH_ROWS, parse_hub

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
datasets = pytest.importorskip("datasets")


def _smith_records(shared_data: Path) -> list[dict]:
    path = shared_data / "trajectories" / "swe-smith" / "ft_xml_example.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _openai_record(t: Trajectory) -> dict:
    """``t`` as an OpenAI tool-call transcript: assistant turns with ``tool_calls``, ``tool`` turns with ids."""
    msgs: list[dict] = [{"role": "system", "content": "You are a software engineer."},
                        {"role": "user", "content": f"<pr_description>\n{t.task.problem_statement}\n</pr_description>"}]
    for k, step in enumerate(t.steps):
        call = {"id": f"call_{k}", "type": "function",
                "function": {"name": step.action.name, "arguments": json.dumps(dict(step.action.arguments))}}
        msgs.append({"role": "assistant", "content": step.thought, "tool_calls": [call]})
        msgs.append({"role": "tool", "tool_call_id": f"call_{k}", "content": step.observation})
    return {"instance_id": t.id, "messages": msgs, "resolved": True}


def _same(a: list[Trajectory], b: list[Trajectory]) -> None:
    assert [t.id for t in a] == [t.id for t in b]
    assert [t.steps for t in a] == [t.steps for t in b]
    assert [t.task.problem_statement for t in a] == [t.task.problem_statement for t in b]
    assert [t.resolved for t in a] == [t.resolved for t in b]


def test_swe_smith_rows_in_parquet_equal_the_jsonl(shared_data: Path, tmp_path: Path):
    want = load_trajectories(shared_data / "trajectories" / "swe-smith" / "ft_xml_example.jsonl", keep="all")
    # the outcome as a column (the JSONL's comes from a report file beside it)
    smith = _smith_records(shared_data)
    records = [{**r, "resolved": t.resolved} for r, t in zip(smith, want.trajectories, strict=True)]
    nested = tmp_path / "nested.parquet"  # messages as a list of structs
    pq.write_table(pa.Table.from_pylist(records), nested)
    as_text = tmp_path / "text.parquet"  # messages as one JSON string per row, as SWE-smith publishes them
    pq.write_table(pa.Table.from_pylist([{**r, "messages": json.dumps(r["messages"])} for r in records]), as_text)
    for path in (nested, as_text):
        got = load_trajectories(path, keep="all")
        _same(got.trajectories, want.trajectories)
        assert not got.skipped and got.trajectories[0].source == str(path)
        cfg = StepConfig(syntax="xml", window=2)
        assert step_rows(got.trajectories, cfg) == step_rows(want.trajectories, cfg)


def test_openai_tool_call_transcripts_in_arrow_and_hf_datasets(shared_data: Path, tmp_path: Path):
    src = shared_data / "trajectories" / "swe-agent" / "function_calling__install-1.traj"
    expert = load_trajectories(src, keep="all").trajectories
    records = [_openai_record(t) for t in expert]
    # datasets' own files: save_to_disk writes Arrow IPC streams, which a folder load finds
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "saved"))
    got = load_trajectories(tmp_path / "saved", keep="all")
    assert [t.source_format for t in got.trajectories] == ["openai-chat"]
    assert [t.steps for t in got.trajectories] == [t.steps for t in expert]
    # a Hugging Face dataset by name: a local folder of Parquet files here (no hub), read streaming
    (tmp_path / "hub").mkdir()
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "hub" / "train-00000-of-00001.parquet")
    hub = load_trajectories(f"hf:{tmp_path / 'hub'}:train", keep="all")
    assert [t.steps for t in hub.trajectories] == [t.steps for t in expert]
    assert hub.trajectories[0].source == f"hf:{tmp_path / 'hub'}:train"


def test_a_bad_row_is_skipped_with_its_number_and_a_large_table_streams(shared_data: Path, tmp_path: Path):
    records = _smith_records(shared_data)
    many = [{**records[i % len(records)], "instance_id": f"task-{i}", "messages": json.dumps(
        records[i % len(records)]["messages"])} for i in range(2 * BATCH_ROWS + 5)]
    many[70]["messages"] = many[70]["messages"][:50]  # truncated JSON
    path = tmp_path / "many.parquet"
    pq.write_table(pa.Table.from_pylist(many), path, row_group_size=50)
    loads = list(iter_files(path, keep="all"))
    assert len(loads) == 3 and max(len(f.trajectories) for f in loads) <= BATCH_ROWS  # one batch at a time
    skipped = [s for f in loads for s in f.skipped]
    assert [(s.source, s.record) for s in skipped] == [(str(path), "row 70")]
    assert "valid JSON" in skipped[0].reason
    assert sum(len(f.trajectories) for f in loads) == len(many) - 1


def test_files_that_are_not_tables_are_refused_with_their_name(tmp_path: Path):
    fake = tmp_path / "data.parquet"
    fake.write_text("not parquet")
    with pytest.raises(TrajectoryFormatError, match=r"data\.parquet.*Parquet"):
        load_trajectories(fake)
    good_dir = tmp_path / "dir"
    good_dir.mkdir()
    (good_dir / "broken.arrow").write_bytes(b"\x00" * 64)
    res = load_trajectories(good_dir, keep="all")
    assert [s.source for s in res.skipped] == [str(good_dir / "broken.arrow")] and not res.trajectories
    with pytest.raises(ValueError, match="hf:NAME"):
        parse_hub("hf:a:b:c:d")
    assert parse_hub("hf:SWE-bench/SWE-smith-trajectories:tool") == ("SWE-bench/SWE-smith-trajectories", None, "tool")
    assert parse_hub("hf:org/set") == ("org/set", None, "train")
    assert parse_hub("hf:org/set:cfg:test") == ("org/set", "cfg", "test")


def test_data_build_and_gym_read_a_hf_dataset(shared_data: Path, tmp_path: Path):
    records = _smith_records(shared_data)
    (tmp_path / "hub").mkdir()
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "hub" / "train.parquet")
    spec = f"hf:{tmp_path / 'hub'}:train"
    out = tmp_path / "built"
    proc = subprocess.run([sys.executable, "-m", "srl_swe.cli", "data", "build", spec, "--out", str(out), "--keep",
                           "all", "--syntax", "xml", "--window", "2", "--quiet"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    want = step_rows(load_trajectories(shared_data / "trajectories/swe-smith/ft_xml_example.jsonl", "all").trajectories,
                     StepConfig(syntax="xml", window=2))
    assert datasets.load_from_disk(str(out)).to_list() == want
    import gymnasium as gym

    import srl_swe.envs  # noqa: F401

    env = gym.make("SRL-SWE-v0", data=spec, keep="all", mode="step")
    assert len(env.unwrapped.trajectories) == len(records)
    env.close()
