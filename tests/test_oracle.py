"""Oracle-file mode: search/replace edits <-> git patches, checked with real ``git apply`` on the real sources
of the two marshmallow tasks (their PyPI sdists), and predictions from a real (tiny, random) model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srl_swe.errors import ActionParseError
from srl_swe.eval import oracle
from srl_swe.eval.patches import (
    Edit,
    EditError,
    apply_edits,
    edits_from_patch,
    make_patch,
    parse_edits,
    render_edits,
)
from srl_swe.swebench.instance import SWEInstance

# The PyPI release each task's base commit belongs to (its sdist has the tests and the files the patches touch).
SDISTS = {"marshmallow-code__marshmallow-1359": "3.0.0", "marshmallow-code__marshmallow-1867": "3.13.0"}
TASKS = sorted(SDISTS)


def _git(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, input=stdin,
                          text=True, capture_output=True, check=False)


def _git_repo(path: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    _git(path, "init", "-q")
    _git(path, "add", "-A")
    assert _git(path, "commit", "-qm", "base").returncode == 0
    return path


def _apply(repo: Path, patch: str) -> None:
    check = _git(repo, "apply", "--check", "-", stdin=patch)
    assert check.returncode == 0, f"git apply --check rejected the patch: {check.stderr}\n{patch}"
    assert _git(repo, "apply", "-", stdin=patch).returncode == 0


@pytest.fixture(scope="session")
def instances(local_tasks: Path) -> dict[str, SWEInstance]:
    return {t: SWEInstance.from_record(json.loads((local_tasks / t / "instance.json").read_text())) for t in TASKS}


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each task's source tree (the sdist, downloaded once per session), read-only: tests copy it."""
    root = tmp_path_factory.mktemp("sdists")
    out = {}
    for task, version in SDISTS.items():
        res = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                              f"marshmallow=={version}", "-d", str(root)], capture_output=True, text=True, check=False)
        assert res.returncode == 0, f"pip download marshmallow=={version} failed (needs PyPI): {res.stderr[-500:]}"
        with tarfile.open(root / f"marshmallow-{version}.tar.gz") as tar:
            # The "data" filter refuses paths outside the target; Pythons without it (< 3.10.12) extract as is.
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root / task, **kwargs)
        out[task] = root / task / f"marshmallow-{version}"
    return out


def _reader(src: Path):
    return lambda path: (src / path).read_text()


# --- the gold patches of the real tasks ------------------------------------------------------------------------

@pytest.mark.shared_data
def test_oracle_files_are_the_gold_patch_paths(instances):
    assert oracle.oracle_files(instances[TASKS[0]]) == ["src/marshmallow/fields.py"]
    assert oracle.oracle_files(instances[TASKS[1]]) == ["src/marshmallow/fields.py", "src/marshmallow/utils.py"]
    with pytest.raises(ValueError, match="no gold patch"):
        oracle.oracle_files(SWEInstance("x", "o/r", "abc", "issue"))


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("task", TASKS)
def test_gold_patch_round_trips_through_edits(task, instances, sources, tmp_path):
    inst, src = instances[task], sources[task]
    files = oracle.read_oracle_files(inst, _reader(src))
    answer = oracle.expert_answer(inst, files)
    edits = parse_edits(f"<think>The format is wrong there.</think>\n{answer}")
    assert edits == edits_from_patch(inst.patch, files)
    assert [e.path for e in edits] == [pf.split(" b/")[0][len("diff --git a/"):]
                                       for pf in inst.patch.splitlines() if pf.startswith("diff --git")]
    patch = make_patch(files, apply_edits(files, edits))
    gold_repo = tmp_path / "gold"
    ours_repo = tmp_path / "ours"
    for repo, p in ((gold_repo, inst.patch), (ours_repo, patch)):
        shutil.copytree(src, repo)
        _git_repo(repo, {})
        _apply(repo, p)
    changed = [_git(r, "status", "--porcelain").stdout for r in (gold_repo, ours_repo)]
    assert changed[0] == changed[1] and changed[0].count("\n") == len(files)
    for path in files:
        assert (ours_repo / path).read_text() == (gold_repo / path).read_text() != (src / path).read_text()


