#!/usr/bin/env python
"""Generate the bundled default dataset under trajectories/ (written by srl-swe, licensed with it).

    python scripts/make_bundled_trajectories.py

SWE trajectories: each task in bundled_swe_tasks.py is built as a tiny git repository in a temporary
directory and its scripted expert actions are executed for real, so every observation is genuine output.
The temporary path is shown to the agent as /testbed. The output is byte-identical across runs: fixed git
identity and dates, minimal environment, pytest durations normalised.

Math: hand-written word problems; every equation in every step is re-evaluated here.
"""

from __future__ import annotations

import ast
import json
import operator
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bundled_swe_tasks import SWE_TASKS, TEST_CMD

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "trajectories"
TESTBED = "/testbed"
SNIPPET_LINES = 4  # context lines around an edit, as in SWE-agent's editor
NO_OUTPUT = "Your command ran successfully and did not produce any output."

SYSTEM_PROMPT = """\
You are a software engineering agent working in a Python repository at /testbed. Each reply gives a \
short thought followed by exactly one function call. Available functions:

bash: run a shell command in /testbed and return its output.
  <parameter=command> the command to run

str_replace_editor: view, create and edit files.
  <parameter=command> one of view, create, str_replace, insert
  <parameter=path> absolute path of a file or directory
  <parameter=view_range> optional for view, e.g. [3, 10] (-1 as end means end of file)
  <parameter=file_text> for create: the content of the new file
  <parameter=old_str> for str_replace: text that must occur exactly once in the file
  <parameter=new_str> for str_replace: the replacement; for insert: the text to insert
  <parameter=insert_line> for insert: new_str is inserted after this line (0 = start of file)

submit: finish; the change to the repository is submitted as a diff.

Call syntax:
<function=bash>
<parameter=command>ls</parameter>
</function>"""

USER_TEMPLATE = """\
A Python repository is checked out at /testbed. Change the non-test files so that the issue below is \
resolved.

<pr_description>
{problem}
</pr_description>"""


