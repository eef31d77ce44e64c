"""The one interface every execution backend implements (``docker``, ``local``).

A runtime is one task's sandbox: a repository checked out at the task's base commit (``/testbed`` as the
agent sees it, the SWE-bench convention), a shell to run commands in with a timeout, and file access for
the editor tool. Tools (:mod:`srl_swe.tools`), the agent loop and the graders only ever talk to this
Protocol, so a backend is chosen by a string (:func:`srl_swe.runtime.make_runtime`) and nothing else
changes. Backends are context managers: leaving the ``with`` block (normally, on error or on Ctrl-C)
removes the sandbox.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from srl_swe.errors import SRLError

#: Where the repository lives as every policy and expert trajectory sees it.
REPO_DIR = "/testbed"
#: Default per-command timeout (seconds), the same order as SWE-agent's.
DEFAULT_TIMEOUT = 60.0
#: The largest file ``read_file`` returns (bytes). Reads are streamed and stop here, so a huge or sparse
#: file in the sandbox costs the host at most this much memory; the agent is told to read parts of it.
MAX_FILE_BYTES = 8 * 1024 * 1024


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs. A zombie (killed, not yet reaped: a SIGKILLed process whose
    parent is gone may stay one for a while) counts as gone, since it can no longer clean anything up."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS) or it just exited: trust kill(0)
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class SandboxError(SRLError, RuntimeError):
    """A sandbox could not be created or used (image missing, daemon down, container gone...)."""


class FileTooLargeError(SRLError, OSError):
    """``read_file`` refused a file over :data:`MAX_FILE_BYTES`; the message says how to read part of it."""

    def __init__(self, path: str, size: int | None, limit: int):
        self.path, self.size, self.limit = path, size, limit
        what = f"{size} bytes" if size is not None else "larger than that"
        super().__init__(f"{path} is too large to open whole ({what}; the limit is {limit} bytes): look at "
                         "part of it with `head`, `tail`, `sed -n 'A,Bp'` or `grep -n` in bash")


class DockerUnavailableError(SandboxError):
    """No Docker daemon answers; the message says how to start one or to use ``--runtime local``."""


@dataclass(frozen=True)
class CommandResult:
    """What one shell command did. ``output`` is stdout and stderr interleaved, decoded as UTF-8
    (invalid bytes replaced); ``exit_code`` is ``None`` when the command was killed by its timeout."""

    output: str
    exit_code: int | None
    timed_out: bool = False
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@runtime_checkable
class Runtime(Protocol):
    """One task's sandbox. Paths may be absolute (``/testbed/...``) or relative to :data:`REPO_DIR`."""

    name: str

    def execute(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run ``command`` with ``bash -c`` in ``/testbed``; never raises for a failing or hanging command
        (a timeout kills it and everything it started, and returns ``timed_out=True``)."""
        ...

    def read_file(self, path: str) -> str:
        """The file's text; raises ``FileNotFoundError`` (message names the path) when it does not exist and
        :class:`FileTooLargeError` for a file over :data:`MAX_FILE_BYTES` (read in bounded memory)."""
        ...

    def write_file(self, path: str, content: str) -> None:
        """Create or overwrite the file (parents created)."""
        ...

    def close(self) -> None:
        """Remove the sandbox; idempotent."""
        ...

    def __enter__(self) -> Runtime: ...

    def __exit__(self, *exc: object) -> None: ...
