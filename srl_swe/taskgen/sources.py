"""Task sources (issue 12): a PyPI sdist spec (``name==version``) or a local package folder -> an :class:`EnvSpec`.

Both end as an sdist in ``cache_dir()/"sdists"``, so the existing chain (:mod:`srl_swe.swebench.local_env`, the
Docker image build) works unchanged: a PyPI sdist is fetched with ``pip download`` under its PyPI file name (the
spec's ``package``/``package_version`` are read off that name, so ``download_sdist``'s ``{package}-{version}.*``
finds it whatever PyPI's name normalisation did); a folder is packed deterministically (sorted entries, mtime 0,
owner 0, no VCS or cache folders, symlinks left out) as ``NAME-VERSION.tar.gz`` with one top folder ``NAME-VERSION/``.

``test_deps`` is the pinned closure of pytest, the package's own runtime dependencies and ``extra_deps``, resolved by
pip as wheels for CPython ``python`` on manylinux (the image) and checked on the host (the local venv); the package
itself is left out, since the tests import it from the source tree. A resolved spec is kept in
``cache_dir()/"specs"``, so a rerun is offline and gets the same pins even after PyPI moves on (delete the folder
to re-resolve).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from srl_swe.paths import cache_dir
from srl_swe.runtime.images import file_lock
from srl_swe.swebench.local_env import download_sdist
from srl_swe.swebench.specs import EnvSpec
from srl_swe.taskgen.pack import PackageSourceError, pack_folder, sha256_file

# The task packages (issue 12). Measured on a 2-core box, Python 3.11, resolve_source defaults, run_baseline (slowest
# of 2 runs), candidates = enumerate_mutations over source_files, yield = kept/tried of sample_mutations(30, seed 0):
# marshmallow 3.13.0 (MIT): 5-9 s, 1,102 passing (2 ids carry a timestamp: excluded), 13 files, 1,742 candidates.
# more-itertools 10.5.0 (MIT): 4-7 s, 663 passing, 3 files / 6,061 lines, 2,604 candidates, yield 21/30.
# toolz 1.2.0 (BSD-3-Clause): 2-5 s, 192 passing, 16 files / 3,907 lines, 1,274 candidates, yield 24/30.
# Tried and left out: more-itertools 11.2.1 (29-45 s suite), idna 3.20 (needs hypothesis), tomli 2.5.0 (no tests in
# the sdist), isodate 0.7.2 (parametrized ids change between runs), parse 1.22.4 (addopts need pytest-cov),
# python-slugify 9.2.0 (addopts --color=yes defeats the log parser), inflection 0.5.1 (162 candidates), six 1.17.0.
PACKAGES = ("marshmallow==3.13.0", "more-itertools==10.5.0", "toolz==1.2.0")
TEST_CMD = "pytest -rA"
RESOLVER = 2  # part of the resolved-spec cache key: bump it when what resolve_source derives changes
LOG_PARSER = "parse_log_pytest"
PIP_TIMEOUT = 900  # seconds for one pip call (a download, or a resolution that builds an sdist's metadata)
TEST_DIRS = {"tests", "test", "testing"}
#: The extras a package's test requirements go by; the first one declared is installed unless extras= says otherwise.
TEST_EXTRAS = ("tests", "test", "testing")
_PYPI_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)\s*$")
_SDIST_EXTS = (".tar.gz", ".zip", ".tar.bz2", ".tgz")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split_sdist_name(file: Path) -> tuple[str, str]:
    """``more_itertools-10.8.0.tar.gz`` -> ("more_itertools", "10.8.0"): what ``download_sdist`` globs for."""
    stem = next((file.name[: -len(ext)] for ext in _SDIST_EXTS if file.name.endswith(ext)), None)
    if stem is None or "-" not in stem:
        raise PackageSourceError(f"{file.name}: not an sdist file name (NAME-VERSION.tar.gz)")
    name, version = stem.rsplit("-", 1)
    return name, version


def _pip(args: list[str], src: str, what: str, hint: str) -> str:
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PackageSourceError(f"{src}: {what} did not finish within {PIP_TIMEOUT} s; is PyPI reachable?") from None
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        tail = "\n".join(line for line in lines if not line.startswith("WARNING: Location"))[-3000:]
        raise PackageSourceError(f"{src}: {what} failed (pip exit {proc.returncode}); {hint}\n{tail}")
    return proc.stdout


def download_pypi(name: str, version: str, src: str | None = None) -> Path:
    """The PyPI sdist of ``name==version`` in ``cache_dir()/"sdists"`` under its PyPI file name (downloaded each
    call: the sha256 is not known before; the resolved-spec cache is what makes reruns offline)."""
    src = src or f"{name}=={version}"
    folder = cache_dir() / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(f"sdist-{_canonical(name)}-{version}"), tempfile.TemporaryDirectory(dir=folder) as tmp:
        _pip(["download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp, f"{name}=={version}"], src,
             "downloading the sdist from PyPI",
             "check the name and version on https://pypi.org (a version with wheels only has no sdist to use)")
        (got,) = Path(tmp).iterdir()
        os.replace(got, folder / got.name)  # PyPI files are immutable: a file of that name is this one
        return folder / got.name


def _members(sdist: Path) -> list[str]:
    """The sdist's file paths below its single top folder."""
    if not tarfile.is_tarfile(sdist):  # old PyPI sdists may be .zip: prepare_source extracts tar archives only
        raise PackageSourceError(f"{sdist.name}: not a tar archive, which the build chain needs; pick a version "
                                 "whose sdist is a .tar.gz, or pass a local folder of its source")
    with tarfile.open(sdist) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    return sorted(name.split("/", 1)[1] for name in names if "/" in name)


