"""A generated task's base: the clean sdist repository with the task's bug committed on top, deterministically."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from srl_swe.runtime.base import SandboxError
from srl_swe.swebench.local_env import prepare_source, prepare_task_source, source_commit
from srl_swe.swebench.specs import SPECS
from srl_swe.taskgen.run import bug_patch

SPEC = SPECS[("marshmallow-code/marshmallow", "3.13")]
FILE = "src/marshmallow/validate.py"


def _bug(clean: Path) -> str:
    before = (clean / FILE).read_text()
    assert before.count("if self.min is not None and length < self.min:") == 1
    after = before.replace("if self.min is not None and length < self.min:",
                           "if self.min is not None and length <= self.min:")
    return bug_patch(FILE, before, after)


def test_task_base_is_the_bug_committed_on_the_clean_source():
    clean = prepare_source(SPEC)
    patch = _bug(clean)
    repo = prepare_task_source(SPEC, patch)
    base = source_commit(repo)
    assert "length <= self.min" in (repo / FILE).read_text()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True, check=True).stdout  # noqa
    assert git("rev-parse", "HEAD~1").strip() == source_commit(clean)  # one commit on top of the clean one
    assert git("status", "--porcelain") == ""  # nothing stray (the applied patch file is gone)
    assert git("diff", "HEAD~1", "HEAD", "--stat").strip().startswith(FILE)
    # cached, and rebuilt from scratch it has the very same commit id (base_commit is portable)
    assert prepare_task_source(SPEC, patch) == repo
    shutil.rmtree(repo)
    repo.with_name(repo.name + ".ok").unlink()
    assert source_commit(prepare_task_source(SPEC, patch)) == base
    # the fix is the reverse diff: it applies to the task base and gives the clean file back
    subprocess.run(["git", "apply", "-R", "--check", "-"], input=patch, text=True, cwd=repo, check=True)


def test_a_setup_patch_that_does_not_apply_is_refused_by_name():
    bad = bug_patch(FILE, "no such\ncontent\n", "other\ncontent\n")
    with pytest.raises(SandboxError, match=r"committing the task base of marshmallow \(setup patch [0-9a-f]{16}\)"):
        prepare_task_source(SPEC, bad)
