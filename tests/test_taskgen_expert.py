"""The scripted expert of issue 12 on real generated tasks: real runs on the local runtime, real grading."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

from srl_swe.actions import render
from srl_swe.dataset import step_rows
from srl_swe.steps import StepConfig, build_steps
from srl_swe.swebench.datasets import load_instances
from srl_swe.taskgen.expert import ATTEMPTS, SUMMARY, run_expert, trajectories_path, write_experts
from srl_swe.taskgen.expert_patch import ExpertError, find_edit, normalise, parse_patch
from srl_swe.trajectories import load_trajectories
from srl_swe.trajectories.chat import load as load_chat


@pytest.fixture(scope="module")
def instances(generated_tasks: Path) -> dict:
    return {i.instance_id: i for i in load_instances(generated_tasks)}


@pytest.fixture(scope="module")
def batch(generated_tasks: Path, tmp_path_factory) -> tuple[Path, dict]:
    """Every task of the fixture (both splits) through write_experts, once for this module."""
    out = tmp_path_factory.mktemp("experts")
    return out, write_experts(generated_tasks, out, split="all", workers=2, progress=False)


def _lines(out: Path) -> list[str]:
    """Every kept trajectory line, train then heldout."""
    paths = [trajectories_path(out, split) for split in ("train", "heldout")]
    return [line for p in paths if p.is_file() for line in p.read_text(encoding="utf-8").splitlines()]


def _records(out: Path) -> dict[str, dict]:
    return {r["instance_id"]: r for r in map(json.loads, _lines(out))}


def _steps(record: dict):
    return load_chat(record, "<test>", 0, record["instance_id"]).steps


def test_the_expert_resolves_every_generated_task(batch, instances):
    out, summary = batch
    assert summary["tasks"] == summary["tried"] == summary["resolved"] == summary["kept"] == len(instances) == 2
    assert summary["failures"] == {} and summary["statuses"] == {"resolved": 2}
    assert summary["splits"] == {"heldout": {"tasks": 1, "tried": 1, "kept": 1},
                                 "train": {"tasks": 1, "tried": 1, "kept": 1}}
    assert 0 < summary["seconds_per_task"] < 120
    records = _records(out)
    assert set(records) == set(instances)
    for iid, record in records.items():
        assert record["resolved"] is True and record["split"] == instances[iid].raw["split"]
        report = json.loads((out / record["split"] / f"{iid}.report.json").read_text())
        assert report["resolved"] is True  # the harness's per-instance form, named by the id
        assert report["tests_status"]["FAIL_TO_PASS"]["success"] == list(instances[iid].FAIL_TO_PASS)


def test_the_trajectory_has_every_phase_with_real_observations(batch, instances):
    out, _ = batch
    for iid, record in _records(out).items():
        inst, steps = instances[iid], _steps(record)
        f2p = inst.FAIL_TO_PASS
        runs = [k for k, s in enumerate(steps) if s.action.name == "bash" and "-m pytest" in s.action.args["command"]]
        edit = next(k for k, s in enumerate(steps) if s.action.args.get("command") == "str_replace")
        assert runs[0] < edit < runs[-1], [s.action.name for s in steps]
        # reproduce: a real FAILED line for a FAIL_TO_PASS test, before any edit
        assert any(f"FAILED {t}" in steps[runs[0]].observation for t in f2p)
        assert re.search(r"\b\d+ failed\b", steps[runs[0]].observation)
        # locate: the lines the gold patch changes were shown (a view's numbered lines) before the edit
        (hunk,) = parse_patch(inst.patch, iid)
        first, _ = hunk.changed_lines()
        seen = "".join(s.observation for s in steps[:edit] if s.action.args.get("command") == "view")
        assert re.search(rf"^ *{first}\t", seen, re.M)
        # fix: the editor's real answer, then a re-run that passes
        assert "has been edited" in steps[edit].observation
        rerun = steps[runs[-1]].observation
        assert re.search(r"\b\d+ passed\b", rerun) and not re.search(r"\b\d+ failed\b", rerun)
        # submit: the diff makes the gold patch's change
        assert steps[-1].action.name == "submit"
        gold_added = [line for line in inst.patch.splitlines() if line.startswith("+ ")]
        assert gold_added and all(line in steps[-1].observation.splitlines() for line in gold_added)
        for s in steps:
            assert not re.search(r"/root/|/home/|srl-swe-local-|\.cache/srl-swe", s.observation), s.observation
            assert not re.search(r"\bin \d+\.\d+s\b", s.observation.replace("in 0.00s", ""))


def test_the_thoughts_quote_what_the_observations_said(batch):
    out, _ = batch
    flat = " ".join  # quotes collapse white space
    for record in _records(out).values():
        steps = _steps(record)
        for k, step in enumerate(steps[1:], 1):
            earlier = flat(" ".join(s.observation for s in steps[:k]).split())
            own = flat(" ".join(step.action.args.values()).split())  # an intention names its own search or new text
            quotes = re.findall(r"`([^`\n]{6,})`", step.thought)
            for quoted in quotes:
                quoted = flat(quoted.removesuffix("...").split())
                assert quoted in earlier or quoted in own, (quoted, step.thought)
        assert any(re.search(r"`\w+Error: [^`]+`|`assert [^`]+`", s.thought) for s in steps)  # pytest's E line
        assert re.search(r"`\d+ passed", steps[-1].thought)


def test_two_seeds_take_different_paths_and_a_seed_repeats_exactly(batch, instances):
    out, _ = batch
    records = _records(out)
    iid = sorted(instances)[0]
    again = run_expert(instances[iid], seed=0, grade=False)
    assert again.record["messages"] == records[iid]["messages"]  # same seed: the same bytes
    assert tuple(again.record["expert_path"]) == tuple(records[iid]["expert_path"])
    other = run_expert(instances[iid], seed=1, grade=False)
    assert other.status == "unresolved" and other.reason == "not graded"
    assert [m["content"] for m in other.record["messages"][2::2]] != again.actions


def test_the_trajectories_load_as_step_examples_and_drive_the_env(batch):
    out, _ = batch
    for split in ("train", "heldout"):  # one folder per split: a split's data holds no other split's task
        found = load_trajectories(out / split)
        assert len(found.trajectories) == 1 and not found.skipped and found.trajectories[0].resolved is True
    path = trajectories_path(out, "train")
    # keep="resolved" (the default): the reports mark them resolved
    trajs = [t for split in ("train", "heldout") for t in load_trajectories(trajectories_path(out, split)).trajectories]
    assert len(trajs) == 2
    assert all(t.resolved is True and t.source_format == "swe-smith-chat" for t in trajs)
    examples = build_steps(trajs, StepConfig.for_task("swe"))
    assert len(examples) == sum(len(t.steps) for t in trajs)
    assert examples[-1].expert_action == render(trajs[-1].steps[-1].action, "xml")
    assert len(step_rows(trajs, StepConfig.for_task("swe"))) == len(examples)
    env = gym.make("SRL-SWE-v0", data=str(path))
    obs, info = env.reset(options={"index": 0})
    t = env.unwrapped.trajectories[0]
    assert info["num_steps"] == len(t.steps) and t.task.problem_statement in obs["prompt"]
    obs, reward, terminated, _, info = env.step("<think>\nrun it\n</think>\n" + render(t.steps[0].action))
    assert reward == 1.0 and not terminated
    assert obs["messages"][-1]["content"].startswith("OBSERVATION:\n" + t.steps[0].observation[:80])
    env.close()


def test_a_rerun_resumes_and_writes_nothing_new(batch, generated_tasks):
    out, first = batch
    files = [trajectories_path(out, "train"), trajectories_path(out, "heldout"), out / ATTEMPTS]
    before = {path: path.read_bytes() for path in files}
    summary = write_experts(generated_tasks, out, split="all", progress=False)
    assert {path: path.read_bytes() for path in before} == before
    keys = ("tried", "kept", "failures", "splits")
    assert {k: summary[k] for k in keys} == {k: first[k] for k in keys}
    assert json.loads((out / SUMMARY).read_text())["kept"] == 2
    # a torn last line (a kill mid-write) is cut off, and the task it belonged to is not duplicated
    with files[0].open("ab") as f:
        f.write(b'{"instance_id": "torn", "mess')
    write_experts(generated_tasks, out, split="all", progress=False)
    assert files[0].read_bytes() == before[files[0]]


def test_a_kill_9_mid_batch_loses_and_duplicates_nothing(generated_tasks, tmp_path):
    out = tmp_path / "killed"
    code = ("from srl_swe.taskgen.expert import write_experts; "
            f"write_experts({str(generated_tasks)!r}, {str(out)!r}, split='all', workers=1, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:  # kill it once the first task is recorded
        if (out / ATTEMPTS).is_file() and (out / ATTEMPTS).read_bytes().endswith(b"\n"):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # its own process group: the batch and the test runs it started
    proc.wait()
    assert len((out / ATTEMPTS).read_text().splitlines()) == 1
    summary = write_experts(generated_tasks, out, split="all", progress=False)
    ids = [json.loads(line)["instance_id"] for line in _lines(out)]
    assert len(ids) == len(set(ids)) == summary["kept"] == summary["tried"] == 2


def test_bad_records_and_unresolved_patches_are_not_kept(generated_tasks, instances, tmp_path):
    raw = [json.loads(line) for line in (generated_tasks / "tasks.jsonl").read_text().splitlines()]
    unresolvable, garbage = raw
    # the expert's tests pass, but grading also needs a PASS_TO_PASS test that does not exist
    unresolvable["PASS_TO_PASS"] = json.dumps([*json.loads(unresolvable["PASS_TO_PASS"]), "tests/test_x.py::test_gone"])
    garbage["patch"] = "this is not a diff"
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "tasks.jsonl").write_text("\n".join([json.dumps(unresolvable), json.dumps(garbage), "{not json"]) + "\n")
    summary = write_experts(tasks, split="all", progress=False)
    out = tasks / "experts"
    assert summary["kept"] == 0 and summary["tried"] == 2 and summary["bad_records"] == 1
    assert summary["statuses"] == {"unresolved": 1, "failed": 1}
    failures = summary["failures"]
    assert "is unresolved" in failures[unresolvable["instance_id"]]
    assert failures[garbage["instance_id"]].startswith(garbage["instance_id"] + ": the gold patch has no hunk")
    assert any(k.startswith("record ") and "line 3" in v for k, v in failures.items())
    assert _lines(out) == []
    assert not list(out.glob("**/*.report.json"))
    # one split only: both were tried above, so nothing runs again and only the train task is counted
    train = write_experts(tasks, split="train", progress=False)
    assert train["tasks"] == train["tried"] == sum(r["split"] == "train" for r in raw) == 1


def test_the_edit_is_unique_in_the_file_and_hostile_patches_are_refused():
    content = "a = 1\nx = f(1)\nb = 2\nc = 3\nx = f(1)\nd = 4\n"
    patch = ("diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -4,3 +4,3 @@\n c = 3\n-x = f(1)\n+x = f(2)\n"
             " d = 4\n")
    (hunk,) = parse_patch(patch, "inst-1")
    assert (hunk.path, hunk.start, hunk.removed(), hunk.added(), hunk.changed_lines()) == (
        "m.py", 4, ("x = f(1)",), ("x = f(2)",), (5, 5))
    for seed in range(8):  # whatever context the seed starts with, old_str is unique and hits line 5
        old, new = find_edit(content, hunk, random.Random(seed), "inst-1")
        assert content.count(old) == 1
        assert content.replace(old, new) == "a = 1\nx = f(1)\nb = 2\nc = 3\nx = f(2)\nd = 4\n"
    with pytest.raises(ExpertError, match="does not hold the gold patch's old lines"):
        find_edit(content.replace("c = 3\nx = f(1)", "c = 3\nx = g(1)"), hunk, random.Random(0), "inst-1")
    for bad, why in [("", "is empty"), ("x" * 300_000, "has 300000 characters"),
                     ("--- /dev/null\n+++ b/new.py\n", "adds, deletes"),
                     ("--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "names the path '../etc"),
                     ("+++ b/f.py\n@@ -1,3 +1,3 @@\n-a\n+b\n", "has a hunk of f.py whose lines do not match")]:
        with pytest.raises(ExpertError, match=f"inst-1: the gold patch {why}"):
            parse_patch(bad, "inst-1")
    assert normalise("1 passed in 12.34s (0:00:12) <f at 0x7f3a2b>") == "1 passed in 0.00s <f at 0x0>"


@pytest.mark.slow
def test_the_expert_resolves_a_task_on_docker(instances, docker_client):
    inst = instances[sorted(instances)[0]]
    result = run_expert(inst, runtime="docker", seed=0, client=docker_client)
    assert result.status == "resolved", result.reason
    assert result.grade is not None and result.grade.resolved
    steps = _steps(result.record)
    assert any(f"FAILED {t}" in s.observation for s in steps for t in inst.FAIL_TO_PASS)
