"""Where data lives: the bundled default trajectories and the shared data folder (``SRL_SWE_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def bundled_dir() -> Path:
    """The project's own sample data: inside the wheel, or the repository's top-level ``trajectories/``."""
    for candidate in (_PKG / "_bundled" / "trajectories", _PKG.parent / "trajectories"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "bundled trajectories not found (looked in srl_swe/_bundled/trajectories and ./trajectories); "
        "reinstall srl-swe or pass data=PATH"
    )


def bundled(kind: str) -> Path:
    """``bundled("swe")`` / ``bundled("math")``: the default data of SRL-SWE-v0 / SRL-Math-v0."""
    path = bundled_dir() / kind / "bundled.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: bundled {kind} trajectories are missing; pass data=PATH")
    return path


def cache_dir() -> Path:
    """srl-swe's cache root: ``$SRL_SWE_CACHE``, default ``~/.cache/srl-swe`` (sources, venvs, wheelhouses, build
    locks and logs, the disk-quota verdicts, the TRL config schema)."""
    return Path(os.environ.get("SRL_SWE_CACHE", Path.home() / ".cache" / "srl-swe")).expanduser()


def shared_data_dir() -> Path:
    """``$SRL_SWE_DATA``, defaulting to ``../shared/data`` (relative to the working directory)."""
    return Path(os.environ.get("SRL_SWE_DATA", "../shared/data")).expanduser()
