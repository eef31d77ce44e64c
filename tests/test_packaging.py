"""The wheel carries the bundled data and the C reward, so `gym.make("SRL-SWE-v0")` works when installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contents(tmp_path: Path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("srl_swe-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "srl_swe/_bundled/trajectories/swe/bundled.jsonl" in names
    assert "srl_swe/_bundled/trajectories/math/bundled.jsonl" in names
    assert "srl_swe/_bundled/docker/task.Dockerfile.template" in names
    assert any(n.startswith("srl_swe/_fastdiff") and n.endswith(".so") for n in names)
    assert "srl_swe/envs/srl_swe.py" in names and not any(n.startswith("tests/") for n in names)
    # The start-up hook of README "Installing with pip": the module and the .pth line that installs it, which
    # does nothing (rather than failing every interpreter start) if the module is ever missing.
    assert "_srl_swe_torch_extras.py" in names
    pth = zipfile.ZipFile(wheel).read("srl-swe-torch-extras.pth").decode()
    assert pth.startswith("import ") and pth.count("\n") == 1
    assert "find_spec('_srl_swe_torch_extras')" in pth and "__import__('_srl_swe_torch_extras').install()" in pth
    exec(pth)  # as site.py runs it
    bundled = zipfile.ZipFile(wheel).read("srl_swe/_bundled/trajectories/swe/bundled.jsonl")
    assert bundled == (REPO / "trajectories" / "swe" / "bundled.jsonl").read_bytes()
