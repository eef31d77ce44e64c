"""Validate injected bugs by running the package's own tests (issue 12): keep a bug only if tests catch it.

:func:`run_baseline` runs the test command on the clean source (``runs`` times) and records which tests pass in
every run; the others (failing, skipped, flaky) never count. :func:`validate` writes one candidate's changed files
into a fresh copy of the source, runs the same tests (``runs`` times, each in a fresh copy) and gives a
:class:`Verdict`: kept iff at least one baseline-passing test fails in every run (FAIL_TO_PASS) and the runs agree;
the other baseline-passing tests are its PASS_TO_PASS. :func:`validate_many` does that for many candidates in
parallel threads (each test run is a subprocess), drops duplicates (same resulting source) without running them,
and turns any error of one candidate into a dropped verdict with the reason, never a crash of the run.

Test names come from swebench's own log parser named by ``spec.log_parser``, so they are exactly the names the
SWE-bench harness grades later. Every test run has a timeout; the runtime caps the output it keeps.

Runtimes (:data:`RUNTIMES`): ``local`` (the default: a temporary copy of the cached source, the cached test venv;
see :mod:`srl_swe.swebench.local_env`) runs the package's tests and the mutated code on the host, unisolated, which
is acceptable for a pinned PyPI sdist and mechanical mutations, not for model-written code; ``docker`` runs each
test run in a fresh container of the package's environment image (``ensure_env_image``, built once) with the
grading sandbox's limits: slower to start, isolated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from srl_swe.errors import SRLError
from srl_swe.runtime.base import REPO_DIR, Runtime
from srl_swe.runtime.local import LocalRuntime
from srl_swe.swebench.local_env import prepare_source, prepare_spec_env
from srl_swe.swebench.specs import EnvSpec
from srl_swe.taskgen.statement import failure_excerpt

PASSED = "PASSED"  # swebench.harness.constants.TestStatus.PASSED (the harness's "success")
#: A candidate's timeout when none is given: this many times the slowest baseline run, at least MIN_TIMEOUT s. A bug
#: may legitimately slow tests down (hundreds of failing tests print hundreds of tracebacks) and a loaded machine
#: slows every run (at load 8 on 2 cores marshmallow's suite took 15 s instead of 4 and a 30 s limit dropped
#: 11 of 69 candidates as hangs); a real hang must still end.
TIMEOUT_FACTOR, MIN_TIMEOUT = 10.0, 120.0
RUNTIMES = ("local", "docker")
KINDS = ("kept", "no_change", "duplicate", "bad_path", "timeout", "does_not_import", "no_test_fails",
         "breaks_too_many", "flaky", "error")
_ERROR_LINE = re.compile(r"^E\s+(\S*(?:Error|Exception)\b.*)$", re.M)


class ValidationError(SRLError, RuntimeError):
    """Bug validation cannot run at all (as opposed to one candidate being dropped)."""


class BaselineError(ValidationError):
    """The clean package does not build, its suite hangs or no test passes; the message says what to do."""


@dataclass(frozen=True)
class Baseline:
    """The clean source's test results: ``passing`` passed in every run; ``excluded`` are the other tests seen
    (``flaky``: passed in some run only; ``failing``: never passed, skipped included). ``seconds``: slowest run."""

    spec: EnvSpec
    tests: tuple[str, ...]  # what was passed to the test command; () is the whole suite
    passing: tuple[str, ...]
    excluded: tuple[str, ...]
    flaky: int
    failing: int
    runs: int
    seconds: float
    runtime: str = "local"  # where the tests ran; candidates are validated on the same one

    def default_timeout(self) -> float:
        return max(MIN_TIMEOUT, TIMEOUT_FACTOR * self.seconds)


@dataclass(frozen=True)
class Verdict:
    """One candidate's result. ``kind`` is one of :data:`KINDS` (for counting), ``reason`` the readable why."""

    kept: bool
    kind: str
    reason: str
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()
    seconds: float = 0.0
    failure: str = ""  # what pytest printed for the failing tests (statement.failure_excerpt), kept ones only


@dataclass(frozen=True)
class _Run:
    status: dict[str, str] = field(default_factory=dict)
    timed_out: bool = False
    output: str = ""
    seconds: float = 0.0


def _parser(spec: EnvSpec):
    # Imported here: swebench is slow to import and only needed once tests run.
    from swebench.harness.log_parsers import PARSER_REGISTRY

    try:
        return PARSER_REGISTRY[spec.log_parser]
    except KeyError:
        raise ValidationError(f"{spec.repo} {spec.version}: swebench has no log parser {spec.log_parser!r}; "
                              "fix the EnvSpec's log_parser") from None


def _command(spec: EnvSpec, tests: Sequence[str]) -> str:
    return " ".join([spec.test_cmd, *(shlex.quote(t) for t in tests)])


