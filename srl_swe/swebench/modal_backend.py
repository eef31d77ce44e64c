"""Grading on Modal (https://modal.com): the swebench harness's own Modal backend, passed through (``--modal``).

``srl-swe eval swebench --modal`` (and ``grade_with_harness(..., modal=True)``) runs the same harness
subprocess with ``modal=True``: swebench's ``run_instances_modal`` builds each instance's environment on Modal
from swebench's own specs, runs the eval script in a Modal sandbox and writes ``report.json`` into the same log
layout, which srl-swe reads as usual. No local Docker daemon is used for grading, and so none of srl-swe's
container settings apply there (:mod:`srl_swe.runtime.sandbox`): the sandbox is Modal's. Images are Modal's
builds of swebench's specs, so only instances swebench itself knows how to build (SWE-bench's repositories)
can be graded there, not the task images srl-swe builds locally (marshmallow, generated tasks).

Not tested here (no Modal account or network). :func:`modal_problems` says, before any work, what would make
every instance fail: no ``modal`` package, no ``~/.modal.toml`` (swebench refuses without it), or a swebench
whose Modal code reads ``TestSpec`` attributes its ``TestSpec`` does not have. swebench 5.0.2 is such a one:
its ``ModalSandboxRuntime.get_instance_image`` reads ``test_spec.setup_env_script`` and
``install_repo_script``, which 5.0.2's ``TestSpec`` no longer has (a TODO in its source says so).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

from srl_swe.errors import SRLError

MODAL_MODULE = "swebench.harness.modal_eval.run_evaluation_modal"


def missing_test_spec_fields() -> list[str]:
    """The ``test_spec.NAME`` attributes swebench's Modal code reads that its ``TestSpec`` does not have."""
    import importlib

    from swebench.types import TestSpec

    source = inspect.getsource(importlib.import_module(MODAL_MODULE))
    known = {f.name for f in dataclasses.fields(TestSpec)} | set(dir(TestSpec))
    return sorted({name for name in re.findall(r"\btest_spec\.(\w+)", source) if name not in known})


def modal_problems() -> list[str]:
    """Why the harness's Modal backend cannot grade from this machine (an empty list: nothing known)."""
    problems = []
    try:
        import modal  # noqa: F401
    except ImportError:
        return ["the `modal` package is not installed (`pip install modal`)"]
    if not (Path.home() / ".modal.toml").is_file():
        problems.append("no Modal credentials: swebench reads ~/.modal.toml (run `modal token new`)")
    try:
        missing = missing_test_spec_fields()
    except (ImportError, OSError, TypeError):  # the module moved or has no source: cannot tell, let the harness try
        missing = []
    if missing:
        from importlib.metadata import version

        problems.append(
            f"swebench {version('swebench')}'s Modal backend reads TestSpec.{', '.join(missing)}, which its TestSpec "
            f"does not have ({MODAL_MODULE}), so every instance would fail on Modal; use a swebench whose Modal "
            "backend matches its TestSpec, or grade on Docker (without --modal)")
    return problems


def require_modal() -> None:
    """Raise :class:`SRLError` naming every reason :func:`modal_problems` finds."""
    problems = modal_problems()
    if problems:
        raise SRLError("--modal cannot grade here: " + "; ".join(problems))
