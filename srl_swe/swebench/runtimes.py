"""A SWE-bench task's sandbox on any backend: prepare what the backend needs, then ask the runtime registry.

:func:`srl_swe.runtime.make_runtime` only looks a backend up and constructs it; what a backend needs to run
*a task* lives here, one line per backend in :data:`PREPARATIONS`: ``docker`` gets the task's image (built
once by :func:`~srl_swe.swebench.images.ensure_image`), ``local`` a cached checkout of the task's repository
and the environment of its test venv (:func:`~srl_swe.swebench.local_env.prepare_local`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from srl_swe.runtime import RUNTIMES, make_runtime
from srl_swe.runtime.base import Runtime, SandboxError
from srl_swe.swebench.instance import SWEInstance

_Prepare = Callable[[SWEInstance, dict[str, Any]], dict[str, Any]]


def _docker(instance: SWEInstance, kwargs: dict[str, Any]) -> dict[str, Any]:
    from srl_swe.swebench.images import ensure_image

    return {"image": ensure_image(instance, client=kwargs.get("client"))}


def _local(instance: SWEInstance, kwargs: dict[str, Any]) -> dict[str, Any]:
    from srl_swe.swebench.local_env import prepare_local

    prepared = prepare_local(instance)  # a given env= is laid over the prepared one (it may add variables)
    return {"repo_dir": prepared.repo_dir, "env": {**prepared.env, **(kwargs.get("env") or {})}}


#: Backend -> (the constructor argument that says the task is already prepared, how to prepare it otherwise).
PREPARATIONS: dict[str, tuple[str, _Prepare]] = {
    "docker": ("image", _docker),
    "local": ("repo_dir", _local),
}


def task_runtime(name: str, instance: SWEInstance | None = None, **kwargs: Any) -> Runtime:
    """A fresh sandbox for ``instance`` on backend ``name`` (see :data:`srl_swe.runtime.RUNTIMES`).

    ``docker``: ``image=`` (else the instance's image, built if needed); ``local``: ``repo_dir=`` and ``env=``
    (else the instance's prepared checkout and venv, with a given ``env`` laid over the prepared one). Every
    other keyword goes to the backend as it is. A backend without a preparation here (a dotted path) gets
    ``kwargs`` only, so it cannot be given an instance."""
    RUNTIMES.path(name)  # an unknown name fails here, before an image is built for it
    entry = PREPARATIONS.get(name)
    if entry is None:
        if instance is not None:
            raise SandboxError(f"runtime {name!r} has no task preparation (known: {', '.join(PREPARATIONS)}); "
                               "pass its arguments without an instance, or add it to "
                               "srl_swe.swebench.runtimes.PREPARATIONS")
        return make_runtime(name, **kwargs)
    given, prepare = entry
    if kwargs.get(given) is None:
        if instance is None:
            raise SandboxError(f"the {name} runtime needs {given}= or a SWE-bench instance to prepare one for")
        kwargs = {**kwargs, **prepare(instance, kwargs)}
    return make_runtime(name, **kwargs)
