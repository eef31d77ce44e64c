"""``srl-swe eval swebench --shard I/N`` and ``srl-swe eval merge``: the shards partition the run, and their merge
is the results.json a single run writes (the same text), on real runs of the two marshmallow tasks; shards that
are not one run split N ways are refused with the reason."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from srl_swe.cli import main
from srl_swe.eval.shards import Shard, ShardError, parse_shard, shard_keys

ID_1359 = "marshmallow-code__marshmallow-1359"
ID_1867 = "marshmallow-code__marshmallow-1867"


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _run(*argv: str) -> int:
    return main(["eval", "swebench", *argv, "--quiet"])


def _merge(out: Path, *shards: Path, run_id: str = "r") -> int:
    return main(["eval", "merge", *map(str, shards), "-o", str(out), "--run-id", run_id])


def test_shard_spec_and_partition(capsys):
    assert parse_shard("2/4") == Shard(2, 4) and parse_shard(" 1/1 ") == Shard(1, 1) and str(Shard(3, 5)) == "3/5"
    for bad in ("0/2", "3/2", "2", "a/b", "1/0", "-1/2", "", "1/2/3"):
        with pytest.raises(ShardError, match="I/N"):
            parse_shard(bad)
    keys = [f"k{i}" for i in range(11)]
    # Sorted as strings (k0 k1 k10 k2 ...), every 3rd from the 1st; the input's order does not matter.
    assert shard_keys(reversed(keys), Shard(1, 3)) == {"k0", "k2", "k5", "k8"}
    for n in range(1, 6):
        parts = [shard_keys(keys, Shard(i, n)) for i in range(1, n + 1)]
        assert set().union(*parts) == set(keys) and sum(map(len, parts)) == len(keys)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(SystemExit):
        main(["eval", "swebench", "--dataset", "d", "--model", "gold", "--shard", "3/2"])
    assert "1 <= I <= N" in capsys.readouterr().err


def _predictions(tmp_path: Path, local_tasks: Path, patches: dict[str, str] | None = None) -> Path:
    """Four keys a report holds: an empty patch with agent fields, an empty patch, an id no dataset has, and a
    torn last line (empty patches and unknown ids are graded without a sandbox: these runs take a second)."""
    patches = patches or {}
    rows = [{"instance_id": ID_1867, "model_name_or_path": "m", "model_patch": patches.get(ID_1867, ""),
             "steps": 3, "valid_steps": 2, "exit_status": "submitted"},
            {"instance_id": ID_1359, "model_name_or_path": "m", "model_patch": patches.get(ID_1359, "")},
            {"instance_id": "nobody__nothing-1", "model_name_or_path": "m", "model_patch": "",
             "steps": 5, "valid_steps": 1, "exit_status": "max_steps"}]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"instance_id": "trunc')
    return path


def test_merge_of_shards_is_the_single_run(local_tasks: Path, tmp_path: Path, capsys):
    preds = _predictions(tmp_path, local_tasks)
    common = ["--predictions", str(preds), "--dataset", str(local_tasks), "--runtime", "local"]
    assert _run(*common, "--out", str(tmp_path / "single"), "--run-id", "r") == 0
    single = (tmp_path / "single" / "results.json").read_text()
    assert _results(tmp_path / "single")["agent"]["episodes"] == 2 and "shard" not in _results(tmp_path / "single")
    keys = sorted(_results(tmp_path / "single")["instances"])
    assert len(keys) == 4
    for n in (2, 3):
        shards = [tmp_path / f"of{n}-{i}" for i in range(1, n + 1)]
        for i, folder in enumerate(shards, 1):
            assert _run(*common, "--out", str(folder), "--shard", f"{i}/{n}") == 0
            part = _results(folder)
            assert part["shard"]["index"] == i and part["shard"]["count"] == n and part["shard"]["keys"] == 4
            assert sorted(part["instances"]) == keys[i - 1 :: n]  # every n-th of the sorted keys
            assert part["run_id"] == folder.name and part["total"] == len(keys[i - 1 :: n])
        capsys.readouterr()
        merged = tmp_path / f"merged{n}"
        assert _merge(merged, *reversed(shards)) == 0  # in any order
        assert (merged / "results.json").read_text() == single  # the same JSON text, key order included
        assert "resolved 0/4 = 0.0%" in capsys.readouterr().out
        record = json.loads((merged / "merge.json").read_text())
        assert [s["index"] for s in record["shards"]] == list(range(1, n + 1)) and record["run_id"] == "r"
        assert record["shards"][0]["dir"] == str(shards[0].resolve())
    # Merging again into the same folder (an earlier merge) is allowed; the run id defaults to the folder's name.
    again = ["eval", "merge", str(tmp_path / "of2-1"), str(tmp_path / "of2-2"), "-o", str(tmp_path / "merged2")]
    assert main(again) == 0
    assert _results(tmp_path / "merged2")["run_id"] == "merged2"


def test_merge_refuses_what_is_not_one_run(local_tasks: Path, tmp_path: Path, capsys):
    preds = _predictions(tmp_path, local_tasks)
    common = ["--predictions", str(preds), "--dataset", str(local_tasks), "--runtime", "local"]
    s1, s2, s3 = tmp_path / "s1", tmp_path / "s2", tmp_path / "s3of3"
    for folder, shard in ((s1, "1/2"), (s2, "2/2"), (s3, "3/3")):
        assert _run(*common, "--out", str(folder), "--shard", shard) == 0
    assert _run(*common, "--out", str(tmp_path / "t2"), "--shard", "2/2", "--timeout", "60") == 0
    assert _run(*common, "--out", str(tmp_path / "whole")) == 0
    shutil.copytree(s1, tmp_path / "s1copy")
    (tmp_path / "unfinished").mkdir()
    capsys.readouterr()

    def refused(*shards: Path, out: Path | None = None) -> str:
        assert _merge(out or tmp_path / f"m-{uuid.uuid4().hex[:6]}", *shards) == 2
        return capsys.readouterr().err

    assert "shard 2/2 missing" in refused(s1)
    assert "shard 1/2 is given twice" in refused(s1, tmp_path / "s1copy", s2)
    assert "split it the same N ways" in refused(s1, s2, s3)
    assert "different settings (timeout: 1800 vs 60)" in refused(s1, tmp_path / "t2")
    assert "has not finished" in refused(s1, tmp_path / "unfinished")
    assert "not the results of a shard" in refused(s1, tmp_path / "whole")
    assert "is one of the shards" in refused(s1, s2, out=s2)
    assert "already holds a run's results.json" in refused(s1, s2, out=tmp_path / "whole")
    # The same settings over a predictions file that changed between the shards: a different set of keys.
    preds.write_text(preds.read_text().replace('{"instance_id": "trunc', '{"instance_id": "x", "model_patch": ""}\n'))
    assert _run(*common, "--out", str(tmp_path / "s2later"), "--shard", "2/2") == 0
    capsys.readouterr()
    assert "split different sets of instances (4 vs 4 keys" in refused(s1, tmp_path / "s2later")
    assert not list(tmp_path.glob("m-*/results.json"))  # nothing was written by a refused merge


def _records(folder: Path) -> dict:
    """predictions.jsonl by id, without the timing."""
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    return {r["instance_id"]: {k: v for k, v in r.items() if k != "seconds"} for r in rows}


@pytest.mark.slow
def test_agent_shards_merge_to_the_single_run(local_tasks: Path, tmp_path: Path):
    """Real agent episodes (the expert's replay) in local sandboxes, graded by running the tests: 1867 resolves,
    1359 has no trajectory (an empty patch). The merge has the single run's results.json, agent figures included,
    its predictions but for their timing, and the episodes' messages."""
    replay = Path(__file__).resolve().parents[1] / "trajectories" / "swe-exec"
    common = ["--model", f"replay:{replay}", "--dataset", str(local_tasks), "--runtime", "local"]
    assert _run(*common, "--out", str(tmp_path / "single"), "--run-id", "r") == 0
    assert _run(*common, "--out", str(tmp_path / "a"), "--shard", "1/2") == 0
    assert _run(*common, "--out", str(tmp_path / "b"), "--shard", "2/2") == 0
    assert _merge(tmp_path / "merged", tmp_path / "a", tmp_path / "b") == 0
    assert (tmp_path / "merged" / "results.json").read_text() == (tmp_path / "single" / "results.json").read_text()
    res = _results(tmp_path / "merged")
    assert (res["instances"][ID_1867]["status"], res["instances"][ID_1359]["status"]) == ("resolved", "empty_patch")
    assert res["agent"]["episodes"] == 1 and res["agent"]["submitted_rate"] == 1.0
    assert _records(tmp_path / "merged") == _records(tmp_path / "single") and len(_records(tmp_path / "single")) == 2
    assert sorted(p.name for p in (tmp_path / "merged" / "trajs").iterdir()) == [f"{ID_1867}.json"]
    merged, shard = (json.loads((tmp_path / d / "trajs" / f"{ID_1867}.json").read_text()) for d in ("merged", "b"))
    assert merged == shard and len(merged) == len(json.loads((tmp_path / "single" / "trajs" / f"{ID_1867}.json")
                                                             .read_text()))  # (the tests' output has timings)


@pytest.mark.slow
def test_gold_through_the_harness_in_two_shards(local_tasks: Path, tmp_path: Path, docker_client):
    """The harness grades each shard under its own run id; the merge writes the single run's results.json and
    the shards' predictions (the same records but for their timing)."""
    run_id = f"r{uuid.uuid4().hex[:8]}"
    common = ["--model", "gold", "--dataset", str(local_tasks), "--runtime", "docker"]
    assert _run(*common, "--out", str(tmp_path / "single"), "--run-id", run_id) == 0
    for i in (1, 2):
        assert _run(*common, "--out", str(tmp_path / f"s{i}"), "--run-id", f"{run_id}-{i}", "--shard", f"{i}/2") == 0
        assert len(list((tmp_path / f"s{i}" / "logs").rglob("report.json"))) == 1  # the harness graded one
    assert _merge(tmp_path / "merged", tmp_path / "s1", tmp_path / "s2", run_id=run_id) == 0
    assert (tmp_path / "merged" / "results.json").read_text() == (tmp_path / "single" / "results.json").read_text()
    assert _results(tmp_path / "merged")["resolved"] == 2
    assert _records(tmp_path / "merged") == _records(tmp_path / "single") and len(_records(tmp_path / "single")) == 2
