"""Host-side git through GitPython (srl_swe.runtime.hostgit): the same commit ids as the image build's shell git,
whatever the host's git config says, exact diffs, and failures that name the step."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from srl_swe.runtime import hostgit
from srl_swe.runtime.base import SandboxError

FILES = {"pkg/__init__.py": "x = 1\n", "pkg/naïve.py": "def f():\n    return 'é'\n", "README": "no newline at end",
         "win.txt": "crlf\r\nlines\r\n", "build.log": "ignored by the host's global excludes\n"}


def _tree(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text.encode("utf-8"))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    return root


def _shell_commit(root: Path, message: str) -> str:
    """What the task image's Dockerfile runs (srl_swe.swebench.images): git in a shell with COMMIT_ENV assigned."""
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in hostgit.COMMIT_ENV.items())
    script = (f"git -c init.defaultBranch=main init -q && git add -A && {assigns} git -c core.autocrlf=false "
              f"-c commit.gpgsign=false commit -q --no-verify -m {shlex.quote(message)} && git rev-parse HEAD")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def hostile_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose git signs commits, rewrites line endings, ignores *.log files and runs a failing hook."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    config = tmp_path / "gitconfig"
    (tmp_path / "excludes").write_text("*.log\n")
    config.write_text(f"[commit]\n\tgpgsign = true\n[core]\n\tautocrlf = true\n\thooksPath = {hooks}\n"
                      f"\texcludesFile = {tmp_path / 'excludes'}\n"
                      "[user]\n\tname = Someone Else\n\temail = else@example.invalid\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))


def test_commit_ids_match_the_image_builds_shell_git(tmp_path: Path, hostile_config: None):
    expected = _shell_commit(_tree(tmp_path / "shell"), "pkg 1.0 (PyPI sdist)")
    with hostgit.init(_tree(tmp_path / "host"), "committing") as repo:
        got = hostgit.commit_all(repo, "pkg 1.0 (PyPI sdist)", "committing")
        assert repo.active_branch.name == "main"
    assert got == expected and len(got) == 40
    assert hostgit.head(tmp_path / "host") == expected
    with hostgit.clone(tmp_path / "host", tmp_path / "copy", "copying") as copy:
        assert sorted(b.path for b in copy.head.commit.tree.traverse() if b.type == "blob") == sorted(
            [*FILES, "run.sh"])  # build.log too: the host's excludes are not read
    assert (tmp_path / "copy" / "win.txt").read_bytes() == FILES["win.txt"].encode()  # stored as is


def test_clone_apply_commit_and_the_exact_diff_back(tmp_path: Path):
    with hostgit.init(_tree(tmp_path / "clean"), "committing") as clean:
        first = hostgit.commit_all(clean, "base", "committing")
    for shared in (False, True):
        target = tmp_path / f"clone-{shared}"
        with hostgit.clone(tmp_path / "clean", target, "copying", shared=shared) as repo:
            assert repo.head.commit.hexsha == first
            (target / "pkg" / "naïve.py").write_text("def f():\n    return 'è'\n", encoding="utf-8")
            (target / "README").write_text("now with a newline\n")
            second = hostgit.commit_all(repo, "bug", "committing")
            fix = hostgit.diff(repo, "HEAD", "HEAD~1", "diffing")
            assert second != first and repo.head.commit.parents[0].hexsha == first
            # unquoted non-ASCII path, the no-newline marker, the final newline kept
            assert "diff --git a/pkg/naïve.py b/pkg/naïve.py\n" in fix and "+    return 'é'\n" in fix
            assert "\\ No newline at end of file\n" in fix and fix.endswith("\n")
            # the diff git prints, byte for byte
            cli = subprocess.run(["git", "-c", "core.quotepath=false", "diff", "--no-color", "HEAD", "HEAD~1"],
                                 cwd=target, capture_output=True, text=True, check=True).stdout
            assert fix == cli
            patch = Path(repo.git_dir) / "fix.diff"
            patch.write_text(fix, encoding="utf-8")
            hostgit.apply(repo, patch, "applying the fix")
            assert (target / "pkg" / "naïve.py").read_text(encoding="utf-8") == FILES["pkg/naïve.py"]


def test_failures_name_the_step_and_carry_gits_message(tmp_path: Path):
    with hostgit.init(_tree(tmp_path / "repo"), "committing") as repo:
        hostgit.commit_all(repo, "base", "committing")
        bad = tmp_path / "bad.diff"
        bad.write_text("diff --git a/nope b/nope\n--- a/nope\n+++ b/nope\n@@ -1 +1 @@\n-a\n+b\n")
        with pytest.raises(SandboxError, match=r"(?s)applying the setup patch: `git apply .*` failed \(exit 1\)"
                                               r".*nope: No such file"):
            hostgit.apply(repo, bad, "applying the setup patch")
        with pytest.raises(SandboxError, match=r"diffing the base: `git .*diff.*` failed \(exit 128\)"):
            hostgit.diff(repo, "HEAD", "HEAD~5", "diffing the base")
    (tmp_path / "plain").mkdir()
    with pytest.raises(SandboxError, match="reading the source commit: InvalidGitRepositoryError"):
        hostgit.head(tmp_path / "plain")
    with pytest.raises(SandboxError, match=r"copying the clean source: `git clone .*` failed"):
        hostgit.clone(tmp_path / "missing", tmp_path / "copy", "copying the clean source")