def _is_test(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    return name.endswith(".py") and (any(p in TEST_DIRS for p in parts[:-1]) or name.startswith("test_")
                                     or name.endswith("_test.py"))


def _check_layout(src: str, sdist: Path, files: list[str]) -> str:
    """The detected pythonpath ("src", "" or "."), or :class:`PackageSourceError` for a tree without code or tests."""
    skip = {"setup.py", "conftest.py", "noxfile.py", "tasks.py"}
    code = [f for f in files if f.endswith(".py") and not _is_test(f) and f.split("/")[-1] not in skip
            and f.split("/")[0] not in {"docs", "doc", "examples", "benchmarks"}]
    if not code:
        raise PackageSourceError(f"{src}: not a Python package ({sdist.name} holds no Python source outside tests); "
                                 "pass the folder holding the package's code and its tests")
    if not any(map(_is_test, files)):
        raise PackageSourceError(
            f"{src}: {sdist.name} ships no tests (no tests/ or test/ folder, no test_*.py or *_test.py); task "
            "generation runs the package's pytest suite: pick a version whose sdist includes it, or pass a local "
            "checkout of the repository")
    if any(f.startswith("src/") and f.endswith(".py") for f in code):
        return "src"
    return "" if _root_on_path(files) else "."


def _root_on_path(files: list[str]) -> bool:
    """Whether pytest (its default "prepend" import mode) puts the repository root on ``sys.path`` by itself: it
    inserts each test file's and conftest.py's first ancestor folder without an ``__init__.py``. If none is the root
    (``tests/`` without ``__init__.py``, no top-level conftest.py), the package is importable only via PYTHONPATH."""
    packages = {f.rsplit("/", 1)[0] for f in files if f.endswith("/__init__.py")}
    for f in files:
        if _is_test(f) or f.split("/")[-1] == "conftest.py":
            folders = f.split("/")[:-1]
            if all("/".join(folders[: i + 1]) in packages for i in range(len(folders))):
                return True
    return False


def _buildable(sdist: Path, files: list[str]) -> bool:
    """Whether pip can build the sdist's metadata (and so list its dependencies): a setup.py, or a pyproject.toml
    that declares the project or its build system (one holding only tool settings is not enough)."""
    if "setup.py" in files:
        return True
    if "pyproject.toml" not in files:
        return False
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        text = tar.extractfile(f"{top}/pyproject.toml").read().decode("utf-8", "replace")
    return re.search(r"^\s*\[(project|build-system)\]", text, re.M) is not None


def _report(reqs: Sequence[str], flags: Sequence[str], src: str, what: str) -> dict[str, dict]:
    """pip's resolution of ``reqs`` (nothing installed): canonical name -> the report's entry."""
    out = _pip(["install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-", *flags, *reqs], src, what,
               "check the requirements (extra_deps), or pin one that has no wheel for this Python")
    return {_canonical(e["metadata"]["name"]): e for e in json.loads(out)["install"]}


def resolve_test_deps(src: str, sdist: Path | None, extra_deps: Sequence[str] = (), python: str = "3.11",
                      extras: Sequence[str] | None = None) -> tuple[str, ...]:
    """The pinned closure (sorted ``name==version``) of pytest, the sdist's runtime dependencies with ``extras``
    (None: its own test extra, the first of :data:`TEST_EXTRAS` it declares) and ``extra_deps``, for CPython
    ``python`` on manylinux and for the host; the package itself left out. ``sdist`` None (a folder pip cannot
    build): pytest and ``extra_deps`` only."""
    target = ["--only-binary", ":all:", "--python-version", python, "--implementation", "cp",
              "--platform", f"manylinux_2_28_{platform.machine()}"]

    def resolve(chosen: Sequence[str]) -> tuple[dict[str, dict], set[str]]:
        own_req = [f"{sdist}[{','.join(chosen)}]" if chosen else str(sdist)] if sdist else []
        found = _report(["pytest", *extra_deps, *own_req], target, src,
                        f"resolving the test dependencies for CPython {python}")
        return found, {n for n, e in found.items() if sdist and e.get("download_info", {}).get("url") == sdist.as_uri()}

    found, own = resolve(extras or ())
    if extras is None and own:
        declared = {_canonical(x) for e in own for x in found[e]["metadata"].get("provides_extra") or ()}
        if test_extra := next((x for x in TEST_EXTRAS if x in declared), None):
            found, own = resolve([test_extra])
    pins = {n: e["metadata"]["version"] for n, e in found.items() if n not in own}
    # The local venv uses the host's Python: the same pins must install there, plus anything its markers add.
    host = _report([f"{n}=={v}" for n, v in sorted(pins.items())], ["--only-binary", ":all:"], src,
                   "checking that the test dependencies install on this host")
    extra = {n: e["metadata"]["version"] for n, e in host.items() if n not in pins and n not in own}
    if extra:
        _report([f"{n}=={v}" for n, v in sorted(extra.items())], [*target, "--no-deps"], src,
                f"checking the host-only test dependencies for CPython {python}")
    return tuple(f"{n}=={v}" for n, v in sorted({**pins, **extra}.items()))


def _spec_cache(key: dict) -> Path:
    host = f"{sys.version_info[0]}.{sys.version_info[1]}-{platform.machine()}"
    blob = json.dumps({**key, "resolver": RESOLVER, "host": host}, sort_keys=True)
    return cache_dir() / "specs" / f"{hashlib.sha256(blob.encode()).hexdigest()[:20]}.json"


def _load(path: Path) -> EnvSpec | None:
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return EnvSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    except (OSError, ValueError, TypeError):  # absent or from another version of EnvSpec: resolve again
        return None


def resolve_source(src: str, *, extra_deps: Sequence[str] = (), extras: Sequence[str] | None = None,
                   python: str = "3.11", pythonpath: str | None = None, test_cmd: str | None = None) -> EnvSpec:
    """The :class:`EnvSpec` of SRC (a PyPI ``name==version`` or a local package folder; module docstring).
    ``extras``: the package's extras to install (None: its test extra, see :func:`resolve_test_deps`);
    ``pythonpath`` defaults to "src" for a src layout, else "" where pytest finds the package by itself, else "."
    (:func:`_root_on_path`); ``test_cmd`` to ``pytest -rA``."""
    params = {"extra_deps": list(extra_deps), "extras": None if extras is None else list(extras), "python": python,
              "pythonpath": pythonpath, "test_cmd": test_cmd}
    path = Path(src).expanduser()
    if (match := _PYPI_SPEC.match(src)) and not path.exists():
        name, version = match.groups()
        cached = _spec_cache({"pypi": _canonical(name), "version": version, **params})
        if spec := _load(cached):
            download_sdist(spec)  # verifies (or fetches again) the very file the spec names
            return spec
        sdist = download_pypi(name, version, src)
        repo = f"pypi/{_canonical(name)}"
    elif path.is_dir():
        sdist = pack_folder(path)
        cached = _spec_cache({"local": sha256_file(sdist), **params})
        if spec := _load(cached):
            return spec
        repo = f"local/{_canonical(_split_sdist_name(sdist)[0])}"
    else:
        what = "is a file, not a folder" if path.exists() else "is neither NAME==VERSION nor an existing folder"
        raise PackageSourceError(f"{src}: {what}; pass a PyPI sdist spec such as more-itertools==10.5.0 or the "
                                 "source folder of a Python package with a pytest suite")
    package, package_version = _split_sdist_name(sdist)
    files = _members(sdist)
    detected = _check_layout(src, sdist, files)
    deps = resolve_test_deps(src, sdist if _buildable(sdist, files) else None, extra_deps, python, extras)
    spec = EnvSpec(repo, package_version, package, package_version, sha256_file(sdist), deps, python=python,
                   pythonpath=detected if pythonpath is None else pythonpath, test_cmd=test_cmd or TEST_CMD,
                   log_parser=LOG_PARSER)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(spec), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, cached)
    return spec


def source_spec(src: str, *, extra_deps: Sequence[str] = (), pythonpath: str | None = None,
                test_cmd: str | None = None) -> EnvSpec:
    """What ``srl-swe tasks make SRC`` builds: the hand-checked spec of :data:`~srl_swe.swebench.specs.SPECS` for a
    known ``name==version`` given without overrides (marshmallow 3.13.0 keeps its upstream repo name and log
    parser), else :func:`resolve_source`."""
    from srl_swe.swebench.specs import SPECS

    match = _PYPI_SPEC.match(src)
    if match and not (extra_deps or pythonpath is not None or test_cmd) and not Path(src).expanduser().exists():
        name, version = match.groups()
        for spec in SPECS.values():
            if _canonical(spec.package) == _canonical(name) and spec.package_version == version:
                return spec
    return resolve_source(src, extra_deps=extra_deps, pythonpath=pythonpath, test_cmd=test_cmd)
