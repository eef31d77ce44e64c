#!/usr/bin/env python
"""Write the project's expert trajectory for marshmallow-code__marshmallow-1867 (TimeDelta precision).

    python scripts/make_expert_marshmallow.py

The actions and thoughts below were written for srl-swe. The script runs them through the agent loop
(:func:`srl_swe.agent.run_agent` with a :class:`~srl_swe.agent.ReplayPolicy`) on the ``local`` runtime, so
every observation is the real output of the real tool, checks that each one says what its thought claims,
grades the submitted patch (hidden tests of the task, :func:`srl_swe.swebench.grading.grade_in_runtime`),
and writes

* ``trajectories/swe-exec/marshmallow-1867.jsonl``: one SWE-smith XML chat record (what
  :func:`srl_swe.trajectories.load_trajectories` reads);
* ``trajectories/swe-exec/marshmallow-code__marshmallow-1867.report.json``: the grading report in the
  harness's per-instance form, which the loader attaches as the outcome (resolved).

The only edit made to observations: pytest's wall-clock durations (``in 1.23s``) are replaced by ``in 0.00s``,
so reruns write the same bytes. Needs the task in ``$SRL_SWE_DATA/local_tasks`` and PyPI (first run only,
to build the cached source and venv).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from srl_swe.agent import ReplayPolicy, run_agent
from srl_swe.paths import shared_data_dir
from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.grading import grade_in_runtime
from srl_swe.swebench.runtimes import task_runtime
from srl_swe.trajectories import load_trajectories

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "trajectories" / "swe-exec"
INSTANCE_ID = "marshmallow-code__marshmallow-1867"
FIELDS = "/testbed/src/marshmallow/fields.py"
REPRO = ("cd /testbed && python -c 'import datetime as dt\nfrom marshmallow.fields import TimeDelta\n"
         "obj = {\"a\": dt.timedelta(milliseconds=345), \"b\": dt.timedelta(milliseconds=1999)}\n"
         "print(TimeDelta(precision=\"milliseconds\").serialize(\"a\", obj))\n"
         "print(TimeDelta(precision=\"seconds\").serialize(\"b\", obj))'")
OLD = ("        base_unit = dt.timedelta(**{self.precision: 1})\n"
       "        return int(value.total_seconds() / base_unit.total_seconds())")
NEW = ("        base_unit = dt.timedelta(**{self.precision: 1})\n"
       "        # timedelta // timedelta divides whole microseconds as integers: no float rounding error.\n"
       "        return value // base_unit")

# (thought, call, text the real observation must contain): the check keeps each thought honest.
ACTIONS: list[tuple[str, ToolCall, str]] = [
    ("The issue is about how the TimeDelta field serializes. Let me find where the field is defined.",
     ToolCall.bash("grep -rn 'class TimeDelta' /testbed/src"),
     "src/marshmallow/fields.py:1420:class TimeDelta(Field):"),
    ("TimeDelta is in src/marshmallow/fields.py at line 1420. Let me read the class and its _serialize method, "
     "which the issue links to (line 1474).",
     ToolCall.make("str_replace_editor", command="view", path=FIELDS, view_range=[1420, 1490]),
     "return int(value.total_seconds() / base_unit.total_seconds())"),
    ("_serialize divides two float numbers of seconds and truncates with int(). 0.345 / 0.001 is "
     "344.99999999999994 in floating point, so int() gives 344. Before changing anything, let me reproduce it, "
     "together with a case that must round down (1999 ms in seconds is 1).",
     ToolCall.bash(REPRO), "344\n1"),
    ("Reproduced: 344 instead of 345. Python can divide one timedelta by another with //, which works on "
     "whole microseconds as integers and returns an int, so there is no floating point rounding. Flooring is "
     "what int() did for positive durations, and 1999 ms still serializes to 1 second.",
     ToolCall.make("str_replace_editor", command="str_replace", path=FIELDS, old_str=OLD, new_str=NEW),
     "return value // base_unit"),
    ("Now the reproduction script should print 345 and 1.",
     ToolCall.bash(REPRO), "345\n1"),
    ("The fix works. Let me run the whole test suite to make sure nothing else changed.",
     ToolCall.bash("cd /testbed && python -m pytest tests -q -W ignore::DeprecationWarning 2>&1 | tail -n 3"),
     " passed"),
    ("All tests pass. The change is a single line in fields.py, so I submit it.",
     ToolCall.make("submit"), "+        return value // base_unit"),
]


def normalise(text: str) -> str:
    return re.sub(r"\bin \d+\.\d+s\b", "in 0.00s", text)


def main() -> int:
    (instance,) = load_instances(shared_data_dir() / "local_tasks", [INSTANCE_ID])
    expert = Trajectory(Task(INSTANCE_ID, instance.problem_statement, instance.repo),
                        tuple(Step(call, thought) for thought, call, _ in ACTIONS), "srl-swe-script", __file__)
    with task_runtime("local", instance) as runtime:
        result = run_agent(ReplayPolicy(expert), instance, runtime, max_steps=len(ACTIONS), window=None,
                           model_name="srl-swe-expert")
    if result.exit_status != "submitted" or len(result.steps) != len(ACTIONS):
        sys.exit(f"the expert did not finish: {result.exit_status} after {len(result.steps)} steps")
    for (_, call, expected), step in zip(ACTIONS, result.steps, strict=True):
        if expected not in step.observation:
            sys.exit(f"{call.name} {call.args}: expected {expected!r} in its output, got:\n{step.observation}")
        if re.search(r"/root/|/tmp/|/home/|srl-swe-local-", step.observation):
            sys.exit(f"a host path leaked into the observation of {call.name}:\n{step.observation}")
    grade = grade_in_runtime(instance, result.patch, runtime="local")
    if not grade.resolved:
        sys.exit(f"the expert's patch does not resolve {INSTANCE_ID}: {grade.status} {grade.error or ''}")
    record = result.to_chat_record(repo=instance.repo, problem_statement=instance.problem_statement)
    for message in record["messages"]:
        message["content"] = normalise(message["content"])
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "marshmallow-1867.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    report = OUT / f"{INSTANCE_ID}.report.json"
    report.write_text(json.dumps(grade.report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    loaded = load_trajectories(path)  # keep="resolved": loads only if the report marks it resolved
    (traj,) = loaded.trajectories
    assert traj.resolved is True and len(traj.steps) == len(ACTIONS), traj
    assert [s.action for s in traj.steps] == [call for _, call, _ in ACTIONS]
    print(f"{INSTANCE_ID}: {len(ACTIONS)} actions, resolved; wrote {path.relative_to(ROOT)} and "
          f"{report.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