def run_env(home: str) -> dict[str, str]:
    # A minimal, fixed environment: no user git config, no stray pytest plugins, no colours, fixed width,
    # and `python` on PATH resolving to the interpreter running this script.
    ident = {"NAME": "SRL Bundled", "EMAIL": "bundled@srl-swe.invalid", "DATE": "2024-01-01T00:00:00+00:00"}
    env = {f"GIT_{who}_{key}": val for who in ("AUTHOR", "COMMITTER") for key, val in ident.items()}
    env.update(
        PATH=os.path.dirname(sys.executable) + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
        HOME=home, LANG="C.UTF-8", LC_ALL="C.UTF-8", TZ="UTC", TERM="dumb", COLUMNS="80", PY_COLORS="0",
        PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", GIT_CONFIG_NOSYSTEM="1",
        # The cache dir and plugin auto-loading would leak into `git diff` / vary between machines.
        PYTEST_ADDOPTS="-p no:cacheprovider", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    return env


def sh(cmd: str, repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, cwd=repo, capture_output=True, text=True, timeout=60, env=env)


def numbered(lines: list[str], first: int) -> str:
    return "\n".join(f"{i:6}\t{line}" for i, line in enumerate(lines, first))


def editor(repo: Path, p: dict[str, str]) -> tuple[str, bool]:
    """SWE-agent-style str_replace_editor; returns (observation, ok)."""
    shown = p["path"]
    path = repo / shown.removeprefix(TESTBED).lstrip("/")
    cmd = p["command"]
    if cmd == "view" and path.is_dir():
        rel = sorted(q.relative_to(path) for q in path.rglob("*"))
        rel = [r for r in rel if len(r.parts) <= 2 and not any(part.startswith(".") for part in r.parts)]
        listing = "\n".join([shown] + [f"{shown.rstrip('/')}/{r.as_posix()}" for r in rel])
        head = f"Here's the files and directories up to 2 levels deep in {shown}, excluding hidden items:"
        return f"{head}\n{listing}\n", True
    if cmd == "create":
        if path.exists():
            return f"File already exists at: {shown}. Cannot overwrite files using command `create`.", False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(p["file_text"])
        return f"File created successfully at: {shown}", True
    if not path.is_file():
        return f"The path {shown} does not exist. Please provide a valid path.", False
    text = path.read_text()
    lines = text.splitlines()
    if cmd == "view":
        start, end = json.loads(p.get("view_range", "[1, -1]"))
        end = len(lines) if end == -1 else end
        body = numbered(lines[start - 1 : end], start)
        return f"Here's the result of running `cat -n` on {shown}:\n{body}\n", True
    if cmd == "str_replace":
        old, new = p["old_str"], p.get("new_str", "")
        count = text.count(old)
        if count == 0:
            return f"No replacement was performed, old_str `{old}` did not appear verbatim in {shown}.", False
        if count > 1:
            hits = [i for i, line in enumerate(lines, 1) if old.splitlines()[0] in line]
            return f"No replacement was performed. Multiple occurrences of old_str `{old}` in lines {hits}. "\
                "Please ensure it is unique", False
        at = text.split(old)[0].count("\n")
        path.write_text(text.replace(old, new))
        first = max(0, at - SNIPPET_LINES)
        snippet = path.read_text().splitlines()[first:at + SNIPPET_LINES + new.count("\n") + 1]
        descr, review = f"a snippet of {shown}", "make sure they are as expected"
    elif cmd == "insert":
        at, new_lines = int(p["insert_line"]), p["new_str"].split("\n")
        if not 0 <= at <= len(lines):
            return f"Invalid `insert_line` parameter: {at}. It should be within [0, {len(lines)}].", False
        lines[at:at] = new_lines
        path.write_text("\n".join(lines) + "\n")
        first = max(0, at - SNIPPET_LINES)
        snippet = lines[first:at + len(new_lines) + SNIPPET_LINES]
        descr = "a snippet of the edited file"
        review = "make sure they are as expected (correct indentation, no duplicate lines, etc)"
    else:
        return f"Unrecognized command {cmd}.", False
    head = f"The file {shown} has been edited. Here's the result of running `cat -n` on {descr}:"
    tail = f"Review the changes and {review}. Edit the file again if necessary."
    return f"{head}\n{numbered(snippet, first + 1)}\n{tail}", True


def function_call(tool: str, params: dict[str, str]) -> str:
    for value in params.values():
        assert "</parameter>" not in value, value  # values are raw text; this tag would end them early
    return f"<function={tool}>\n" + "".join(f"<parameter={k}>{v}</parameter>\n" for k, v in params.items()) \
        + "</function>"


def build_trajectory(task: dict, tmp: Path) -> dict:
    repo = tmp / task["repo"].split("/")[-1]
    env = run_env(str(tmp))
    for rel, content in task["files"].items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(content)
    for cmd in ("git init -q -b main", "git add -A", "git commit -q -m 'Initial commit'"):
        sh(cmd, repo, env).check_returncode()
    assert sh(TEST_CMD, repo, env).returncode != 0, f"{task['instance_id']}: tests pass before the fix"

    def clean(text: str) -> str:
        text = text.replace(str(repo), TESTBED)
        return re.sub(r"\bin \d+\.\d+s\b", "in 0.00s", text)  # pytest durations vary run to run

    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_TEMPLATE.format(problem=task["problem_statement"])}]
    for step in task["actions"]:
        tool, params = step["tool"], step["params"]
        if tool == "bash":
            proc = sh(params["command"], repo, env)
            obs = proc.stdout + proc.stderr or NO_OUTPUT
            ok = step["rc"] is None or (proc.returncode != 0) == (step["rc"] == "fail")
            assert ok, f"{task['instance_id']}: {params['command']!r} exited {proc.returncode}\n{obs}"
        elif tool == "str_replace_editor":
            obs, ok = editor(repo, params)
            assert ok, f"{task['instance_id']}: {obs}"
        else:
            assert step is task["actions"][-1], "submit must be the last action"
            assert sh(TEST_CMD, repo, env).returncode == 0, f"{task['instance_id']}: tests fail at submit"
            sh("git add -A", repo, env).check_returncode()
            obs = sh("git diff --cached", repo, env).stdout
            assert obs, f"{task['instance_id']}: empty patch"
        action = f"{step['thought']}\n\n{function_call(tool, params)}"
        messages.append({"role": "assistant", "content": action})
        messages.append({"role": "user", "content": "OBSERVATION:\n" + clean(obs)})
    assert task["actions"][-1]["tool"] == "submit" and 6 <= len(task["actions"]) <= 10
    for m in messages:  # guard the byte-identical promise: no temp paths, no memory addresses
        assert str(tmp) not in m["content"] and not re.search(r"\b0x[0-9a-f]{6,}", m["content"]), m["content"]
    return {"instance_id": task["instance_id"], "repo": task["repo"],
            "problem_statement": task["problem_statement"], "resolved": True, "messages": messages}


