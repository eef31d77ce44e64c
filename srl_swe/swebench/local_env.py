"""Task sources and test environments on the host, cached: shared by the image build and the local runtime.

* ``sdists/``: the PyPI sdist of a spec (``pip download --no-deps --no-binary :all:``), checked by sha256.
* ``sources/``: the sdist extracted and committed as a fresh git repository with a fixed author, date and
  message, so the commit id is the same on every machine and every rebuild. Caches that the tests write
  (``__pycache__``, ``.pytest_cache``) are listed in ``.git/info/exclude`` rather than in a committed
  ``.gitignore``: the tree stays the sdist, and ``git status``/``git add -A`` stay clean after a test run.
* ``wheelhouse/``: the spec's pinned test dependencies as wheels, for a target Python (the image's) or the
  host's; images and venvs install from it with ``--no-index``, so both get the very same files.
* ``venvs/``: a venv of the host's Python with the test dependencies, for :class:`LocalEnv`.

Everything is built under a file lock (parallel workers build once) and marked complete by a last-written
``NAME.ok`` file beside it (outside it, so no stray file lands in ``/testbed``); an interrupted build is
redone rather than half-used. Git work here goes through GitPython (:mod:`srl_swe.runtime.hostgit`). The root is
``$SRL_SWE_CACHE`` (default ``~/.cache/srl-swe``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import git

from srl_swe.paths import cache_dir
from srl_swe.runtime import hostgit
from srl_swe.runtime.base import REPO_DIR, SandboxError
from srl_swe.swebench.specs import EnvSpec, SpecError, setup_patch, spec_for

EXCLUDES = "__pycache__/\n*.py[cod]\n.pytest_cache/\n*.egg-info/\n"


def _done(target: Path) -> Path:
    return target.parent / f"{target.name}.ok"


@dataclass(frozen=True)
class LocalEnv:
    """A task's repository (a cached git repo at the base; copy it before changing anything) and the extra
    environment variables that make ``python -m pytest`` in a copy of it use the cached venv. ``PYTHONPATH``
    names the repo as ``/testbed``, which the local runtime maps onto its copy, as in the image."""

    repo_dir: Path
    env: dict[str, str] = field(default_factory=dict)


def _lock(name: str):
    from srl_swe.runtime.images import file_lock

    return file_lock(name)


def _run(cmd: list[str], what: str, hint: str = "; is PyPI reachable?", **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SandboxError(f"{what}: `{' '.join(cmd)}` failed (exit {proc.returncode}){hint}\n{tail}")
    return proc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build_once(target: Path, build) -> Path:
    """``target``, made by ``build(target) -> marker text`` unless a complete one exists: under a file lock (parallel
    workers build once), from scratch (a half-built one is removed), marked complete last (``NAME.ok``)."""
    if _done(target).is_file():
        return target
    with _lock(f"{target.parent.name}-{target.name}"):
        if not _done(target).is_file():  # another worker may have built it while we waited
            shutil.rmtree(target, ignore_errors=True)
            _done(target).write_text(build(target))
    return target


def _commit(repo: git.Repo, message: str, what: str) -> str:
    """Commit the whole tree with the fixed identity (the same commit id on every machine); caches the tests write
    are excluded from then on. Returns the marker text: the commit id."""
    commit = hostgit.commit_all(repo, message, what)
    info = Path(repo.git_dir) / "info"
    info.mkdir(exist_ok=True)
    (info / "exclude").write_text(EXCLUDES)
    return commit + "\n"


def download_sdist(spec: EnvSpec, cache: Path | None = None) -> Path:
    """The spec's sdist, downloaded once and verified against ``spec.sdist_sha256``."""
    folder = (cache or cache_dir()) / "sdists"
    folder.mkdir(parents=True, exist_ok=True)

    def cached() -> Path | None:
        return next((p for p in folder.glob(f"{spec.package}-{spec.package_version}.*")
                     if p.is_file() and _sha256(p) == spec.sdist_sha256), None)

    if found := cached():
        return found
    with _lock(f"sdist-{spec.package}-{spec.package_version}"), tempfile.TemporaryDirectory(dir=folder) as tmp:
        if found := cached():  # another worker downloaded it while we waited
            return found
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp,
              f"{spec.package}=={spec.package_version}"], f"downloading the sdist of {spec.package}")
        (got,) = Path(tmp).iterdir()
        if _sha256(got) != spec.sdist_sha256:
            raise SandboxError(f"{got.name}: sha256 {_sha256(got)} differs from the spec's {spec.sdist_sha256}; "
                                "the download is corrupt or not the PyPI file")
        return Path(shutil.move(str(got), folder / got.name))


