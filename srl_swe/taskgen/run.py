"""The resumable generate-and-validate job of issue 12: inject bugs into a package and keep those its tests catch.

:func:`generate` lists the clean source's files, runs (or reuses) the baseline, samples ``n`` mutations for a
seed and validates them in parallel, writing into ``out_dir``:

- ``baseline.json``: the clean run (:class:`~srl_swe.taskgen.validate.Baseline`); reused by a rerun with the
  same spec digest, tests and runs, recomputed otherwise (only while no candidate is recorded yet).
- ``candidates.jsonl``: one line per finished candidate (its mutation, verdict kind and reason, FAIL_TO_PASS,
  the PASS_TO_PASS count, seconds).
- ``kept.jsonl``: the full record of each kept one: PASS_TO_PASS too, and ``patch``, the bug as a ``git diff``
  of the clean source (``git apply`` it to the clean repo to get the buggy one).
- ``summary.json``: yield per family, counts per kind, the baseline, timings, the skipped source files, splits.
- ``tasks.jsonl`` / ``splits.json``: the kept bugs as SWE-bench instances and their train/heldout split
  (:mod:`srl_swe.taskgen.instances`), rewritten whole from ``kept.jsonl`` at the end of every run.

Resumable like ``srl-swe eval swebench`` (both use :class:`srl_swe.jsonl.JsonlLog`): each line is appended,
flushed and fsynced as its candidate finishes, a torn last line (a kill mid-write) is cut off on start, and a
rerun into the same ``out_dir`` skips the candidates already in ``candidates.jsonl``. A kept candidate's
``kept.jsonl`` line is written before its ``candidates.jsonl`` line, and a start drops ``kept.jsonl`` lines whose
candidate line is missing, so the two files agree whenever a run dies.
"""

from __future__ import annotations

import difflib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError
from srl_swe.jsonl import JsonlLog, write_atomic
from srl_swe.swebench.local_env import prepare_source
from srl_swe.swebench.specs import EnvSpec
from srl_swe.taskgen.instances import HELDOUT_FRACTION, write_tasks
from srl_swe.taskgen.mutations import FAMILIES, Mutation, SourceFiles, sample_mutations, source_files
from srl_swe.taskgen.validate import KINDS, Baseline, Verdict, run_baseline, validate_many

BASELINE, CANDIDATES, KEPT, SUMMARY = "baseline.json", "candidates.jsonl", "kept.jsonl", "summary.json"
RUNS = 2  # test runs per candidate and for the baseline (validate's default)


class GenerationError(SRLError, ValueError):
    """The job cannot run on this input (no source files, an out_dir of another spec); the message says why."""


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace"))


# --- records ---------------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Lines as git splits them: on "\\n" only (``str.splitlines`` also cuts at \\r, \\f, U+2028, ...)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def bug_patch(path: str, before: str, after: str) -> str:
    """``after`` as a unified diff of ``before`` in ``git diff`` form (a/ b/ paths, 3 lines of context, the
    "no newline at end of file" marker), which ``git apply`` applies to the clean repository."""
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(_lines(before), _lines(after), f"a/{path}", f"b/{path}"):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out) if len(out) > 1 else ""


def _record(m: Mutation, verdict: Verdict) -> dict[str, Any]:
    return {"key": m.key, "family": m.family, "file": m.file, "qualname": m.qualname, "line": m.line,
            "description": m.description, "kind": verdict.kind, "reason": verdict.reason,
            "fail_to_pass": list(verdict.fail_to_pass), "pass_to_pass_count": len(verdict.pass_to_pass),
            "seconds": round(verdict.seconds, 3)}


def _baseline_json(baseline: Baseline) -> dict[str, Any]:
    spec = baseline.spec
    return {"repo": spec.repo, "version": spec.version, "package": spec.package,
            "package_version": spec.package_version, "spec_digest": spec.digest(),
            **{k: v for k, v in asdict(baseline).items() if k != "spec"}}


