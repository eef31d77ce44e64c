"""Task sources on real inputs: PyPI sdists (downloaded once into the cache dir), tiny real packages packed from
folders, real pip resolutions and a real baseline test run; bad inputs give an error naming SRC."""

from __future__ import annotations

import hashlib
import os
import tarfile
import time
from pathlib import Path

import pytest

from srl_swe.errors import SRLError
from srl_swe.paths import cache_dir
from srl_swe.swebench.local_env import download_sdist, prepare_source
from srl_swe.swebench.specs import EnvSpec
from srl_swe.taskgen import pack as P
from srl_swe.taskgen import sources as S
from srl_swe.taskgen.validate import run_baseline

PYTEST_CLOSURE = {"pytest", "pluggy", "iniconfig", "packaging", "pygments"}
CODE = "def add(a, b):\n    if a < 0:\n        return b + a\n    return a + b\n"
TEST = ("from {mod} import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
        "def test_neg():\n    assert add(-1, 1) == 0\n")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _names(deps) -> set[str]:
    return {dep.split("==")[0] for dep in deps}


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def flat(tmp_path) -> Path:
    """A package without metadata (pyproject.toml holds tool settings only): named after its folder, versioned by
    its content hash, not built by pip."""
    return _write(tmp_path / "tiny-flat", {
        "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n', "tinyflat/__init__.py": CODE,
        "tests/test_add.py": TEST.format(mod="tinyflat"),
        "tinyflat/__pycache__/x.cpython-311.pyc": "junk", ".git/HEAD": "ref", ".pytest_cache/v": "x",
        "tinyflat.egg-info/PKG-INFO": "x"})


@pytest.fixture
def src_layout(tmp_path) -> Path:
    pyproject = ('[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
                 '[project]\nname = "tiny-src"\nversion = "0.3.1"\ndependencies = ["six"]\n')
    return _write(tmp_path / "checkout", {"pyproject.toml": pyproject, "src/tiny_src/__init__.py": CODE,
                                          "tests/test_add.py": TEST.format(mod="tiny_src")})


def test_a_pypi_spec_resolves_to_a_pinned_spec_with_the_files_sha():
    spec = S.resolve_source("six==1.17.0")
    assert (spec.repo, spec.version, spec.package, spec.package_version) == ("pypi/six", "1.17.0", "six", "1.17.0")
    sdist = cache_dir() / "sdists" / "six-1.17.0.tar.gz"
    assert spec.sdist_sha256 == _sha(sdist) == _sha(download_sdist(spec))
    assert all("==" in dep for dep in spec.test_deps) and list(spec.test_deps) == sorted(spec.test_deps)
    assert _names(spec.test_deps) == PYTEST_CLOSURE  # six has no dependencies; six itself is not installed
    assert (spec.pythonpath, spec.test_cmd, spec.log_parser, spec.python) == ("", "pytest -rA", "parse_log_pytest",
                                                                               "3.11")  # test_six.py is top-level
    start = time.monotonic()
    assert S.resolve_source("six==1.17.0") == spec  # the resolved spec is cached: same pins, no resolution
    assert time.monotonic() - start < 2


def test_a_normalised_pypi_file_name_is_found_by_download_sdist():
    spec = S.resolve_source("more-itertools==11.2.1")  # PyPI names this sdist more_itertools-11.2.1.tar.gz
    assert (spec.package, spec.package_version, spec.repo) == ("more_itertools", "11.2.1", "pypi/more-itertools")
    assert download_sdist(spec) == cache_dir() / "sdists" / "more_itertools-11.2.1.tar.gz"


@pytest.mark.slow  # about 35 s on a cold cache (builds marshmallow's metadata, three resolutions)
def test_the_test_extra_and_extra_deps_are_in_the_closure():
    spec = S.resolve_source("marshmallow==3.13.0")  # setup.py: extras_require["tests"] = pytest, pytz, simplejson
    assert _names(spec.test_deps) == PYTEST_CLOSURE | {"pytz", "simplejson"}
    assert spec.pythonpath == "src" and "marshmallow" not in _names(spec.test_deps)
    bare = S.resolve_source("six==1.17.0", extra_deps=["iniconfig==2.1.0"])
    assert "iniconfig==2.1.0" in bare.test_deps and bare != S.resolve_source("six==1.17.0")