def prepare_source(spec: EnvSpec, cache: Path | None = None) -> Path:
    """The committed source repository of ``spec`` (one deterministic commit of the extracted sdist)."""
    cache = cache or cache_dir()
    target = cache / "sources" / f"{spec.package}-{spec.package_version}-{spec.sdist_sha256[:12]}"
    if _done(target).is_file():
        return target
    sdist = download_sdist(spec, cache)

    def build(target: Path) -> str:
        target.mkdir(parents=True)
        with tarfile.open(sdist) as tar:
            # The "data" filter (no absolute paths, links out of the tree, device files) where Python has it.
            tar.extractall(target, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        (top,) = [p for p in target.iterdir()]  # an sdist holds one NAME-VERSION/ folder
        for item in top.iterdir():
            item.rename(target / item.name)
        top.rmdir()
        what = f"committing the source of {spec.package}"
        with hostgit.init(target, what) as repo:
            return _commit(repo, f"{spec.package} {spec.package_version} (PyPI sdist)", what)

    return _build_once(target, build)


def _task_key(spec: EnvSpec, setup_patch: str) -> str:
    return hashlib.sha256(f"{spec.digest()}\n{setup_patch}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def task_base_message(spec: EnvSpec, setup_patch: str) -> str:
    """The commit message of a task base (part of its commit id: the task image commits with the same one)."""
    return f"{spec.package} {spec.package_version} task base {_task_key(spec, setup_patch)}"


def _commit_task_base(clean: Path, target: Path, spec: EnvSpec, setup_patch: str, *, shared: bool) -> git.Repo:
    """Clone ``clean`` into ``target`` and commit ``setup_patch`` on top; the new commit is the clone's HEAD."""
    target.parent.mkdir(parents=True, exist_ok=True)
    repo = hostgit.clone(clean, target, "copying the clean source", shared=shared)
    patch = Path(repo.git_dir) / "srl_swe_setup.diff"  # inside .git: never part of the tree
    patch.write_text(setup_patch if setup_patch.endswith("\n") else setup_patch + "\n",
                     encoding="utf-8", errors="surrogateescape")
    what = f"committing the task base of {spec.package} (setup patch {_task_key(spec, setup_patch)})"
    hostgit.apply(repo, patch, what)
    _commit(repo, task_base_message(spec, setup_patch), what)
    patch.unlink()
    return repo


def prepare_task_source(spec: EnvSpec, setup_patch: str, cache: Path | None = None) -> Path:
    """The clean source of ``spec`` with ``setup_patch`` (a generated task's bug, a ``git diff``) committed on top,
    in its own cached repository: the base of a generated task. Author, date and message are fixed, so the commit
    id (the task's ``base_commit``) is the same on every machine and every rebuild. A patch that does not apply
    raises :class:`SandboxError` naming it."""
    cache = cache or cache_dir()
    clean = prepare_source(spec, cache)

    def build(target: Path) -> str:
        with _commit_task_base(clean, target, spec, setup_patch, shared=False) as repo:
            return repo.head.commit.hexsha + "\n"

    return _build_once(cache / "task-sources" / f"{spec.package}-{spec.package_version}-{_task_key(spec, setup_patch)}",
                       build)


@dataclass(frozen=True)
class TaskBase:
    commit: str  # the base_commit prepare_task_source gives
    fix: str  # the diff from the base back to the clean source (`git diff HEAD HEAD~1`): the gold patch


def task_base(spec: EnvSpec, setup_patch: str, cache: Path | None = None) -> TaskBase:
    """A task base's commit id and fix without caching a copy of the source: the same commit as
    :func:`prepare_task_source` (same code), made in a throwaway clone that shares the clean one's objects."""
    clean = prepare_source(spec, cache)
    with tempfile.TemporaryDirectory(prefix="srl-swe-task-base-") as tmp:
        repo = Path(tmp) / "repo"
        with _commit_task_base(clean, repo, spec, setup_patch, shared=True) as base:
            commit, fix = base.head.commit.hexsha, hostgit.diff(base, "HEAD", "HEAD~1", "diffing the task base")
    return TaskBase(commit, fix)


def source_commit(repo: Path) -> str:
    return hostgit.head(repo)


def _deps_key(spec: EnvSpec, python: str | None) -> str:
    target = python or f"host{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256(f"{target} {platform.machine()} {sorted(spec.test_deps)}".encode()).hexdigest()[:16]


def prepare_wheelhouse(spec: EnvSpec, python: str | None = None, cache: Path | None = None) -> Path:
    """A folder of wheels for ``spec.test_deps``: for Python ``python`` (e.g. the image's "3.11", fetched
    as manylinux binaries) or, when ``None``, for the host interpreter."""

    def build(target: Path) -> str:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", str(target)]
        if python:
            cmd += ["--only-binary", ":all:", "--python-version", python, "--implementation", "cp",
                    "--platform", f"manylinux_2_28_{platform.machine()}"]
        _run([*cmd, *spec.test_deps], f"downloading the test dependencies of {spec.repo} {spec.version}")
        return "\n".join(spec.test_deps) + "\n"

    return _build_once((cache or cache_dir()) / "wheelhouse" / _deps_key(spec, python), build)


def prepare_venv(spec: EnvSpec, cache: Path | None = None) -> Path:
    """A venv of the host Python with the spec's test dependencies (built in place: venvs do not move)."""
    cache = cache or cache_dir()
    target = cache / "venvs" / _deps_key(spec, None)
    if _done(target).is_file():
        return target
    wheels = prepare_wheelhouse(spec, None, cache)

    def build(target: Path) -> str:
        _run([sys.executable, "-m", "venv", str(target)], "creating the test venv")
        _run([str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels),
              *spec.test_deps], f"installing the test dependencies of {spec.repo} {spec.version}")
        return "\n".join(spec.test_deps) + "\n"

    return _build_once(target, build)


def instance_source(instance) -> Path:
    """The repository at the instance's base: the spec's clean source, or for a generated task (a record with a
    ``setup_patch``) that source with the patch committed, whose commit must be the record's ``base_commit``."""
    spec, patch = spec_for(instance), setup_patch(instance)
    if not patch:
        return prepare_source(spec)
    repo = prepare_task_source(spec, patch)
    if (commit := source_commit(repo)) != instance.base_commit:
        raise SpecError(f"{instance.instance_id}: its setup_patch on {spec.package} {spec.package_version} gives "
                        f"commit {commit}, the record says base_commit {instance.base_commit}; the record was "
                        "edited or made from another source (regenerate it with `srl-swe tasks make`)")
    return repo


def prepare_local(instance) -> LocalEnv:
    """The task's source repo and the env for running its tests on the host (no isolation: see
    :mod:`srl_swe.runtime.local`). Raises :class:`~srl_swe.swebench.specs.SpecError` for repos without a spec."""
    return prepare_spec_env(spec_for(instance), instance_source(instance))


def prepare_spec_env(spec: EnvSpec, repo: Path | None = None) -> LocalEnv:
    """:func:`prepare_local` for a spec rather than an instance (task generation has no instance yet); ``repo``
    (default: the spec's clean source) is the source to run the tests of."""
    repo, venv = repo or prepare_source(spec), prepare_venv(spec)
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "VIRTUAL_ENV": str(venv)}
    if spec.pythonpath:
        env["PYTHONPATH"] = f"{REPO_DIR}/{spec.pythonpath}"
    return LocalEnv(repo, env)
