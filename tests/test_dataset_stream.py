"""The streaming step-dataset build (`srl-swe data build`, training's step rows) gives the rows, order and
fingerprint of the in-memory build, on the shared public trajectories, with one file in memory at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from srl_swe.dataset import (
    WRITER_BATCH,
    ToolSignatures,
    build_dataset,
    iter_step_rows,
    save_dataset,
    scan_steps,
    write_step_dataset,
)
from srl_swe.steps import PromptBuilder, StepConfig
from srl_swe.trajectories import iter_files, load_trajectories

datasets = pytest.importorskip("datasets")


def _in_memory(src: Path, cfg: StepConfig, keep: str):
    return build_dataset(load_trajectories(src, keep=keep), cfg, progress=False)


@pytest.mark.parametrize(("sub", "keep", "syntax", "spill"), [
    ("", "all", "xml", False),  # every format at once: mini-swe-agent (+ reports), SWE-agent's three, SWE-smith
    ("", "all", "xml", True),  # pass 2 reads pass 1's pickled trajectories back instead of the files
    ("mini-swe-agent", "resolved", "qwen", True),
])
def test_streamed_rows_order_and_fingerprint_equal_the_in_memory_build(shared_data: Path, tmp_path: Path, sub: str,
                                                                       keep: str, syntax: str, spill: bool):
    src = shared_data / "trajectories" / sub
    cfg = StepConfig(syntax=syntax, window=2)
    want = _in_memory(src, cfg, keep)
    scan = scan_steps(src, cfg, keep=keep, spill_dir=tmp_path / "spill" if spill else None)
    assert (scan.spill is not None) == spill
    got = write_step_dataset(iter_step_rows(src, cfg, scan, keep=keep), tmp_path / "rows.arrow")
    assert len(want) > WRITER_BATCH  # several record batches
    assert len(got) == len(want) == scan.steps
    assert got.features == want.features
    assert got.to_list() == want.to_list()
    assert got._fingerprint == want._fingerprint
    loaded = load_trajectories(src, keep=keep)
    assert scan.trajectories == len(loaded.trajectories)
    assert scan.summary() == loaded.summary() and scan.skipped == loaded.skipped
    # the system prompt made from the stripped tool signatures is the one made from the whole set
    sig = ToolSignatures()
    for t in loaded.trajectories:
        sig.add(t)
    assert sig.system_prompts(cfg) == PromptBuilder(loaded.trajectories, cfg).system


def test_files_arrive_one_at_a_time_in_load_order(shared_data: Path):
    src = shared_data / "trajectories" / "mini-swe-agent"
    per_file = list(iter_files(src, keep="all"))
    assert all(len(f.trajectories) <= 1 for f in per_file)  # one trajectory per .traj.json file
    whole = load_trajectories(src, "all").trajectories
    assert [t.id for f in per_file for t in f.trajectories] == [t.id for t in whole]
    # outcomes come from the report files, read before the trajectories they judge
    resolved = [t.resolved for f in per_file for t in f.trajectories]
    assert True in resolved and False in resolved


def test_select_and_the_split_rows_of_training(shared_data: Path, tmp_path: Path):
    src = shared_data / "trajectories" / "swe-smith"
    cfg = StepConfig(syntax="xml", window=2)
    loaded = load_trajectories(src, keep="all")
    odd = {t.id for t in loaded.trajectories[1::2]}
    sel = lambda t: t.id in odd  # noqa: E731
    scan = scan_steps(src, cfg, keep="all", select=sel)
    got = write_step_dataset(iter_step_rows(src, cfg, scan, keep="all", select=sel, with_completion=True),
                             tmp_path / "odd.arrow", with_completion=True)
    from srl_swe.dataset import step_rows

    assert got.to_list() == step_rows([t for t in loaded.trajectories if t.id in odd], cfg, with_completion=True)


def test_data_build_writes_a_dataset_and_replaces_only_its_own(shared_data: Path, tmp_path: Path):
    src = shared_data / "trajectories" / "swe-smith"
    cfg = StepConfig(syntax="xml", window=2)
    out = tmp_path / "built"
    info = save_dataset(src, cfg, out, keep="all", progress=False)
    ds = datasets.load_from_disk(str(out))
    want = _in_memory(src, cfg, "all")
    assert ds.to_list() == want.to_list() and info["fingerprint"] == want._fingerprint
    assert json.loads((out / "build_info.json").read_text())["examples"] == len(want)
    again = save_dataset(src, StepConfig(syntax="qwen", window=1), out, keep="all", progress=False)
    assert again["config"]["syntax"] == "qwen" and datasets.load_from_disk(str(out))[0]["syntax"] == "qwen"
    assert [p.name for p in tmp_path.iterdir()] == ["built"]  # no staging folder (or spill) left beside it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="mine exists and holds something other than a dataset"):
        save_dataset(src, cfg, mine, keep="all", progress=False)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_cli_build_of_a_folder_with_a_broken_file_names_it(shared_data: Path, tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    good = next((shared_data / "trajectories" / "swe-smith").rglob("*.json*"))
    (src / good.name).write_bytes(good.read_bytes())
    (src / "broken.jsonl").write_text('{"messages": [\n')
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "srl_swe.cli", "data", "build", str(src), "--out", str(out),
                           "--keep", "all", "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads((out / "build_info.json").read_text())
    assert [s["source"] for s in info["skipped"]] == [str(src / "broken.jsonl")]
    assert "valid JSON" in info["skipped"][0]["reason"]
    assert len(datasets.load_from_disk(str(out))) == info["examples"] > 0
