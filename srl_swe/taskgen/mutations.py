"""Procedural bug injection (SWE-smith's LM-free strategies, issue 12): the pure mutation engine.

``enumerate_mutations`` lists every candidate of every family (``families.FAMILIES``) in one file, each
changing exactly one site; ``sample_mutations`` draws a seeded, family- and file-balanced set of them whose
mutated source compiles; ``source_files`` gathers a package's non-test sources. Nothing here runs tests.

A :class:`Mutation` holds the original source and the edits, not the mutated text: ``mutated`` applies them
on demand, so enumerating thousands of candidates costs no copies of the file. Inputs are untrusted: files are
bounded in size, parsed by CPython first (libcst's native parser crashes the process, rather than raising, on
some pathological nesting that CPython rejects or that the depth bound below catches), and candidates are
capped per file.
"""

from __future__ import annotations

import ast
import hashlib
import os
import random
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper

from srl_swe.errors import SRLError
from srl_swe.taskgen.families import FAMILIES, SiteFinder

MAX_FILE_BYTES = 1 << 20
MAX_SITES_PER_FILE = 5000
MAX_FILES = 5000
# libcst nests what CPython keeps flat (`a and b and ...` is one BoolOp there, `import a.b.c` one name), and
# its native parser crashes the process some way past a few thousand levels; no package's source is this deep.
MAX_DEPTH = 500
# Build output (build/lib holds a second copy of the package) and folders of non-package code.
SKIP_DIRS = {"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks", "build", "dist",
             "site-packages", "__pycache__"}

__all__ = ["FAMILIES", "Mutation", "SourceError", "SourceFiles", "enumerate_mutations", "sample_mutations",
           "source_files"]


class SourceError(SRLError, ValueError):
    """A source file the engine will not mutate: too big, not valid Python, too deeply nested."""


