"""The layers of README "Layout" hold: no module imports from a layer above its own (import-linter, whose
contract in pyproject.toml is exhaustive, so a new top-level module must be given a layer), and the README's
list is the contract's list."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]' (import-linter)")
    env = {"PYTHONPATH": str(cwd), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    return subprocess.run([exe, "--no-cache", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def _contract_layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return contract["layers"]


def test_no_module_imports_from_a_higher_layer():
    res = _lint_imports(REPO)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert "1 kept, 0 broken" in res.stdout


def test_the_contract_sees_function_local_imports(tmp_path: Path):
    """The check is not vacuous: an import inside a function that points up a layer breaks it."""
    pkg = tmp_path / "layered"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "high.py").write_text("from layered import low\n")
    (pkg / "low.py").write_text("def helper():\n    from layered.high import something  # noqa\n")
    (tmp_path / ".importlinter").write_text(textwrap.dedent("""\
        [importlinter]
        root_package = layered
        [importlinter:contract:layers]
        name = layered
        type = layers
        containers = layered
        layers =
            high
            low
        """))
    res = _lint_imports(tmp_path)
    assert res.returncode != 0
    assert "layered.low -> layered.high" in res.stdout


def test_readme_layout_lists_the_contract_layers():
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    # one line per layer, top first: "cli            the command line ..." ; siblings joined by " : "
    listed = [re.split(r"\s{2,}", line.strip(), maxsplit=1)[0] for line in block.splitlines() if line.strip()]
    assert listed == _contract_layers()
