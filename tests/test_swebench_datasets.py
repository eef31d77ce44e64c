"""Loading SWE-bench instances: the shared JSONL files, local_tasks folders, bad records, HF names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from srl_swe.errors import TrajectoryFormatError
from srl_swe.swebench.datasets import load_instances, load_instances_with_errors

pytestmark = pytest.mark.shared_data
M1359, M1867 = "marshmallow-code__marshmallow-1359", "marshmallow-code__marshmallow-1867"


def test_lite_test_300(shared_data: Path):
    instances = load_instances(shared_data / "swebench" / "lite_test_300.jsonl")
    assert len(instances) == 300
    assert len({i.instance_id for i in instances}) == 300
    first = instances[0]
    assert (first.instance_id, first.repo, first.version) == ("django__django-15202", "django/django", "4.1")
    assert all(i.FAIL_TO_PASS and i.patch.startswith("diff --git") and i.test_patch for i in instances)
    # Test lists arrive as JSON strings on the hub; they must come out as tuples of names.
    raw = json.loads((shared_data / "swebench" / "lite_test_300.jsonl").open().readline())
    assert list(first.FAIL_TO_PASS) == json.loads(raw["FAIL_TO_PASS"])
    assert first.to_record()["FAIL_TO_PASS"] == raw["FAIL_TO_PASS"]


def test_verified_mini_50_and_id_filter(shared_data: Path):
    path = shared_data / "swebench" / "verified_mini_50.jsonl"
    instances = load_instances(path)
    assert Counter(i.repo for i in instances) == {"django/django": 25, "sphinx-doc/sphinx": 25}
    ids = [instances[7].instance_id, instances[2].instance_id]
    picked = load_instances(path, ids)
    assert [i.instance_id for i in picked] == [ids[1], ids[0]]  # source order, not request order
    with pytest.raises(TrajectoryFormatError, match=r"verified_mini_50.jsonl \[record nope__nope-1\]"):
        load_instances(path, [ids[0], "nope__nope-1"])


def test_local_tasks_folder_and_single_task(local_tasks: Path):
    instances = load_instances(local_tasks)
    assert [(i.instance_id, i.version) for i in instances] == [(M1359, "3.0"), (M1867, "3.13")]
    for inst in instances:
        assert inst.patch == (local_tasks / inst.instance_id / "gold.patch").read_text()
        assert inst.test_patch == (local_tasks / inst.instance_id / "test.patch").read_text()
    (single,) = load_instances(local_tasks / M1867)
    assert single == instances[1]


def test_patches_come_from_patch_files_when_the_record_lacks_them(local_tasks: Path, tmp_path: Path):
    task = tmp_path / M1867
    shutil.copytree(local_tasks / M1867, task)
    os.chmod(task / "instance.json", 0o644)
    record = json.loads((task / "instance.json").read_text())
    del record["patch"]
    record["test_patch"] = ""
    (task / "instance.json").write_text(json.dumps(record))
    (inst,) = load_instances(tmp_path)
    assert inst.patch == (local_tasks / M1867 / "gold.patch").read_text()
    assert inst.test_patch == (local_tasks / M1867 / "test.patch").read_text()


def _good(iid: str) -> dict:
    return {"instance_id": iid, "repo": "o/r", "base_commit": "abc", "problem_statement": "p", "version": "1.0",
            "FAIL_TO_PASS": '["t::a"]', "PASS_TO_PASS": "[]"}


def test_bad_records_are_named_and_the_good_ones_kept(tmp_path: Path):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(_good("o__r-1")), "{not json", json.dumps({**_good("o__r-2"), "repo": ""}),
             json.dumps({**_good("o__r-3"), "FAIL_TO_PASS": "not a list"}), "", json.dumps(_good("o__r-1")),
             json.dumps(_good("o__r-4"))]
    path.write_text("\n".join(lines) + "\n")
    instances, errors = load_instances_with_errors(path)
    assert [i.instance_id for i in instances] == ["o__r-1", "o__r-4"]
    assert [e.record for e in errors] == ["line 2", "o__r-2", "o__r-3", "o__r-1"]
    assert all(str(path) in e.source for e in errors)
    assert "SWE-bench fields repo" in str(errors[1])
    assert "FAIL_TO_PASS/PASS_TO_PASS as JSON lists" in str(errors[2])
    assert "(line 6)" in errors[3].source and "unique instance ids" in str(errors[3])
    with pytest.raises(TrajectoryFormatError, match=r"mixed.jsonl \[record line 2\].*and 3 more bad records"):
        load_instances(path)
    good, bad = load_instances(path, strict=False)
    assert [i.instance_id for i in good] == ["o__r-1", "o__r-4"]
    assert list(bad) == ["line 2", "o__r-2", "o__r-3", f"o__r-1 ({path} (line 6))"]
    assert bad["o__r-2"] == str(errors[1])
    # Filtering by id reads only the wanted records: the bad ones elsewhere do not matter.
    assert [i.instance_id for i in load_instances(path, ["o__r-4"])] == ["o__r-4"]


def test_json_list_and_mapping_and_bad_sources(tmp_path: Path):
    (tmp_path / "list.json").write_text(json.dumps([_good("a__b-1"), _good("a__b-2")]))
    (tmp_path / "map.json").write_text(json.dumps({"a__b-1": _good("a__b-1")}))
    assert [i.instance_id for i in load_instances(tmp_path / "list.json")] == ["a__b-1", "a__b-2"]
    assert [i.instance_id for i in load_instances(tmp_path / "map.json")] == ["a__b-1"]
    (tmp_path / "scalar.json").write_text("3")
    with pytest.raises(TrajectoryFormatError, match="a JSON list of SWE-bench records; got int"):
        load_instances(tmp_path / "scalar.json")
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(TrajectoryFormatError, match=r"a \.jsonl or \.json file"):
        load_instances(tmp_path / "data.txt")
    with pytest.raises(FileNotFoundError, match="no such dataset file"):
        load_instances(tmp_path / "missing.jsonl")
    (tmp_path / "tasks" / "t1").mkdir(parents=True)
    instances, errors = load_instances_with_errors(tmp_path / "tasks")
    assert instances == [] and errors[0].record == "t1" and "instance.json" in str(errors[0])


def test_hf_dataset_name_fails_with_a_clear_error_offline():
    # A name that is not a path goes to datasets.load_dataset; offline it must fail as bad input, not crash.
    code = ("from srl_swe.swebench.datasets import load_instances\n"
            "try:\n    load_instances('some-org/no-such-swe-dataset')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120).stdout
    assert out.startswith("TrajectoryFormatError some-org/no-such-swe-dataset: expected an existing file/folder")