@dataclass(frozen=True)
class Mutation:
    """One injected bug: ``family`` at ``line`` (1-based, in the original) of ``qualname`` in ``file``."""

    family: str
    file: str
    qualname: str  # the enclosing def's __qualname__ ("Schema.load", "f.<locals>.g"), or "<module>"
    line: int
    description: str  # e.g. "`<` -> `<=`"
    edits: tuple[tuple[int, int, str], ...]  # (start, end, replacement) offsets into `source`, sorted, disjoint
    source: str = field(repr=False)

    @property
    def mutated(self) -> str:
        out, last = [], 0
        for start, end, text in self.edits:
            out += [self.source[last:start], text]
            last = end
        return "".join([*out, self.source[last:]])

    @property
    def key(self) -> str:
        """Stable across runs and machines: the family, the file and the edits (positions and replacements)."""
        return hashlib.sha256(repr((self.family, self.file, self.edits)).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SourceFiles:
    files: dict[str, str]  # relative POSIX path -> source
    skipped: dict[str, str]  # relative path -> why


def _depth(tree: ast.AST) -> int:
    """How deep libcst's tree of this module would be, near enough: CPython's, plus the chains it keeps flat."""
    deepest, stack = 0, [(tree, 1)]
    while stack and deepest <= MAX_DEPTH:  # iterative: the tree may be deeper than Python's recursion limit
        node, depth = stack.pop()
        if isinstance(node, ast.BoolOp):
            depth += len(node.values) - 1
        elif isinstance(node, (ast.alias, ast.ImportFrom)):  # a dotted name is a string here, a chain there
            depth += ((node.name if isinstance(node, ast.alias) else node.module) or "").count(".")
        deepest = max(deepest, depth)
        stack += [(child, depth + 1) for child in ast.iter_child_nodes(node)]
    return deepest


def _parse(source: str, path: str) -> tuple[cst.Module, int]:
    """The module and where its text starts in ``source`` (after a BOM), or :class:`SourceError`."""
    if len(source) > MAX_FILE_BYTES:
        raise SourceError(f"{path}: {len(source)} characters, over the {MAX_FILE_BYTES} limit")
    offset = 1 if source.startswith("\ufeff") else 0  # a BOM: Python reads past it in a file, not in a str
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are the package's business
            tree = ast.parse(source[offset:], path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise SourceError(f"{path}: not valid Python ({type(exc).__name__}: {exc})") from None
    if _depth(tree) > MAX_DEPTH:
        raise SourceError(f"{path}: nested more than {MAX_DEPTH} levels deep")
    try:
        module = cst.parse_module(source[offset:])
    except (cst.ParserSyntaxError, RecursionError) as exc:
        raise SourceError(f"{path}: libcst cannot parse it: {str(exc).strip().splitlines()[0]}") from None
    if module.code != source[offset:]:  # offsets into the source are only right if libcst reproduces it
        raise SourceError(f"{path}: libcst does not reproduce it exactly (a form feed or lone carriage return?)")
    return module, offset


def enumerate_mutations(source: str, path: str) -> list[Mutation]:
    """Every candidate of every family in one file, in source order (ties in FAMILIES order)."""
    module, offset = _parse(source, path)
    finder = SiteFinder(module, source, offset, MAX_SITES_PER_FILE)
    try:
        MetadataWrapper(module, unsafe_skip_copy=True).visit(finder)
    except RecursionError:
        raise SourceError(f"{path}: too deeply nested for libcst's visitor") from None
    seen, out = set(), []
    for site in sorted(finder.sites, key=lambda s: (s.edits[0][0], FAMILIES.index(s.family), s.edits)):
        mutation = Mutation(site.family, path, site.qualname, site.line, site.description, site.edits, source)
        if mutation.key not in seen and mutation.mutated != source:
            seen.add(mutation.key)
            out.append(mutation)
    return out


def _compiles(source: str, path: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source.removeprefix("\ufeff"), path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def sample_mutations(files: dict[str, str], n: int, seed: int) -> list[Mutation]:
    """Up to ``n`` mutations, the same ones for the same seed: families take turns (in a seeded order), and each
    family's queue takes turns over the files (each file's candidates shuffled), so no family or file dominates.
    Kept only if the mutated source differs from the original, compiles, and is not one already kept."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    rng = random.Random(seed)
    by_family: dict[str, dict[str, list[Mutation]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(files):
        for mutation in enumerate_mutations(files[path], path):
            by_family[mutation.family][path].append(mutation)
    queues = []
    for family in FAMILIES:
        per_file = by_family.get(family, {})
        paths = sorted(per_file)
        rng.shuffle(paths)
        for path in paths:
            rng.shuffle(per_file[path])
        longest = max((len(v) for v in per_file.values()), default=0)
        queues.append([per_file[p][i] for i in range(longest) for p in paths if i < len(per_file[p])][::-1])
    rng.shuffle(queues)
    out: list[Mutation] = []
    seen: set[tuple[str, str]] = set()
    while len(out) < n and any(queues):
        for queue in queues:
            if not queue or len(out) >= n:
                continue
            mutation = queue.pop()
            mutated = mutation.mutated
            digest = (mutation.file, hashlib.sha256(mutated.encode("utf-8", "surrogatepass")).hexdigest())
            if mutated != mutation.source and digest not in seen and _compiles(mutated, mutation.file):
                seen.add(digest)
                out.append(mutation)
    return out


def _excluded(rel: Path) -> bool:
    name = rel.name
    return (name in ("conftest.py", "setup.py") or name.startswith("test_") or name.endswith("_test.py")
            or any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]) or name.startswith("."))


def source_files(root: Path) -> SourceFiles:
    """The package's Python sources under ``root`` (tests, setup.py, docs, examples and hidden folders left
    out), in path order; files that are too big, unreadable, not UTF-8, not Python or symlinks are ``skipped``."""
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: not a directory")
    files: dict[str, str] = {}
    skipped: dict[str, str] = {}
    found = 0
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked folders are not followed
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root)
            if not name.endswith(".py") or _excluded(rel):
                continue
            key = rel.as_posix()
            found += 1
            if found > MAX_FILES:
                skipped[key] = f"more than {MAX_FILES} source files"
                continue
            try:
                if path.is_symlink():
                    skipped[key] = "a symlink"
                    continue
                if (size := path.stat().st_size) > MAX_FILE_BYTES:
                    skipped[key] = f"{size} bytes, over the {MAX_FILE_BYTES} limit"
                    continue
                text = path.read_bytes().decode("utf-8")
                _parse(text, key)
            except OSError as exc:
                skipped[key] = f"unreadable: {exc.strerror or exc}"
            except UnicodeDecodeError as exc:
                skipped[key] = f"not UTF-8 ({exc.reason} at byte {exc.start})"
            except SourceError as exc:
                skipped[key] = str(exc).removeprefix(f"{key}: ")
            else:
                files[key] = text
    return SourceFiles(files, skipped)