@pytest.mark.slow
@pytest.mark.shared_data
def test_prompt_holds_the_issue_and_every_oracle_file(instances, sources):
    inst = instances[TASKS[1]]
    files = oracle.read_oracle_files(inst, _reader(sources[TASKS[1]]))
    system, user = oracle.build_prompt(inst, files)
    assert system["role"] == "system" and user["role"] == "user"
    assert all(marker in system["content"] for marker in ("<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE", "###"))
    assert inst.problem_statement.strip() in user["content"]
    for path, content in files.items():
        assert f"### {path}\n{content}--- END FILE ---" in user["content"]
    hinted = instances[TASKS[0]]  # hints are discussion after the issue: SWE-bench prompts leave them out
    assert hinted.hints_text and hinted.hints_text[:60] not in oracle.build_prompt(hinted, {})[1]["content"]
    # A file the patch creates is listed as not existing yet.
    _, new_user = oracle.build_prompt(inst, {"src/new.py": None})
    assert "### src/new.py\n(this file does not exist yet)" in new_user["content"]


@pytest.mark.slow
@pytest.mark.shared_data
def test_prediction_records_from_answers(instances, sources):
    inst = instances[TASKS[0]]
    files = oracle.read_oracle_files(inst, _reader(sources[TASKS[0]]))
    good = oracle.prediction_from_output(inst, files, oracle.expert_answer(inst, files), "m").to_dict()
    assert good["error"] is None and good["n_edits"] == 1 and good["model_name_or_path"] == "m"
    assert "+            or getattr(self.root.opts, self.SCHEMA_OPTS_VAR_NAME)\n" in good["model_patch"]
    wrong = "### src/marshmallow/fields.py\n<<<<<<< SEARCH\nno such line\n=======\nx\n>>>>>>> REPLACE\n"
    bad = oracle.prediction_from_output(inst, files, wrong, "m").to_dict()
    assert bad["model_patch"] == "" and bad["error"].startswith("EditError: src/marshmallow/fields.py")
    assert "'no such line'" in bad["error"]
    noop = "### src/marshmallow/fields.py\n<<<<<<< SEARCH\nimport copy\n=======\nimport copy\n>>>>>>> REPLACE\n"
    assert oracle.prediction_from_output(inst, files, noop, "m").error == "the edits change nothing"
    assert oracle.prediction_from_output(inst, files, "I give up.", "m").error == \
        "no SEARCH/REPLACE edits in the output"
    cut = oracle.prediction_from_output(inst, files, "<think>so the bug", "m").to_dict()
    assert cut["model_patch"] == "" and cut["error"].startswith("ActionParseError")


@pytest.mark.slow
@pytest.mark.shared_data
def test_oracle_predict_with_a_real_tiny_model(instances, sources, tmp_path):
    pytest.importorskip("torch")
    from srl_swe.models.generation import TransformersGenerator
    from srl_swe.models.tiny import make_tiny_qwen2

    inst, read = instances[TASKS[0]], _reader(sources[TASKS[0]])
    prompt = oracle.build_prompt(inst, oracle.read_oracle_files(inst, read))
    model = make_tiny_qwen2(tmp_path / "tiny", texts=[m["content"] for m in prompt])
    generator = TransformersGenerator.from_spec(str(model), batch_size=1, progress=False)
    rec = oracle.oracle_predict(inst, generator, read_file=read, max_new_tokens=16).to_dict()
    assert rec["instance_id"] == inst.instance_id and rec["model_name_or_path"] == str(model)
    assert rec["files"] == ["src/marshmallow/fields.py"] and rec["mode"] == "oracle-file"
    assert isinstance(rec["raw_output"], str) and isinstance(rec["model_patch"], str)
    # Random weights write no valid edit: the failure is recorded, not raised.
    assert rec["model_patch"] == "" and rec["error"]
    again = oracle.oracle_predict(inst, generator, read_file=read, max_new_tokens=16).to_dict()
    assert rec == again  # greedy: repeatable


# --- parsing ----------------------------------------------------------------------------------------------------

