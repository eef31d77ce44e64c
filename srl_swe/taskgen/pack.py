"""A local package folder as a deterministic sdist (issue 12), so ``srl-swe tasks make FOLDER`` uses the same
sdist-based build chain as a PyPI package (:mod:`srl_swe.swebench.local_env`, the task images).

:func:`pack_folder` writes ``cache_dir()/"sdists"/NAME-VERSION.tar.gz`` with one top folder ``NAME-VERSION/``:
sorted entries, mtime 0, owner 0, gzip mtime 0, so the same contents give the same bytes (and sha256); version
control, caches, virtualenvs, build metadata and symlinks are left out, and the folder is bounded in size.
"""

from __future__ import annotations

import configparser
import gzip
import hashlib
import io
import os
import re
import tarfile
from pathlib import Path

from srl_swe.errors import SRLError
from srl_swe.paths import cache_dir
from srl_swe.runtime.images import file_lock

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: names come from setup.cfg/setup.py or the fallback, not pyproject.toml
    tomllib = None

#: Never packed from a folder: version control, caches, virtualenvs, build metadata.
SKIP = {".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox",
        ".venv", "venv", ".eggs"}
MAX_FOLDER_BYTES = 200 << 20


class PackageSourceError(SRLError, ValueError):
    """SRC of ``srl-swe tasks make`` cannot be turned into an environment; the message names SRC and what to do."""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(root: Path) -> list[tuple[str, Path]]:
    """Every file and folder to pack, as (POSIX path relative to ``root``, path), sorted."""
    out, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked folders are not followed
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.endswith(".egg-info")
                             and not (base / d).is_symlink())
        for name in [*dirnames, *filenames]:
            path = base / name
            if name.endswith((".pyc", ".pyo")) or path.is_symlink():
                continue
            total += path.stat().st_size if path.is_file() else 0
            if total > MAX_FOLDER_BYTES:
                raise PackageSourceError(f"{root}: more than {MAX_FOLDER_BYTES >> 20} MiB to pack; pass the "
                                         "package's source folder, not one holding data or environments")
            out.append((path.relative_to(root).as_posix(), path))
    return sorted(out)


def _content_hash(entries: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for rel, path in entries:
        data = path.read_bytes() if path.is_file() else b""
        digest.update(f"{rel}\0{path.is_dir()}\0{os.access(path, os.X_OK)}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def _metadata(root: Path) -> tuple[str | None, str | None]:
    """Name and version where they are written out literally: pyproject [project], setup.cfg [metadata], setup.py's
    ``setup(name="...", version="...")``. Dynamic ones (read from the code or git) are None."""
    name = version = None
    if (pyproject := root / "pyproject.toml").is_file() and tomllib is not None:
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PackageSourceError(f"{pyproject}: not valid TOML ({exc}); fix the file") from None
        name, version = project.get("name"), project.get("version")
    if (setup_cfg := root / "setup.cfg").is_file() and not (name and version):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(setup_cfg, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            pass
        else:
            name = name or parser.get("metadata", "name", fallback=None)
            version = version or parser.get("metadata", "version", fallback=None)
    if (setup_py := root / "setup.py").is_file() and not (name and version):
        text = setup_py.read_text(encoding="utf-8", errors="replace")
        literal = lambda key: (m[1] if (m := re.search(rf"\b{key}\s*=\s*['\"]([^'\"]+)['\"]", text)) else None)  # noqa: E731
        name, version = name or literal("name"), version or literal("version")
    ok = lambda value, pattern: value if isinstance(value, str) and re.fullmatch(pattern, value) else None  # noqa: E731
    return ok(name, r"[A-Za-z0-9][A-Za-z0-9._-]*"), ok(version, r"[A-Za-z0-9][A-Za-z0-9.+!_-]*")


def pack_folder(folder: Path | str) -> Path:
    """``folder`` as a deterministic sdist ``cache_dir()/"sdists"/NAME-VERSION.tar.gz`` (module docstring): the
    same bytes for the same contents. Name and version come from the package's metadata, else the folder's name
    and ``0+`` the content hash."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise PackageSourceError(f"{folder}: not a folder; pass a package's source folder or a PyPI spec NAME==VERSION")
    entries = _entries(root)
    name, version = _metadata(root)
    name = re.sub(r"[-_.]+", "_", name or re.sub(r"[^A-Za-z0-9]+", "_", root.name).strip("_") or "package").lower()
    version = version or f"0+{_content_hash(entries)[:12]}"
    top = f"{name}-{version}"
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(top, tarfile.DIRTYPE, 0o755))
        for rel, path in entries:
            if path.is_dir():
                tar.addfile(_info(f"{top}/{rel}", tarfile.DIRTYPE, 0o755))
            elif path.is_file():
                data = path.read_bytes()
                info = _info(f"{top}/{rel}", tarfile.REGTYPE, 0o755 if os.access(path, os.X_OK) else 0o644)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    out = cache_dir() / "sdists" / f"{top}.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(f"pack-{top}"):
        if not out.is_file() or out.read_bytes() != buffer.getvalue():
            tmp = out.with_name(f".{out.name}.{os.getpid()}")
            tmp.write_bytes(buffer.getvalue())
            os.replace(tmp, out)
    return out


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = kind, mode, 0, 0, 0, "", ""
    return info
