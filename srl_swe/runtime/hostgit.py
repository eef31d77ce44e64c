"""Git on the host, through GitPython: the cached task sources and task bases, and the diffs read from them.

Who uses it: :mod:`srl_swe.swebench.local_env` (an sdist committed as a fresh repository, a generated task's bug
committed on top of a clone of it, the fix read back as ``git diff HEAD HEAD~1``), which feeds the local runtime's
copies, the task images and the task generator. Git *inside* a sandbox (the agent's ``git diff``, the eval
script's ``git apply``, the image build's commit) stays a shell command run there: it must be the sandbox's git.

Commits go through ``git commit`` (``repo.git.commit``) rather than GitPython's own object writer: a commit id here
must equal the one the image build makes with the container's git from the same tree, identity, date and message
(``COMMIT_ENV``; the build checks it), and the committed tasks record those ids. Every failure becomes a
:class:`SandboxError` that names the step and carries git's own message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import git

from srl_swe.runtime.base import SandboxError

_WHO = {"NAME": "srl-swe", "EMAIL": "srl-swe@localhost", "DATE": "2000-01-01T00:00:00+0000"}
# The fixed author and committer (name, e-mail, date): the same tree and message give the same commit id anywhere.
COMMIT_ENV: Mapping[str, str] = {f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER")
                                 for key, value in _WHO.items()}
# The host's git config must not change what is staged or committed (line endings, global excludes, signing,
# identity, hooks), so the user's and the system's config files are not read at all; --no-verify skips the hooks
# of any other kind, and the two settings are given again in case a git ignores the variables.
ISOLATED: Mapping[str, str] = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
_COMMIT_CONFIG = ["core.autocrlf=false", "commit.gpgsign=false"]


@contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except git.GitCommandError as exc:
        tail = "\n".join(f"{exc.stdout or ''}\n{exc.stderr or ''}".strip().splitlines()[-15:])
        command = exc.command if isinstance(exc.command, str) else " ".join(map(str, exc.command))
        raise SandboxError(f"{what}: `{command}` failed "
                           f"(exit {exc.status})\n{tail}") from exc
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError) as exc:
        raise SandboxError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _isolated(repo: git.Repo) -> git.Repo:
    repo.git.update_environment(**ISOLATED)
    return repo


def init(path: Path, what: str) -> git.Repo:
    """A new repository (branch ``main``) in the existing folder ``path``."""
    with _step(what):
        return _isolated(git.Repo.init(path, initial_branch="main", env=ISOLATED))


def clone(source: Path, target: Path, what: str, *, shared: bool = False) -> git.Repo:
    """Clone ``source`` into ``target``: ``shared`` borrows its objects (a throwaway clone), otherwise the objects
    are copied, not hard-linked (a cached clone outlives nothing it shares)."""
    with _step(what):
        how = {"shared": True} if shared else {"no_hardlinks": True}
        return _isolated(git.Repo.clone_from(str(source), str(target), env=dict(ISOLATED), **how))


def apply(repo: git.Repo, patch: Path, what: str) -> None:
    with _step(what):
        repo.git.apply("--whitespace=nowarn", str(patch))


def commit_all(repo: git.Repo, message: str, what: str) -> str:
    """Stage the whole tree and commit it with the fixed identity and date; returns the commit id."""
    with _step(what), repo.git.custom_environment(**COMMIT_ENV):
        repo.git(c=_COMMIT_CONFIG).add("-A")
        repo.git(c=_COMMIT_CONFIG).commit("-q", "--no-verify", "-m", message)
        return repo.head.commit.hexsha


def diff(repo: git.Repo, a: str, b: str, what: str) -> str:
    """``git diff a b`` exactly as git prints it (paths unquoted, no colour or external diff, the final newline
    kept)."""
    with _step(what):
        return repo.git(c="core.quotepath=false").diff("--no-color", "--no-ext-diff", a, b,
                                                      strip_newline_in_stdout=False)


def head(path: Path, what: str = "reading the source commit") -> str:
    """The commit id of ``HEAD`` in the repository at ``path``."""
    with _step(what):
        return git.Repo(path).head.commit.hexsha
