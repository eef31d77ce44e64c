"""The math-record format: math solutions -> step trajectories (the SRL paper's math setting).

A solution is split into steps; each step is one ``text`` action. Three record shapes:

* GSM8K ``{"question", "answer"}``: every non-empty line before ``#### N`` is a step; ``N`` is the
  final answer. The ``<<48/2=24>>`` calculator annotations are removed (they are tool traces of the
  dataset's annotators, not reasoning a model should imitate).
* numbered ``{"problem"|"question", "solution"}`` where the solution is written as ``1. ...``,
  ``2. ...``: each numbered item is a step; the answer is ``answer`` or the last ``\\boxed{}``.
* plain ``{"problem", "steps": [...], "answer"}``.
"""

from __future__ import annotations

import re
from typing import Any

from srl_swe.errors import TrajectoryFormatError
from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.trajectories.io import require

_CALC = re.compile(r"<<[^<>]*>>")
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+", re.M)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")


RECORDS = True  # a record of a JSONL file or JSON list, or a whole JSON file
EXPECTED = "a math record ({question, answer} / {problem, steps} / {problem, solution})"


def detect(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if "steps" in obj and "problem" in obj:
        return True
    if "question" in obj and isinstance(obj.get("answer"), str) and "####" in obj["answer"]:
        return True
    return ("problem" in obj or "question" in obj) and isinstance(obj.get("solution"), str)


def load(obj: Any, source: str, index: str | int | None, default_id: str) -> Trajectory:
    if not isinstance(obj, dict):
        raise TrajectoryFormatError(source, "a JSON object (math record)", index, got=type(obj).__name__)
    rid = str(obj.get("id", obj.get("unique_id", default_id)))
    if "steps" in obj:
        fmt, problem = "math-steps", require(obj, "problem", str, source, index)
        raw_steps = require(obj, "steps", list, source, index)
        if not all(isinstance(s, str) for s in raw_steps):
            raise TrajectoryFormatError(source, '"steps" to be a list of strings', index)
        steps, answer = [s.strip() for s in raw_steps if s.strip()], obj.get("answer")
    elif "question" in obj and isinstance(obj.get("answer"), str) and "####" in obj["answer"]:
        fmt, problem = "gsm8k", require(obj, "question", str, source, index)
        body, _, answer = obj["answer"].rpartition("####")
        steps = [_CALC.sub("", line).strip() for line in body.splitlines()]
        steps, answer = [s for s in steps if s], answer.strip()
    else:
        fmt = "math-numbered"
        problem = obj.get("problem", obj.get("question"))
        if not isinstance(problem, str):
            raise TrajectoryFormatError(source, '"problem" or "question" to be a string', index)
        solution = require(obj, "solution", str, source, index)
        marks = list(_NUMBERED.finditer(solution))
        if not marks:
            raise TrajectoryFormatError(source, 'a "solution" written as numbered steps ("1. ...")', index)
        ends = [m.start() for m in marks[1:]] + [len(solution)]
        steps = [solution[m.end() : e].strip() for m, e in zip(marks, ends, strict=True)]
        steps = [s for s in steps if s]
        answer = obj.get("answer")
        if answer is None:
            boxed = _BOXED.findall(solution)
            answer = boxed[-1] if boxed else None
    if not steps:
        raise TrajectoryFormatError(source, "at least one solution step", index)
    task = Task(rid, problem.strip(), answer=None if answer is None else str(answer))
    # Reference solutions are correct by construction: they count as resolved for filtering.
    return Trajectory(task, tuple(Step(ToolCall.text(s)) for s in steps), fmt, source, "math", True)
