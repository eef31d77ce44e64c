"""Execution backends behind one Protocol (:class:`srl_swe.runtime.base.Runtime`), looked up by name.

``make_runtime("docker", image=...)`` gives a container from an image, ``make_runtime("local",
repo_dir=...)`` a temporary copy of a repository on the host; the keyword arguments are the backend's own.
Nothing here knows about tasks: :func:`srl_swe.swebench.runtimes.task_runtime` prepares a SWE-bench
instance's image or repository and then asks this registry. Backends are imported only when asked for, so
importing this package never imports the Docker SDK. A new backend is one module plus one line in
:data:`RUNTIMES` (or a dotted path, ``my_pkg.my_module.MyRuntime``, given as the name).
"""

from __future__ import annotations

from typing import Any

from srl_swe.registry import Registry, UnknownComponentError
from srl_swe.runtime.base import Runtime, SandboxError


class UnknownRuntimeError(UnknownComponentError, SandboxError):
    """``make_runtime`` got a name that is not in :data:`RUNTIMES` (nor an importable dotted path)."""


#: Backend name -> its class, imported on first use.
RUNTIMES: Registry[type] = Registry("runtime", {
    "docker": "srl_swe.runtime.docker.DockerRuntime",
    "local": "srl_swe.runtime.local.LocalRuntime",
}, error=UnknownRuntimeError)


def make_runtime(name: str, **kwargs: Any) -> Runtime:
    """A fresh sandbox on backend ``name``: ``RUNTIMES.get(name)(**kwargs)``. ``docker`` takes ``image=``
    and the :class:`~srl_swe.runtime.docker.DockerRuntime` options, ``local`` takes ``repo_dir=``, ``env=``
    and the :class:`~srl_swe.runtime.local.LocalRuntime` options."""
    return RUNTIMES.get(name)(**kwargs)


__all__ = ["RUNTIMES", "UnknownRuntimeError", "make_runtime"]
