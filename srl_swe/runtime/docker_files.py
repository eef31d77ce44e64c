"""File transfer of the ``docker`` runtime: the editor's reads and writes, through the daemon's archive API.

Reads stream the archive and stop at the runtime's ``max_file_bytes``
(:data:`~srl_swe.runtime.base.MAX_FILE_BYTES` by default): a file over it is refused from the archive's stat
header before a byte is sent, so a huge or sparse file in the sandbox costs the host bounded memory. Writes
upload under a temporary name owned by the user commands run as, then ``cat`` it over the target, so an
existing file keeps its mode, owner and symlinks, as with an editor's save.
"""

from __future__ import annotations

import contextlib
import posixpath
import shlex
import tarfile
import time
import uuid
from io import BytesIO
from typing import TYPE_CHECKING

from srl_swe.runtime.base import REPO_DIR, FileTooLargeError

if TYPE_CHECKING:
    from srl_swe.runtime.docker import DockerRuntime

_MODE_DIR, _MODE_SYMLINK = 1 << 31, 1 << 27  # Go's os.ModeDir / os.ModeSymlink in the archive's stat header
_q = shlex.quote


def _abs(path: str) -> str:
    return posixpath.normpath(posixpath.join(REPO_DIR, path))


def read_container_file(rt: DockerRuntime, path: str) -> str:
    """The text of ``path`` in the container (invalid UTF-8 replaced); symlinks are followed."""
    data = _get_file(rt, _abs(path), path)
    if data is None:  # a symlink: the archive holds the link itself, so fetch what it points to
        code, out = rt._run_quick(f"readlink -f -- {_q(_abs(path))}", timeout=30.0)
        data = _get_file(rt, out.strip(), path) if code == 0 and out.strip() else None
        if data is None:
            raise FileNotFoundError(f"{path}: a dangling or looping symlink in the container")
    return data.decode("utf-8", errors="replace")


def _get_file(rt: DockerRuntime, real: str, shown: str) -> bytes | None:
    """The bytes of the regular file ``real``; None when it is a symlink."""
    import docker.errors

    limit = rt.max_file_bytes
    try:
        raw, stat = rt.api.get_archive(rt.container_name, real, chunk_size=64 * 1024)
    except docker.errors.NotFound:
        raise FileNotFoundError(f"{shown}: no such file in the container") from None
    try:
        mode = int(stat.get("mode", 0))
        if mode & _MODE_DIR:
            raise IsADirectoryError(f"{shown} is a directory, not a file")
        if not mode & _MODE_SYMLINK and int(stat.get("size", 0)) > limit:
            raise FileTooLargeError(shown, int(stat["size"]), limit)
        with tarfile.open(fileobj=_ChunkReader(raw), mode="r|") as tar:
            member = tar.next()
            if member is not None and member.issym():
                return None
            if member is None or member.isdir():
                raise IsADirectoryError(f"{shown} is a directory, not a file")
            if member.size > limit:  # it grew after the stat
                raise FileTooLargeError(shown, member.size, limit)
            fh = tar.extractfile(member)
            if fh is None:
                raise FileNotFoundError(f"{shown}: not a regular file")
            return fh.read(limit)
    finally:
        with contextlib.suppress(Exception):
            raw.close()  # stop reading what the daemon still sends of a file we did not take


def write_container_file(rt: DockerRuntime, path: str, content: str) -> None:
    import docker.errors

    target, data = _abs(path), content.encode("utf-8", errors="surrogateescape")
    tmp_name = f".srl-swe-upload-{uuid.uuid4().hex[:8]}"
    info = tarfile.TarInfo(tmp_name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    info.uid, info.gid = rt.uid_gid  # so the user commands run as can remove it from a sticky /tmp
    blob = BytesIO()
    with tarfile.open(fileobj=blob, mode="w") as tar:
        tar.addfile(info, BytesIO(data))
    try:
        tmp_dir = "/tmp"
        rt.api.put_archive(rt.container_name, tmp_dir, blob.getvalue())
    except docker.errors.NotFound:  # no /tmp (someone deleted it): the root always exists
        tmp_dir = "/"
        rt.api.put_archive(rt.container_name, tmp_dir, blob.getvalue())
    tmp = posixpath.join(tmp_dir, tmp_name)
    script = (f"mkdir -p -- {_q(posixpath.dirname(target))} && cat -- {_q(tmp)} > {_q(target)}; "
              f"rc=$?; rm -f -- {_q(tmp)}; exit $rc")
    code, out = rt._run_quick(script, timeout=60.0)
    if code != 0:
        raise OSError(f"could not write {path} in the container: {out.strip() or 'exit ' + str(code)}")


class _ChunkReader:
    """A minimal read-only file over the archive's chunk generator, for ``tarfile``'s stream mode."""

    def __init__(self, chunks):
        self._chunks, self._buf = iter(chunks), b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if size < 0:
            size = len(self._buf)
        out, self._buf = self._buf[:size], self._buf[size:]
        return out
