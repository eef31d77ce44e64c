"""Execution backends behind one Protocol (:class:`srl_swe.runtime.base.Runtime`), chosen by name.

``make_runtime("docker", instance)`` gives a container from the instance's image, ``make_runtime("local",
instance)`` a temporary copy of the repository on the host. Backends are imported only when asked for, so
importing this package never imports the Docker SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from srl_swe.runtime.base import (
    DEFAULT_TIMEOUT,
    REPO_DIR,
    CommandResult,
    DockerUnavailableError,
    Runtime,
    RuntimeError_,
)

if TYPE_CHECKING:
    from srl_swe.swebench.instance import SWEInstance

#: Backend name -> "module:Class", imported lazily by :func:`make_runtime`.
RUNTIMES: dict[str, str] = {
    "docker": "srl_swe.runtime.docker:DockerRuntime",
    "local": "srl_swe.runtime.local:LocalRuntime",
}

#: Default cap on one command's output kept in memory (bytes). Large enough for a full test-suite log
#: (the graders parse it); the agent's tools cut observations much shorter for the model.
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024


class UnknownRuntimeError(RuntimeError_, ValueError):
    """``make_runtime`` got a name that is not in :data:`RUNTIMES`."""


def make_runtime(name: str, instance: SWEInstance | None = None, **kwargs: Any) -> Runtime:
    """A fresh sandbox for ``instance`` on backend ``name`` ("docker" or "local").

    ``docker``: ``image=`` (else the instance's image, built if needed by
    :func:`srl_swe.swebench.images.ensure_image`), other kwargs go to :class:`DockerRuntime`.
    ``local``: ``repo_dir=`` and ``env=`` (else :func:`srl_swe.swebench.local_env.prepare_local` of the
    instance; a given ``env`` is laid over the prepared one), other kwargs go to :class:`LocalRuntime`."""
    if name not in RUNTIMES:
        raise UnknownRuntimeError(f"unknown runtime {name!r}; choose one of: {', '.join(sorted(RUNTIMES))}")
    module, _, cls_name = RUNTIMES[name].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if name == "docker":
        image = kwargs.pop("image", None)
        if image is None:
            if instance is None:
                raise RuntimeError_("the docker runtime needs image= or a SWE-bench instance to build one for")
            from srl_swe.swebench.images import ensure_image

            image = ensure_image(instance, client=kwargs.get("client"))
        return cls(image, **kwargs)
    repo_dir = kwargs.pop("repo_dir", None)
    env = kwargs.pop("env", None)
    if repo_dir is None:
        if instance is None:
            raise RuntimeError_("the local runtime needs repo_dir= or a SWE-bench instance to prepare one for")
        from srl_swe.swebench.local_env import prepare_local

        prepared = prepare_local(instance)
        repo_dir, env = prepared.repo_dir, {**prepared.env, **(env or {})}
    return cls(repo_dir, env=env, **kwargs)


class OutputBuffer:
    """Collects a command's output with bounded memory: the first and last ``max_bytes // 2`` bytes are
    kept and the middle is replaced by a visible marker, so a command printing gigabytes cannot exhaust
    memory while the start (the command's context) and the end (errors, summaries) survive."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_OUTPUT):
        if max_bytes < 2:
            raise ValueError(f"max_output must be at least 2 bytes, got {max_bytes}")
        self.half = max_bytes // 2
        self.max_bytes = max_bytes
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            # Trim lazily (only once the tail is twice its budget) so feeding stays amortised O(n).
            if len(self.tail) > 2 * self.half:
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        if self.total <= self.max_bytes:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", errors="replace")
        tail = bytes(self.tail[-self.half:]) if self.half else b""
        omitted = self.total - len(self.head) - len(tail)
        marker = f"\n[... {omitted} bytes of output omitted (over the {self.max_bytes}-byte cap) ...]\n"
        return self.head.decode("utf-8", errors="replace") + marker + tail.decode("utf-8", errors="replace")


__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_TIMEOUT",
    "REPO_DIR",
    "RUNTIMES",
    "CommandResult",
    "DockerUnavailableError",
    "OutputBuffer",
    "Runtime",
    "RuntimeError_",
    "UnknownRuntimeError",
    "make_runtime",
]