def test_packing_a_folder_is_deterministic_and_leaves_caches_out(flat):
    first = P.pack_folder(flat).read_bytes()
    os.utime(flat / "tinyflat" / "__init__.py", (1, 1))
    (flat / "tinyflat" / "__pycache__" / "y.pyc").write_text("more junk")
    second = P.pack_folder(flat)
    assert second.read_bytes() == first
    with tarfile.open(second) as tar:
        members = tar.getmembers()
    top = members[0].name
    assert top.startswith("tiny_flat-0+") and second.name == f"{top}.tar.gz"
    kept = ("pyproject.toml", "tests", "tests/test_add.py", "tinyflat", "tinyflat/__init__.py")
    assert [m.name for m in members] == [top, *(f"{top}/{p}" for p in kept)]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    (flat / "tinyflat" / "__init__.py").write_text(CODE + "\n")  # new content: new version, new file
    assert P.pack_folder(flat).name != second.name


def test_a_flat_folder_resolves_and_its_baseline_passes(flat):
    spec = S.resolve_source(str(flat))
    # "." since tests/ has no __init__.py and there is no top-level conftest.py: pytest would not find tinyflat
    assert spec.repo == "local/tiny-flat" and spec.package == "tiny_flat" and spec.pythonpath == "."
    assert spec.package_version.startswith("0+") and spec.version == spec.package_version
    assert spec.sdist_sha256 == _sha(P.pack_folder(flat)) and _names(spec.test_deps) == PYTEST_CLOSURE
    assert (prepare_source(spec) / "tinyflat" / "__init__.py").read_text() == CODE
    assert EnvSpec.from_dict(spec.to_dict()) == spec  # a generated task's record carries it; its checks accept it
    baseline = run_baseline(spec, timeout=120)
    assert baseline.passing == ("tests/test_add.py::test_add", "tests/test_add.py::test_neg")
    assert (baseline.flaky, baseline.failing) == (0, 0)


def test_a_src_layout_folder_resolves_with_its_metadata_and_dependencies(src_layout):
    spec = S.resolve_source(str(src_layout))
    assert (spec.repo, spec.package, spec.package_version) == ("local/tiny-src", "tiny_src", "0.3.1")
    assert spec.pythonpath == "src" and P.pack_folder(src_layout).name == "tiny_src-0.3.1.tar.gz"
    assert EnvSpec.from_dict(spec.to_dict()) == spec
    assert _names(spec.test_deps) == PYTEST_CLOSURE | {"six"}  # its runtime dependency, not itself
    assert S.resolve_source(str(src_layout), pythonpath="", test_cmd="pytest -x").pythonpath == ""


def _error(src: str, *, match: str) -> S.PackageSourceError:
    with pytest.raises(S.PackageSourceError, match=match) as info:
        S.resolve_source(src)
    assert isinstance(info.value, SRLError) and isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{src}: ")
    return info.value


def test_a_version_not_on_pypi_fails_fast_naming_it():
    start = time.monotonic()
    err = _error("six==0.0.999", match="downloading the sdist from PyPI failed")
    assert "pypi.org" in str(err) and "six==0.0.999" in str(err)
    assert time.monotonic() - start < 30


def test_an_sdist_without_tests_is_refused():
    _error("tomli==2.5.0", match="tomli-2.5.0.tar.gz ships no tests")


def test_a_folder_without_tests_or_code_is_refused(tmp_path):
    _error(str(_write(tmp_path / "notests", {"pkg/__init__.py": CODE})), match="ships no tests")
    _error(str(_write(tmp_path / "docs", {"README.md": "# hi\n", "tests/test_x.py": "def test(): pass\n"})),
           match="not a Python package")
    _error(str(tmp_path / "missing"), match="neither NAME==VERSION nor an existing folder")
    _error(str(_write(tmp_path, {"f.txt": "x"}) / "f.txt"), match="is a file, not a folder")


@pytest.mark.slow
def test_a_chosen_package_baseline_passes():
    spec = S.resolve_source(S.PACKAGES[1])
    baseline = run_baseline(spec, timeout=300)
    assert len(baseline.passing) > 500 and (baseline.flaky, baseline.failing) == (0, 0)


def test_source_spec_prefers_the_hand_checked_spec_unless_overridden():
    from srl_swe.swebench.specs import SPECS

    known = SPECS[("marshmallow-code/marshmallow", "3.13")]
    assert S.source_spec("marshmallow==3.13.0") is known and S.source_spec("Marshmallow==3.13.0") is known
    overridden = S.source_spec("marshmallow==3.13.0", test_cmd="pytest -rA -x")
    assert overridden.repo == "pypi/marshmallow" and overridden.test_cmd == "pytest -rA -x"
    assert overridden.sdist_sha256 == known.sdist_sha256