TWO_FILES = """<think>
Maybe:
### a.py
<<<<<<< SEARCH
x = 1
=======
x = 99
>>>>>>> REPLACE
</think>
The bug is in `f`. Here are the edits.

```python
### a.py
<<<<<<< SEARCH
def f():
    return 1
=======
def f():
    return 2
>>>>>>> REPLACE
```

```python
### ./pkg/b.py
<<<<<<< SEARCH
import os

=======
>>>>>>> REPLACE
<<<<<<< SEARCH
y = 2
=======
y = 3
z = 4
>>>>>>> REPLACE
```
"""


def test_parse_fenced_blocks_over_several_files_ignoring_the_monologue():
    assert parse_edits(TWO_FILES) == [
        Edit("a.py", "def f():\n    return 1\n", "def f():\n    return 2\n"),
        Edit("pkg/b.py", "import os\n\n", ""),
        Edit("pkg/b.py", "y = 2\n", "y = 3\nz = 4\n"),
    ]
    assert parse_edits("No change is needed.") == [] and parse_edits("<think>nothing</think>") == []
    assert parse_edits("### /testbed/a.py\r\n<<<<<<< SEARCH\r\na\r\n=======\r\nb\r\n>>>>>>> REPLACE") == \
        [Edit("a.py", "a\n", "b\n")]


@pytest.mark.parametrize(("text", "reason"), [
    ("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE", "line 1: <<<<<<< SEARCH without a '### path"),
    ("### a.py\n<<<<<<< SEARCH\na\n=======\nb\n", "the block for a.py at line 2 is not closed by '>>>>>>> REPLACE'"),
    ("### a.py\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE",
     "line 4: '>>>>>>> REPLACE' in the block for a.py at line 2, where '=======' was"),
    ("### a.py\n<<<<<<< SEARCH\na\n=======\n<<<<<<< SEARCH\n",
     "line 5: '<<<<<<< SEARCH' in the block for a.py at line 2, where '>>>>>>> REPLACE'"),
    ("### a.py\na\n>>>>>>> REPLACE", "line 3: >>>>>>> REPLACE without a <<<<<<< SEARCH block"),
    ("<think>still thinking", "never closed"),
    (None, "output must be a string"),
])
def test_malformed_output_says_what_is_wrong(text, reason):
    with pytest.raises(ActionParseError) as info:
        parse_edits(text)
    assert reason in str(info.value)


def test_render_refuses_a_marker_line_inside_a_block():
    with pytest.raises(ValueError, match="'=======' cannot be written"):
        render_edits([Edit("README.rst", "Title\n=======\n", "Title!\n=======\n")])


# --- applying ---------------------------------------------------------------------------------------------------

FILES = {"a.py": "def f():\n    return 1\n\n\ndef g():\n    return 1\n", "b.py": "x = 1   \ny = 2\n"}


def test_search_text_missing_ambiguous_or_outside_the_files_is_an_edit_error():
    with pytest.raises(EditError, match=r"a\.py: SEARCH text not found in the file \(its first line: 'def h\(\):'\)"):
        apply_edits(FILES, [Edit("a.py", "def h():\n    return 1\n", "")])
    with pytest.raises(EditError, match=r"a\.py: SEARCH text found 2 times \(its first line: '    return 1'\)"):
        apply_edits(FILES, [Edit("a.py", "    return 1\n", "    return 2\n")])
    with pytest.raises(EditError, match=r"c\.py: not one of the files shown \(a\.py, b\.py\)"):
        apply_edits(FILES, [Edit("c.py", "", "print()\n")])
    with pytest.raises(EditError, match="empty SEARCH part, but the file is not empty"):
        apply_edits(FILES, [Edit("a.py", "", "x\n")])
    # Half a line is not a match: SEARCH is whole lines.
    with pytest.raises(EditError, match="not found"):
        apply_edits(FILES, [Edit("b.py", "= 2\n", "= 3\n")])


def test_edits_apply_in_order_with_a_whitespace_tolerant_fallback():
    out = apply_edits(FILES, [Edit("a.py", "def g():\n    return 1\n", "def g():\n    return 2\n"),
                              Edit("a.py", "    return 1\n", "    return 0\n"),  # unique once g is changed
                              Edit("b.py", "x = 1\ny = 2  \n", "x = 10\ny = 2\n")])  # trailing blanks differ
    assert out == {"a.py": "def f():\n    return 0\n\n\ndef g():\n    return 2\n", "b.py": "x = 10\ny = 2\n"}
    assert FILES["a.py"].endswith("return 1\n")  # the input is not modified


