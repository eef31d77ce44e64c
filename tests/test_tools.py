"""The agent's tools on a real LocalRuntime over a small git repository (and the editor on Docker).

Expected observations are SWE-agent's editor messages, written out in full: a drift in wording or numbering
would change what the policy sees compared with its training transcripts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from srl_swe.runtime.local import LocalRuntime
from srl_swe.schema import ToolCall
from srl_swe.tools import NO_OUTPUT, ToolBox

SRC = "def f(x):\n\treturn x + 1\n\n\ndef g(x):\n    return x + 1\n"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg" / "sub" / "deep").mkdir(parents=True)
    (root / "m.py").write_text(SRC)
    (root / "pkg" / "a.txt").write_text("a\n")
    (root / "pkg" / "sub" / "b.txt").write_text("b\n")
    (root / "pkg" / "sub" / "deep" / "c.txt").write_text("c\n")
    (root / ".hidden").write_text("h\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=root, check=True)
    return root


@pytest.fixture()
def box(repo: Path):
    with LocalRuntime(repo, timeout=10) as rt:
        yield ToolBox(rt)


def edit(box: ToolBox, **kw: object) -> str:
    out = box.run(ToolCall.make("str_replace_editor", kw))
    assert not out.done and out.patch is None
    return out.observation


def cat(box: ToolBox, path: str) -> str:
    return box.runtime.read_file(path)


def test_view_file_and_ranges(box: ToolBox):
    head = "Here's the result of running `cat -n` on /testbed/m.py:\n"
    assert edit(box, command="view", path="/testbed/m.py") == head + (
        "     1\tdef f(x):\n     2\t        return x + 1\n     3\t\n     4\t\n     5\tdef g(x):\n"
        "     6\t    return x + 1\n     7\t\n")
    assert edit(box, command="view", path="/testbed/m.py", view_range="[5, 6]") == head + (
        "     5\tdef g(x):\n     6\t    return x + 1\n")
    assert edit(box, command="view", path="/testbed/m.py", view_range=[6, -1]) == head + (
        "     6\t    return x + 1\n     7\t\n")
    assert edit(box, command="view", path="/testbed/m.py", view_range="[0, 3]") == (
        "Invalid `view_range`: [0, 3]. Its first element `0` should be within the range of lines of the file: [1, 7]")
    assert edit(box, command="view", path="/testbed/m.py", view_range="[2, 30]") == (
        "Invalid `view_range`: [2, 30]. Its second element `30` should be smaller than the number of lines in the "
        "file: `7`")
    assert edit(box, command="view", path="/testbed/m.py", view_range="[4, 2]") == (
        "Invalid `view_range`: [4, 2]. Its second element `2` should be larger or equal than its first `4`")
    assert edit(box, command="view", path="/testbed/m.py", view_range="lines 2-3") == (
        "Invalid `view_range`. It should be a list of two integers.")
    assert edit(box, command="view", path="/testbed/m.py", view_range="5 6").endswith("     6\t    return x + 1\n")


def test_view_directory_two_levels_without_hidden(box: ToolBox):
    assert edit(box, command="view", path="/testbed") == (
        "Here's the files and directories up to 2 levels deep in /testbed, excluding hidden items:\n"
        "/testbed\n/testbed/m.py\n/testbed/pkg\n/testbed/pkg/a.txt\n/testbed/pkg/sub\n")
    assert edit(box, command="view", path="/testbed/pkg/") == (
        "Here's the files and directories up to 2 levels deep in /testbed/pkg, excluding hidden items:\n"
        "/testbed/pkg\n/testbed/pkg/a.txt\n/testbed/pkg/sub\n/testbed/pkg/sub/b.txt\n/testbed/pkg/sub/deep\n")
    assert edit(box, command="view", path="/testbed/pkg", view_range="[1, 2]") == (
        "The `view_range` parameter is not allowed when `path` points to a directory.")
    assert edit(box, command="str_replace", path="/testbed/pkg", old_str="a") == (
        "The path /testbed/pkg is a directory and only the `view` command can be used on directories")


def test_paths_must_be_absolute_and_exist(box: ToolBox):
    assert edit(box, command="view", path="m.py") == (
        "The path m.py is not an absolute path, it should start with `/`. Maybe you meant /testbed/m.py?")
    assert edit(box, command="view", path="/testbed/nope.py") == (
        "The path /testbed/nope.py does not exist. Please provide a valid path.")
    assert edit(box, command="delete", path="/testbed/m.py") == (
        'Unrecognized command delete. The allowed commands for the str_replace_editor tool are: "view", "create", '
        '"str_replace", "insert", "undo_edit"')


def test_create(box: ToolBox):
    assert edit(box, command="create", path="/testbed/pkg/new.py", file_text="x = 1\n") == (
        "File created successfully at: /testbed/pkg/new.py")
    assert cat(box, "/testbed/pkg/new.py") == "x = 1\n"
    assert edit(box, command="create", path="/testbed/m.py", file_text="boom") == (
        "File already exists at: /testbed/m.py. Cannot overwrite files using command `create`.")
    assert cat(box, "/testbed/m.py") == SRC
    assert edit(box, command="create", path="/testbed/no/dir/x.py", file_text="") == (
        "The parent directory /testbed/no/dir does not exist. Please create it first.")
    assert edit(box, command="create", path="/testbed/y.py") == "Parameter `file_text` is required for command: create"


def test_str_replace_snippet_and_errors(box: ToolBox):
    assert edit(box, command="str_replace", path="/testbed/m.py", old_str="return x + 1", new_str="return 0") == (
        "No replacement was performed. Multiple occurrences of old_str `return x + 1` in lines [2, 6]. "
        "Please ensure it is unique")
    assert edit(box, command="str_replace", path="/testbed/m.py", old_str="return y", new_str="z") == (
        "No replacement was performed, old_str `return y` did not appear verbatim in /testbed/m.py.")
    assert edit(box, command="str_replace", path="/testbed/m.py", old_str="def g", new_str="def g") == (
        "No replacement was performed, old_str `def g` is the same as new_str `def g`.")
    assert cat(box, "/testbed/m.py") == SRC
    out = edit(box, command="str_replace", path="/testbed/m.py", old_str="def g(x):\n    return x + 1",
               new_str="def g(x):\n    y = x * 2\n    return y")
    assert out == (
        "The file /testbed/m.py has been edited. Here's the result of running `cat -n` on a snippet of "
        "/testbed/m.py:\n     1\tdef f(x):\n     2\t        return x + 1\n     3\t\n     4\t\n     5\tdef g(x):\n"
        "     6\t    y = x * 2\n     7\t    return y\n"
        "Review the changes and make sure they are as expected. Edit the file again if necessary.")
    # A verbatim match leaves the tab on line 2 alone.
    assert cat(box, "/testbed/m.py") == "def f(x):\n\treturn x + 1\n\n\ndef g(x):\n    y = x * 2\n    return y\n"
    assert edit(box, command="str_replace", path="/testbed/m.py") == (
        "Parameter `old_str` is required for command: str_replace")


def test_str_replace_matches_tabs_as_shown(box: ToolBox):
    # The view shows the tab as 8 spaces; a model copying that must still match (SWE-agent expands tabs).
    out = edit(box, command="str_replace", path="/testbed/m.py", old_str="        return x + 1",
               new_str="        return x")
    assert out.startswith("The file /testbed/m.py has been edited.")
    assert cat(box, "/testbed/m.py").startswith("def f(x):\n        return x\n")
    # new_str omitted: the match is deleted.
    edit(box, command="str_replace", path="/testbed/m.py", old_str="def g(x):\n")
    assert "def g" not in cat(box, "/testbed/m.py")


def test_insert_and_undo(box: ToolBox):
    out = edit(box, command="insert", path="/testbed/m.py", insert_line="5", new_str='    """Add one."""')
    assert out == (
        "The file /testbed/m.py has been edited. Here's the result of running `cat -n` on a snippet of the edited "
        'file:\n     2\t        return x + 1\n     3\t\n     4\t\n     5\tdef g(x):\n     6\t    """Add one."""\n'
        "     7\t    return x + 1\n     8\t\n"
        "Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). "
        "Edit the file again if necessary.")
    inserted = "def f(x):\n\treturn x + 1\n\n\ndef g(x):\n    \"\"\"Add one.\"\"\"\n    return x + 1\n"
    assert cat(box, "/testbed/m.py") == inserted
    edit(box, command="insert", path="/testbed/m.py", insert_line="0", new_str="import os")
    assert cat(box, "/testbed/m.py") == "import os\n" + inserted
    assert edit(box, command="insert", path="/testbed/m.py", insert_line="99", new_str="x") == (
        "Invalid `insert_line` parameter: 99. It should be within the range of lines of the file: [0, 9]")
    assert edit(box, command="insert", path="/testbed/m.py", insert_line="two", new_str="x") == (
        "Invalid `insert_line` parameter: 'two'. It should be an integer.")
    assert edit(box, command="insert", path="/testbed/m.py", new_str="x") == (
        "Parameter `insert_line` is required for command: insert")
    assert edit(box, command="insert", path="/testbed/m.py", insert_line="1") == (
        "Parameter `new_str` is required for command: insert")
    out = edit(box, command="undo_edit", path="/testbed/m.py")
    assert out.startswith("Last edit to /testbed/m.py undone successfully. Here's the result of running `cat -n` "
                          "on /testbed/m.py:\n     1\tdef f(x):\n")
    assert cat(box, "/testbed/m.py") == inserted
    edit(box, command="undo_edit", path="/testbed/m.py")
    assert cat(box, "/testbed/m.py") == SRC
    assert edit(box, command="undo_edit", path="/testbed/m.py") == "No edit history found for /testbed/m.py."
    assert edit(box, command="undo_edit", path="/testbed/pkg/a.txt") == "No edit history found for /testbed/pkg/a.txt."


def test_long_file_view_is_clipped(box: ToolBox):
    box.runtime.write_file("/testbed/big.txt", "".join(f"line {i}\n" for i in range(5000)))
    out = edit(box, command="view", path="/testbed/big.txt")
    assert "<response clipped><NOTE>To save on context only part of this file has been shown to you." in out
    assert len(out) < 16_000 + 5000 * 8  # clipped before numbering: far fewer than 5000 numbered lines
    assert "  4999\t" not in out


def test_bash_outputs_exit_codes_and_timeout(repo: Path):
    with LocalRuntime(repo) as rt:
        box = ToolBox(rt, timeout=1)
        assert box.run(ToolCall.bash("pwd && ls pkg")).observation == "/testbed\na.txt\nsub\n"
        assert box.run(ToolCall.bash("true")).observation == NO_OUTPUT
        assert box.run(ToolCall.bash("false")).observation == "[The command exited with code 1.]"
        assert box.run(ToolCall.bash("echo oops >&2; exit 3")).observation == "oops\n[The command exited with code 3.]"
        out = box.run(ToolCall.bash("sleep 30"))
        assert out.observation == ("The command 'sleep 30' was cancelled because it took more than 1 seconds. "
                                   "Please try a different command that completes more quickly.")
        assert not out.done
        assert box.run(ToolCall.bash("echo still here")).observation == "still here\n"  # the tools carry on
        out = box.run(ToolCall.bash("head -c 200000 /dev/zero | tr '\\0' x"))
        assert out.observation.startswith("The output of your last command was too long.")


def test_bad_calls_are_observations(box: ToolBox):
    cases = {
        ToolCall.make("python", code="1"): "Unknown tool `python`. The available tools are: bash, str_replace_editor, "
        "submit.",
        ToolCall.make("bash"): "Parameter `command` is required for the `bash` tool.",
        ToolCall.make("bash", cmd="ls"): "Unexpected argument(s) for `bash`: cmd. Allowed arguments: command.",
        ToolCall.make("str_replace_editor", command="view"): "Parameter `path` is required for the "
        "`str_replace_editor` tool.",
        ToolCall.make("submit", force="yes"): "Unexpected argument(s) for `submit`: force. Allowed arguments: none.",
    }
    for call, expected in cases.items():
        out = box.run(call)
        assert (out.observation, out.done, out.patch) == (expected, False, None)


def test_submit_patch_applies_to_a_clean_checkout(box: ToolBox, repo: Path, tmp_path: Path):
    assert box.run(ToolCall.make("submit")).patch == ""  # nothing changed: an empty patch, still done
    edit(box, command="str_replace", path="/testbed/m.py", old_str="return x + 1\n\n\n", new_str="return x + 2\n\n\n")
    edit(box, command="create", path="/testbed/pkg/new.py", file_text="NEW = 1\n")
    box.run(ToolCall.bash("mkdir -p pkg/__pycache__ && echo junk > pkg/__pycache__/m.cpython-311.pyc && "
                          "printf '\\000\\001\\002\\377' > data.bin && rm pkg/a.txt"))
    out = box.run(ToolCall.make("submit"))
    assert out.done and out.patch == out.observation
    patch = out.patch
    assert "diff --git a/m.py b/m.py" in patch and "+\treturn x + 2" in patch
    assert "new file mode 100644" in patch and "+NEW = 1" in patch
    assert "deleted file mode 100644" in patch and "GIT binary patch" in patch
    assert "__pycache__" not in patch and "pyc" not in patch
    patch.encode("ascii")  # binary content travels as base85 text
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "apply", "-"], input=patch.encode(), cwd=clone, check=True)
    assert (clone / "m.py").read_text() == cat(box, "/testbed/m.py")
    assert (clone / "data.bin").read_bytes() == b"\x00\x01\x02\xff"
    assert not (clone / "pkg" / "a.txt").exists()


def test_bash_sentinel_submits(box: ToolBox):
    edit(box, command="create", path="/testbed/z.py", file_text="z = 0\n")
    out = box.run(ToolCall.bash("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git add -A && git diff --cached"))
    assert out.done and "+z = 0" in out.patch


@pytest.mark.slow
def test_editor_on_docker(docker_client):
    from srl_swe.runtime.docker import DockerRuntime
    from srl_swe.runtime.images import ensure_base_image

    with DockerRuntime(ensure_base_image(docker_client), client=docker_client, timeout=20) as rt:
        box = ToolBox(rt)
        rt.execute("mkdir -p /testbed/pkg && printf 'a = 1\\nb = 2\\n' > /testbed/pkg/m.py")
        assert edit(box, command="view", path="/testbed") == (
            "Here's the files and directories up to 2 levels deep in /testbed, excluding hidden items:\n"
            "/testbed\n/testbed/pkg\n/testbed/pkg/m.py\n")
        out = edit(box, command="str_replace", path="/testbed/pkg/m.py", old_str="b = 2", new_str="b = 3")
        assert out.endswith("     1\ta = 1\n     2\tb = 3\nReview the changes and make sure they are as "
                            "expected. Edit the file again if necessary.")
        assert box.run(ToolCall.bash("cat /testbed/pkg/m.py")).observation == "a = 1\nb = 3\n"
        edit(box, command="undo_edit", path="/testbed/pkg/m.py")
        assert rt.read_file("/testbed/pkg/m.py") == "a = 1\nb = 2\n"
        assert edit(box, command="create", path="/etc/hostname", file_text="x") == (
            "File already exists at: /etc/hostname. Cannot overwrite files using command `create`.")