def _load_baseline(path: Path, spec: EnvSpec, tests: tuple[str, ...], runtime: str) -> tuple[Baseline | None, bool]:
    """The stored baseline if it is this spec's and these tests' (else None), and whether one is stored at all."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, False
    if not isinstance(data, dict):
        return None, False
    if (data.get("spec_digest"), data.get("tests"), data.get("runs"), data.get("runtime", "local")) != (
            spec.digest(), list(tests), RUNS, runtime):
        return None, True
    try:
        return Baseline(spec, tests, tuple(data["passing"]), tuple(data["excluded"]), int(data["flaky"]),
                        int(data["failing"]), int(data["runs"]), float(data["seconds"]), runtime), True
    except (KeyError, TypeError, ValueError):
        return None, False


def _baseline(out: Path, spec: EnvSpec, tests: tuple[str, ...], have_candidates: bool,
              runtime: str) -> tuple[Baseline, bool]:
    """(baseline, whether it was reused)."""
    path = out / BASELINE
    stored, exists = _load_baseline(path, spec, tests, runtime)
    if stored is not None:
        return stored, True
    if exists and have_candidates:
        raise GenerationError(f"{out} holds candidates validated against another baseline ({path}: other spec, "
                              "tests, runs or runtime); use a new out_dir or remove that one")
    baseline = run_baseline(spec, tests=tests, runs=RUNS, runtime=runtime)  # BaselineError (a clear message) propagates
    _write_json(path, _baseline_json(baseline))
    return baseline, False


def _summary(spec: EnvSpec, seed: int, n: int, sample: list[Mutation], done: dict[str, dict[str, Any]],
             baseline: Baseline, reused: bool, skipped: dict[str, str], wall: float) -> dict[str, Any]:
    records = [done[m.key] for m in sample if m.key in done]
    kinds = Counter(r["kind"] for r in records)
    families: dict[str, dict[str, Any]] = {}
    for family in FAMILIES:
        tried = sum(r["family"] == family for r in records)
        kept = sum(r["family"] == family and r["kind"] == "kept" for r in records)
        if tried:
            families[family] = {"tried": tried, "kept": kept, "yield": round(kept / tried, 3)}
    return {
        "repo": spec.repo, "version": spec.version, "package": spec.package,
        "package_version": spec.package_version, "spec_digest": spec.digest(), "seed": seed, "n": n,
        "sampled": len(sample), "validated": len(records), "kept": kinds.get("kept", 0),
        "families": families, "kinds": {k: kinds[k] for k in KINDS if kinds.get(k)},
        "baseline": {"tests": list(baseline.tests), "passing": len(baseline.passing), "flaky": baseline.flaky,
                     "failing": baseline.failing, "runs": baseline.runs, "seconds": round(baseline.seconds, 3),
                     "runtime": baseline.runtime,
                     "reused": reused},
        "validation_seconds": round(sum(r["seconds"] for r in records), 3),
        "wall_seconds": round(wall, 3), "skipped_files": dict(sorted(skipped.items())),
    }


def generate(spec: EnvSpec, out_dir: Path | str, *, n: int, seed: int, workers: int = 4,
             tests: Sequence[str] = (), only: Sequence[str] = (), timeout: float | None = None,
             heldout: float = HELDOUT_FRACTION, runtime: str = "local", progress: bool = True) -> dict[str, Any]:
    """Sample ``n`` bugs of ``spec``'s clean source for ``seed``, validate them with ``workers`` in parallel
    against ``tests`` (() is the whole suite; ``timeout`` per candidate run, default from the baseline), only in
    the source files ``only`` (repo-relative; () is every source file; a different ``only`` samples differently), on
    ``runtime`` (``local`` or ``docker``: :mod:`srl_swe.taskgen.validate`) and
    record the results in ``out_dir`` (module docstring); resumes what an earlier run into ``out_dir`` left.
    Returns the summary (also ``summary.json``). :class:`GenerationError` when the source has no Python files
    to mutate; :class:`~srl_swe.taskgen.validate.BaselineError` when the clean suite does not run."""
    start = time.monotonic()
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    out, tests = Path(out_dir), tuple(tests)
    out.mkdir(parents=True, exist_ok=True)
    candidates_log, kept_log = JsonlLog(out / CANDIDATES, "key"), JsonlLog(out / KEPT, "key")
    candidates_log.repair()
    kept_log.repair()
    done = candidates_log.read()
    kept_log.keep_only({k for k, r in done.items() if r.get("kind") == "kept"})

    repo = prepare_source(spec)
    sources = source_files(repo)
    if only:
        unknown = sorted(set(only) - set(sources.files))
        if unknown:
            raise GenerationError(f"{spec.package} {spec.package_version}: no source file {', '.join(unknown)} to "
                                  f"mutate (known: {', '.join(sorted(sources.files)[:20])})")
        sources = SourceFiles({p: t for p, t in sources.files.items() if p in only}, sources.skipped)
    if not sources.files:
        why = "; ".join(f"{p}: {r}" for p, r in sorted(sources.skipped.items())[:5])
        raise GenerationError(f"{spec.package} {spec.package_version}: no Python source file to mutate in {repo}"
                              + (f" (skipped: {why})" if why else " (only tests, docs, setup.py or none at all)"))
    baseline, reused = _baseline(out, spec, tests, bool(done), runtime)
    sample = sample_mutations(sources.files, n, seed)
    by_key = {m.key: m for m in sample}
    todo = [m for m in sample if m.key not in done]

    def on_result(key: Any, verdict: Verdict) -> None:
        m = by_key[key]
        record = _record(m, verdict)
        if verdict.kept:  # kept first: a kill between the two lines leaves an orphan kept line, dropped on start
            kept_log.append({**record, "repo": spec.repo, "version": spec.version,
                             "pass_to_pass": list(verdict.pass_to_pass), "failure": verdict.failure,
                             "patch": bug_patch(m.file, m.source, m.mutated)})
        candidates_log.append(record)
        done[key] = record

    if todo:
        validate_many(spec, baseline, [(m.key, {m.file: m.mutated}) for m in todo], workers=workers,
                      timeout=timeout, runs=RUNS, progress=progress, on_result=on_result)
    summary = _summary(spec, seed, n, sample, done, baseline, reused, sources.skipped, time.monotonic() - start)
    summary["only"] = sorted(only)
    summary["splits"] = write_tasks(spec, out, kept_log.read(), list(tests), heldout, progress)
    _write_json(out / SUMMARY, summary)
    return summary