# Original grade-school problems. `known` lists constants a step may use that are not digits in the text.
MATH_PROBLEMS = [
    ("A bakery packs muffins in boxes of 6. On Saturday it sold 14 full boxes and 5 loose muffins. "
     "How many muffins did it sell on Saturday?",
     ["Muffins in the boxes: 14 * 6 = 84.", "Add the loose muffins: 84 + 5 = 89."], "89", ()),
    ("Priya reads 18 pages of her novel on each of the 5 weekdays and 30 pages on each of the 2 weekend "
     "days. How many pages does she read in one week?",
     ["Weekday pages: 5 * 18 = 90.", "Weekend pages: 2 * 30 = 60.", "Total for the week: 90 + 60 = 150."],
     "150", ()),
    ("A school buys 7 packs of markers at $4.50 per pack and pays with two $20 bills. "
     "How much change, in dollars, does the school get?",
     ["Cost of the markers: 7 * 4.50 = 31.50 dollars.", "Money handed over: 2 * 20 = 40 dollars.",
      "Change: 40 - 31.50 = 8.50 dollars."], "8.5", (2,)),
    ("A rain barrel holds 240 liters. It is 3/4 full, and then 45 liters are used to water the garden. "
     "How many liters are left in the barrel?",
     ["Water at the start: 240 * 3 / 4 = 180 liters.", "Water left: 180 - 45 = 135 liters."], "135", ()),
    ("Tomás earns $12 per hour at a bike shop. He worked 6 hours on Monday and 4 hours on Tuesday, then "
     "spent $35 of his pay on a helmet. How many dollars of his pay does he have left?",
     ["Hours worked: 6 + 4 = 10.", "Pay: 10 * 12 = 120 dollars.",
      "Left after the helmet: 120 - 35 = 85 dollars."], "85", ()),
    ("A rectangular garden bed is 8 meters long and 3 meters wide. Fencing costs $7 per meter. "
     "How many dollars does it cost to fence all four sides?",
     ["Perimeter: 2 * (8 + 3) = 22 meters.", "Cost of the fence: 22 * 7 = 154 dollars."], "154", (2,)),
    ("A class of 28 students splits into teams of 4 for a quiz. Each team needs 5 answer sheets and the "
     "teacher has 25 sheets. How many more sheets does the teacher need?",
     ["Number of teams: 28 / 4 = 7.", "Sheets needed: 7 * 5 = 35.", "Sheets still missing: 35 - 25 = 10."],
     "10", ()),
    ("A jar holds 60 marbles. A third of them are red and 15 are blue; the rest are green. "
     "How many green marbles are in the jar?",
     ["Red marbles: 60 / 3 = 20.", "Red and blue together: 20 + 15 = 35.", "Green marbles: 60 - 35 = 25."],
     "25", (3,)),
]

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def arith(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](arith(node.left), arith(node.right))
    raise ValueError(f"unsupported arithmetic: {ast.dump(node)}")


def check_math(problem: str, steps: list[str], answer: str, known: tuple) -> None:
    """Re-evaluate every step's `expr = result` and tie its operands to the problem or earlier steps."""
    allowed = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", problem)} | {float(k) for k in known}
    assert 2 <= len(steps) <= 5
    result = None
    for step in steps:
        (expr, stated), = re.findall(r"([\d.\s+\-*/()]+)=\s*(\d+(?:\.\d+)?)", step)
        result = arith(ast.parse(expr.strip(" ."), mode="eval").body)
        assert abs(result - float(stated)) < 1e-9, f"{step!r}: computed {result}"
        operands = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", expr)}
        assert operands <= allowed, f"{step!r}: {operands - allowed} not in the problem or earlier steps"
        allowed.add(float(stated))
    assert abs(result - float(answer)) < 1e-9, f"answer {answer} != {result}"


README = """\
# Bundled trajectories

This directory is the small default dataset that ships with srl-swe. It was written by the srl-swe project
itself (no third-party data) and is licensed together with the project (MIT). Do not edit the files by
hand: they are generated by `python scripts/make_bundled_trajectories.py`. Reruns are byte-identical on the
same Python/pytest/git versions (tracebacks and pytest output differ slightly between versions).

## `swe/bundled.jsonl`

{n_swe} expert trajectories in the SWE-smith chat-transcript format, one JSON object per line:
`{{"instance_id", "repo", "problem_statement", "resolved", "messages"}}`. `messages` starts with a `system`
message describing the tools (`bash`, `str_replace_editor`, `submit`) and a `user` message with the task in
`<pr_description>...</pr_description>`, then alternates `assistant` and `user`. Each assistant message is a
short thought followed by exactly one call such as

    <function=bash>
    <parameter=command>python -m pytest -q tests</parameter>
    </function>

and each user message is `OBSERVATION:` plus the output. The repositories are tiny projects written for this
purpose; the generator runs every action for real inside a temporary git checkout (shown as `/testbed`)
and checks that the tests fail before the fix and pass at `submit`, whose observation is the final diff.

## `math/bundled.jsonl`

{n_math} grade-school word problems: `{{"id", "problem", "steps", "answer"}}`, where `steps` is a list of
short solution steps with explicit arithmetic (each one checked by the generator) and `answer` is the final
number as a string.
"""


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="srl-bundled-") as tmp:
        tmp_path = Path(os.path.realpath(tmp))  # realpath so the /testbed rewrite also matches resolved paths
        swe = [build_trajectory(task, tmp_path) for task in SWE_TASKS]
    math = []
    for i, (problem, steps, answer, known) in enumerate(MATH_PROBLEMS, 1):
        check_math(problem, steps, answer, known)
        math.append({"id": f"srl-bundled-math-{i:03d}", "problem": problem, "steps": steps, "answer": answer})
    write_jsonl(OUT / "swe" / "bundled.jsonl", swe)
    write_jsonl(OUT / "math" / "bundled.jsonl", math)
    (OUT / "README.md").write_text(README.format(n_swe=len(swe), n_math=len(math)), encoding="utf-8")
    for row in swe:
        print(f"{row['instance_id']}: {(len(row['messages']) - 2) // 2} actions")
    print(f"wrote {len(swe)} SWE trajectories and {len(math)} math problems to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