def _run_tests(spec: EnvSpec, sandbox: Callable[[], Runtime], changed: Mapping[str, str], tests: Sequence[str],
               timeout: float) -> _Run:
    """One test run in a fresh sandbox at the clean source with ``changed`` written over it."""
    with sandbox() as rt:
        for path, text in changed.items():
            rt.write_file(f"{REPO_DIR}/{path}", text)
        res = rt.execute(_command(spec, tests), timeout=timeout)
    if res.timed_out:
        return _Run(timed_out=True, output=res.output, seconds=res.duration)
    return _Run(_parser(spec)(res.output, None), False, res.output, res.duration)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _what(spec: EnvSpec) -> str:
    return f"{spec.package} {spec.package_version} ({spec.repo} {spec.version})"


def _sandboxes(spec: EnvSpec, runtime: str) -> Callable[[], Runtime]:
    """A maker of fresh sandboxes at the clean source of ``spec`` (see :data:`RUNTIMES`)."""
    if runtime not in RUNTIMES:
        raise ValidationError(f"validation runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    try:
        if runtime == "local":
            env = prepare_spec_env(spec)
            return lambda: LocalRuntime(env.repo_dir, env=env.env)
        from srl_swe.runtime import make_runtime
        from srl_swe.swebench.grading import GRADING_LIMITS
        from srl_swe.swebench.images import ensure_env_image

        image = ensure_env_image(spec)
        return lambda: make_runtime("docker", image=image, limits=GRADING_LIMITS)
    except SRLError as exc:  # SandboxError from pip/git/docker build, with its own hint
        raise BaselineError(f"{_what(spec)}: the test environment does not build: {exc}") from exc


def run_baseline(spec: EnvSpec, *, tests: Sequence[str] = (), timeout: float = 1800, runs: int = 2,
                 runtime: str = "local") -> Baseline:
    """Run the tests of the clean source ``runs`` times on ``runtime`` (see :class:`Baseline`);
    :class:`BaselineError` when the environment does not build, a run times out, or no test passes in every run."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    sandbox, tests = _sandboxes(spec, runtime), tuple(tests)
    results: list[_Run] = []
    for _ in range(runs):
        run = _run_tests(spec, sandbox, {}, tests, timeout)
        if run.timed_out:
            raise BaselineError(f"{_what(spec)}: the clean test suite did not finish within {timeout:g} s; "
                                "raise timeout= or pass a subset of the suite as tests=")
        results.append(run)
    seen = set().union(*(r.status for r in results))
    passing = {t for t in seen if all(r.status.get(t) == PASSED for r in results)}
    ever_passed = {t for t in seen if any(r.status.get(t) == PASSED for r in results)}
    if not passing:
        raise BaselineError(f"{_what(spec)}: no test passes on the clean source (`{_command(spec, tests)}`, "
                            f"{len(seen)} results); check the EnvSpec's test_cmd, pythonpath and test_deps. "
                            f"Output tail:\n{_tail(results[-1].output)}")
    return Baseline(spec, tests, tuple(sorted(passing)), tuple(sorted(seen - passing)),
                    flaky=len(ever_passed - passing), failing=len(seen - ever_passed), runs=runs,
                    seconds=max(r.seconds for r in results), runtime=runtime)


def _bad_path(path: str) -> str | None:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or (p.parts and p.parts[0] == ".git"):
        return f"{path!r} is not a path inside the repository"
    return None


def _unchanged(spec: EnvSpec, changed: Mapping[str, str]) -> bool:
    def same(path: str, text: str) -> bool:
        file = prepare_source(spec) / path
        return file.is_file() and file.read_bytes() == text.encode("utf-8", errors="surrogateescape")

    return all(same(p, t) for p, t in changed.items())


def _import_error(output: str) -> str:
    found = _ERROR_LINE.findall(output)
    return found[0].strip() if found else _tail(output, 1) or "no output"


def validate(spec: EnvSpec, baseline: Baseline, changed_files: Mapping[str, str], *, timeout: float | None = None,
             runs: int = 2, max_fail_to_pass: int | None = None) -> Verdict:
    """Run the baseline's tests on the source with ``changed_files`` (repo-relative path -> new text) ``runs``
    times and judge it (module docstring). ``timeout`` per run (default :meth:`Baseline.default_timeout`);
    ``max_fail_to_pass`` drops a bug that breaks more tests than that (a broken core, not a task)."""
    start = time.monotonic()

    def verdict(kind: str, reason: str, f2p: Sequence[str] = (), p2p: Sequence[str] = ()) -> Verdict:
        return Verdict(kind == "kept", kind, reason, tuple(f2p), tuple(p2p), time.monotonic() - start)

    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if bad := next(filter(None, map(_bad_path, changed_files)), None):
        return verdict("bad_path", bad)
    sandbox = _sandboxes(spec, baseline.runtime)
    if not changed_files or _unchanged(spec, changed_files):
        return verdict("no_change", "no change: the files equal the clean source")
    timeout = baseline.default_timeout() if timeout is None else timeout
    passing = set(baseline.passing)
    failed_sets: list[frozenset[str]] = []
    run = _Run()
    for _ in range(runs):
        run = _run_tests(spec, sandbox, changed_files, baseline.tests, timeout)
        if run.timed_out:  # one hang is enough to drop it; a second run would only hang again
            return verdict("timeout", f"timeout: the tests did not finish within {timeout:g} s")
        if not passing & run.status.keys():
            return verdict("does_not_import", f"does not import (no test ran): {_import_error(run.output)}")
        failed_sets.append(frozenset(t for t in passing if run.status.get(t) != PASSED))
        if not failed_sets[-1]:  # kept needs a failure in every run: one clean run settles it (most candidates)
            return verdict("no_test_fails", "no test fails")
    if len(set(failed_sets)) > 1:
        differ = set().union(*failed_sets) - set.intersection(*map(set, failed_sets))
        return verdict("flaky", f"flaky: the {runs} runs disagree on {len(differ)} tests")
    failed = failed_sets[0]
    if not failed:
        return verdict("no_test_fails", "no test fails")
    f2p, p2p = sorted(failed), sorted(passing - failed)
    if max_fail_to_pass is not None and len(failed) > max_fail_to_pass:
        return verdict("breaks_too_many", f"breaks {len(failed)} tests (more than {max_fail_to_pass})", f2p, p2p)
    kept = verdict("kept", f"{len(f2p)} tests fail, {len(p2p)} still pass", f2p, p2p)
    return dataclasses.replace(kept, failure=failure_excerpt(run.output))


def _source_key(changed: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(changed):
        digest.update(f"{len(path)}:{path}{len(changed[path])}:".encode() + changed[path].encode(errors="replace"))
    return digest.hexdigest()


def validate_many(spec: EnvSpec, baseline: Baseline, candidates: Sequence[tuple[Hashable, Mapping[str, str]]], *,
                  workers: int = 4, timeout: float | None = None, runs: int = 2,
                  max_fail_to_pass: int | None = None, progress: bool = True,
                  on_result: Callable[[Hashable, Verdict], None] | None = None) -> list[tuple[Hashable, Verdict]]:
    """:func:`validate` for every ``(key, changed_files)`` in ``workers`` threads; results in input order. A
    candidate with the same resulting source as an earlier one is a ``duplicate`` (not run); an exception in one
    candidate becomes its ``error`` verdict. :func:`count_kinds` summarises the result. ``on_result(key,
    verdict)`` is called once per candidate as soon as its verdict is known (in the calling thread, one at a time;
    an exception there stops the run like Ctrl-C), so a caller can record results while the others still run."""
    from tqdm import tqdm

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    verdicts: list[Verdict | None] = [None] * len(candidates)
    first: dict[str, Hashable] = {}
    todo: list[int] = []
    for i, (key, changed) in enumerate(candidates):
        try:
            source = _source_key(changed)
        except Exception as exc:  # a malformed candidate (not path -> text) is its own verdict, not a crash
            verdicts[i] = Verdict(False, "error", f"error: {type(exc).__name__}: {exc}")
            continue
        if source in first:
            verdicts[i] = Verdict(False, "duplicate", f"duplicate of {first[source]!r} (same resulting source)")
        else:
            first[source] = key
            todo.append(i)
    if on_result is not None:
        for i, verdict in enumerate(verdicts):
            if verdict is not None:
                on_result(candidates[i][0], verdict)

    def one(i: int) -> Verdict:
        start = time.monotonic()
        try:
            return validate(spec, baseline, candidates[i][1], timeout=timeout, runs=runs,
                            max_fail_to_pass=max_fail_to_pass)
        except Exception as exc:  # one candidate's problem is its verdict; the run goes on
            return Verdict(False, "error", f"error: {type(exc).__name__}: {exc}", seconds=time.monotonic() - start)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="srl-swe-validate") as pool, \
            tqdm(total=len(todo), desc=f"validate {spec.package}", unit="bug", disable=not progress) as bar:
        futures = {pool.submit(one, i): i for i in todo}
        try:
            for future in as_completed(futures):
                i = futures[future]
                verdicts[i] = future.result()
                if on_result is not None:
                    on_result(candidates[i][0], verdicts[i])
                bar.update(1)
                bar.set_postfix(kept=sum(bool(v and v.kept) for v in verdicts))
        except BaseException:  # Ctrl-C: do not start the queued candidates (running ones end with their timeout)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return [(key, verdict) for (key, _), verdict in zip(candidates, verdicts, strict=True)]


def count_kinds(results: Sequence[tuple[Hashable, Verdict]]) -> Counter:
    """How many verdicts of each kind (kept, timeout, ...): the counts a generation run reports."""
    return Counter(verdict.kind for _, verdict in results)