def test_new_files_and_files_without_a_final_newline(tmp_path):
    files = {"c.py": None, "d.txt": "one\ntwo"}
    out = apply_edits(files, [Edit("c.py", "", "print('hi')\n"), Edit("d.txt", "two\n", "2\n")])
    assert out == {"c.py": "print('hi')\n", "d.txt": "one\n2"}
    with pytest.raises(EditError, match=r"c\.py does not exist yet"):
        apply_edits(files, [Edit("c.py", "x\n", "y\n")])
    repo = _git_repo(tmp_path, {"d.txt": "one\ntwo"})
    patch = make_patch(files, out)
    assert "\\ No newline at end of file\n" in patch and "new file mode 100644\n--- /dev/null\n+++ b/c.py" in patch
    _apply(repo, patch)
    assert (repo / "c.py").read_text() == "print('hi')\n" and (repo / "d.txt").read_text() == "one\n2"


def test_make_patch_is_what_git_applies(tmp_path):
    old = {"keep.py": "a\n", "mod.py": "".join(f"line {i}\n" for i in range(40)), "gone.py": "bye\n",
           "eol.txt": "no newline", "empty.txt": ""}
    new = {**old, "mod.py": old["mod.py"].replace("line 3\n", "LINE 3\n").replace("line 30\n", ""),
           "gone.py": None, "eol.txt": "no newline\n", "new/dir/x.py": "x = 1\n", "empty.txt": "filled\n"}
    repo = _git_repo(tmp_path, {k: v for k, v in old.items() if v is not None})
    patch = make_patch(old, new)
    assert patch.count("diff --git") == 5 and "keep.py" not in patch and make_patch(old, old) == ""
    _apply(repo, patch)
    for path, content in new.items():
        assert (repo / path).exists() == (content is not None)
        assert content is None or (repo / path).read_text() == content
    # git agrees with our hunks: its own diff of the result has the same changed lines.
    ours = sorted(line for line in patch.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    _git(repo, "add", "-A")
    theirs = _git(repo, "diff", "--cached").stdout
    assert ours == sorted(line for line in theirs.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---"))


# --- expert answers from patches --------------------------------------------------------------------------------

def test_edits_from_git_diffs_widen_repeated_context(tmp_path):
    block = "    if x:\n        return None\n    return x\n\n"
    old = "".join(f"def f{i}(x):\n{block}" for i in range(4))
    new = old.replace("def f2(x):\n    if x:\n        return None", "def f2(x):\n    if x:\n        return 0")
    new = new.replace("def f3(x):\n", "def f3(x):\n    x = abs(x)\n")
    repo = _git_repo(tmp_path, {"m.py": old})
    (repo / "m.py").write_text(new)
    for context in ("-U3", "-U0", "-U1"):
        diff = _git(repo, "diff", context).stdout
        edits = edits_from_patch(diff, {"m.py": old})
        assert apply_edits({"m.py": old}, parse_edits(render_edits(edits))) == {"m.py": new}, context
        assert old.count(edits[0].search) == 1 and all(e.search for e in edits), context
    with pytest.raises(ValueError, match="does not match the file"):
        edits_from_patch(_git(repo, "diff").stdout, {"m.py": old.replace("return None", "return -1")})
    with pytest.raises(ValueError, match="not among the files given"):
        edits_from_patch(_git(repo, "diff").stdout, {"other.py": old})


_LINES = st.sampled_from(["a\n", "b\n", "    c\n", "\n", "def f():\n"])


@settings(max_examples=80, deadline=None)
@given(old=st.lists(_LINES, max_size=30), new=st.lists(_LINES, max_size=30))
def test_patch_to_edits_to_patch_is_the_identity(old, new):
    before, after = {"f.py": "".join(old)}, {"f.py": "".join(new)}
    edits = edits_from_patch(make_patch(before, after), before)
    assert apply_edits(before, edits) == after
