"""How to build and grade a task environment without a registry, per (repository, version).

swebench >= 5 grades a dataset record only when it carries ``image``, ``eval_script``, ``log_parser`` and
``eval_type``. The official datasets have them and point at images on Docker Hub. Where no registry is
reachable, this module fills them for the repositories the project knows how to build: an :class:`EnvSpec`
says which PyPI sdist is the source at the task's base, which test dependencies to install and how to run
the tests. :func:`harness_record` turns an instance into the record the real harness grades.

Why ``HEAD`` and not ``base_commit``: the task source is the PyPI sdist committed into a fresh git
repository (:mod:`srl_swe.swebench.local_env`), so the upstream commit ids do not exist in it; its single
commit *is* the base. The eval script therefore resets test files to ``HEAD``. Nothing commits inside
a grading container (the harness applies the patch to the working tree), so ``HEAD`` stays the base.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import MISSING, asdict, dataclass

from srl_swe.errors import SRLError
from srl_swe.runtime.base import REPO_DIR

#: The fields swebench >= 5 needs besides the classic SWE-bench ones.
HARNESS_FIELDS = ("image", "eval_script", "log_parser", "eval_type")
# Copies of swebench.harness.constants (importing swebench here would make every import slow);
# tests/test_swebench_grading.py checks they are equal.
START_TEST_OUTPUT = ">>>>> Start Test Output"
END_TEST_OUTPUT = ">>>>> End Test Output"
HEREDOC = "EOF_114329324912"  # the harness's own delimiter for patches inlined in eval scripts
NON_TEST_EXTS = (".json", ".png", "csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml")
#: Parsers that split a result line on whitespace and keep the second word as the test name.
WHITESPACE_SPLIT_PARSERS = frozenset({"parse_log_pytest", "parse_log_marshmallow", "parse_log_pytest_options"})
#: Record fields of a generated task: the bug as a diff of the clean source, and what to pass to the test command.
SETUP_PATCH, TEST_ARGS = "setup_patch", "test_args"


class SpecError(SRLError, LookupError):
    """An instance cannot be graded or built here; the message says what to pass instead."""


class NoEnvironmentError(SpecError):
    """No way to make the instance's environment here (no build spec for its repo and version, and no image): an
    infrastructure failure, not the record's or the patch's (:mod:`srl_swe.swebench.verdicts`)."""


@dataclass(frozen=True)
class EnvSpec:
    """One repository version's environment. ``test_deps`` is the full pinned closure so the image and the
    local venv get the same wheels on every machine, and the build hash changes whenever it changes."""

    repo: str
    version: str
    package: str  # PyPI name of the sdist that is the source at the task's base
    package_version: str
    sdist_sha256: str  # PyPI files are immutable; a mismatch means a corrupt or foreign download
    test_deps: tuple[str, ...]
    python: str = "3.11"  # Debian bookworm's python3 (the image); the local venv uses the host's
    pythonpath: str = ""  # relative to the repo root ("src" for src layouts); empty: repo root is enough
    test_cmd: str = "pytest -rA"
    log_parser: str = "parse_log_pytest"
    apt_packages: tuple[str, ...] = ("python3", "python3-venv", "git", "ca-certificates", "patch")

    def digest(self) -> str:
        """A short content hash: any change to the spec gives a new source/venv cache entry and image."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data, source: str = "<env_spec>") -> EnvSpec:
        """A spec carried in a dataset record (a generated task's ``env_spec``), checked field by field: its
        values end up in a Dockerfile, a pip command line and an eval script, and a record is hostile input."""
        if not isinstance(data, dict):
            raise SpecError(f"{source}: env_spec must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise SpecError(f"{source}: env_spec has unknown fields {sorted(unknown)}")
        values = {}
        for name, f in cls.__dataclass_fields__.items():
            if name not in data:
                if f.default is MISSING:
                    raise SpecError(f"{source}: env_spec lacks {name!r}")
                continue
            value, rule = data[name], _FIELD_RULES[name]
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list) != (name in _LIST_FIELDS) or not all(
                    isinstance(v, str) and rule.fullmatch(v) for v in items):
                raise SpecError(f"{source}: env_spec field {name!r} = {str(value)[:200]!r} is not allowed "
                                f"(expected {'a list of ' if name in _LIST_FIELDS else ''}{rule.pattern!r})")
            values[name] = tuple(value) if name in _LIST_FIELDS else value
        if ".." in values.get("pythonpath", "").split("/"):
            raise SpecError(f"{source}: env_spec field 'pythonpath' = {values['pythonpath']!r} leaves the repository")
        if values.get("log_parser", "parse_log_pytest") not in _PARSERS:
            raise SpecError(f"{source}: env_spec log_parser {values['log_parser']!r} is not one of {_PARSERS}")
        return cls(**values)


_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_FIELD_RULES = {
    "repo": re.compile(rf"{_NAME}/{_NAME}"), "version": re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}"),
    "package": re.compile(_NAME), "package_version": re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_!-]{0,63}"),
    "sdist_sha256": re.compile(r"[0-9a-f]{64}"),
    "test_deps": re.compile(rf"{_NAME}(\[{_NAME}(,{_NAME})*\])?==[A-Za-z0-9.+_!-]{{1,64}}"),
    "python": re.compile(r"3\.[0-9]{1,2}"), "pythonpath": re.compile(r"|\.|[A-Za-z0-9_][A-Za-z0-9._/-]{0,99}"),
    "test_cmd": re.compile(r"pytest( -[A-Za-z]+| --[a-z][a-z-]*(=[A-Za-z0-9._,:-]+)?)*"),
    "log_parser": re.compile(r"parse_log_[a-z0-9_]+"), "apt_packages": re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}"),
}
_LIST_FIELDS = ("test_deps", "apt_packages")
#: Log parsers that read pytest's -rA summary (the test commands a record may name are pytest ones).
_PARSERS = ("parse_log_pytest", "parse_log_pytest_options", "parse_log_pytest_v2", "parse_log_marshmallow")


# Checked on Python 3.11: marshmallow 3.0.0 (912 tests) and 3.13.0 (1,114 tests) all pass with these, and
# the gold and test patches of -1359 / -1867 apply to the sdists. setup.py's "tests" extra is
# pytest, pytz, simplejson; the rest is pytest's own closure.
_MARSHMALLOW_DEPS = (
    "pytest==9.2.0", "pluggy==1.7.0", "iniconfig==2.3.1", "packaging==26.3", "pygments==2.21.0",
    "pytz==2026.6", "simplejson==4.3.0",
)
SPECS: dict[tuple[str, str], EnvSpec] = {
    ("marshmallow-code/marshmallow", "3.0"): EnvSpec(
        "marshmallow-code/marshmallow", "3.0", "marshmallow", "3.0.0",
        "fa2d8a4b61d09b0e161a14acc5ad8ab7aaaf1477f3dd52819ddd6c6c8275733a", _MARSHMALLOW_DEPS,
        pythonpath="src", log_parser="parse_log_marshmallow"),
    ("marshmallow-code/marshmallow", "3.13"): EnvSpec(
        "marshmallow-code/marshmallow", "3.13", "marshmallow", "3.13.0",
        "c67929438fd73a2be92128caa0325b1b5ed8b626d91a094d2f7f2771bf1f1c0e", _MARSHMALLOW_DEPS,
        pythonpath="src", log_parser="parse_log_marshmallow"),
}


def get_spec(repo: str, version: str) -> EnvSpec | None:
    return SPECS.get((repo, str(version)))


def find_spec(instance) -> EnvSpec | None:
    """The spec a record carries (``env_spec``: a generated task, see :mod:`srl_swe.taskgen`), else the one in
    :data:`SPECS` for its repo and version, else ``None``. A malformed ``env_spec`` raises :class:`SpecError`."""
    carried = instance.raw.get("env_spec")
    if carried is not None:
        spec = EnvSpec.from_dict(carried, source=instance.instance_id)
        if (spec.repo, spec.version) != (instance.repo, instance.version):
            raise SpecError(f"{instance.instance_id}: env_spec is for {spec.repo} {spec.version}, the record for "
                            f"{instance.repo} {instance.version}")
        return spec
    return get_spec(instance.repo, instance.version)


def setup_patch(instance) -> str:
    """The diff a generated task applies to its spec's clean source to get its base (its bug); "" for others."""
    value = instance.raw.get(SETUP_PATCH) or ""
    if not isinstance(value, str):
        raise SpecError(f"{instance.instance_id}: {SETUP_PATCH} must be a string (a git diff)")
    return value


def spec_for(instance) -> EnvSpec:
    """The instance's spec, or :class:`SpecError` saying how to get one."""
    spec = find_spec(instance)
    if spec is None:
        known = ", ".join(f"{r} {v}" for r, v in sorted(SPECS))
        raise NoEnvironmentError(
            f"{instance.instance_id}: no build spec for {instance.repo} {instance.version or '(no version)'} "
            f"(known: {known}); use the docker runtime with the instance's published image, or add an EnvSpec "
            "to srl_swe.swebench.specs.SPECS"
        )
    return spec


def image_name(instance_id: str) -> str:
    """The harness's instance image name (what ``swebench`` pulls when Docker Hub is reachable)."""
    return f"swebench/sweb.eval.x86_64.{instance_id.replace('__', '_1776_')}:latest".lower()


@dataclass(frozen=True)
class PatchFiles:
    existing: tuple[str, ...]  # files the patch changes that exist at HEAD (reset with git checkout)
    created: tuple[str, ...]  # files the patch creates (removed to reset)
    tests: tuple[str, ...]  # what to pass to the test command: the patched files that are tests


def patch_files(test_patch: str) -> PatchFiles:
    """The files a ``git diff`` touches, split so the eval script can reset them whatever their state."""
    existing, created, tests = [], [], []
    for block in re.split(r"^(?=diff --git )", test_patch, flags=re.M):
        head = re.match(r"diff --git a/(\S+) b/(\S+)", block)
        if not head:
            continue
        old, new = head.groups()
        header = block.split("\n@@", 1)[0]
        if re.search(r"^new file mode", header, re.M):
            created.append(new)
        else:
            existing.append(old)
        if not re.search(r"^deleted file mode", header, re.M) and not new.endswith(NON_TEST_EXTS):
            tests.append(new)
    return PatchFiles(tuple(existing), tuple(created), tuple(tests))


def _quote(paths) -> str:
    return " ".join(shlex.quote(p) for p in paths)


def _script_head(spec: EnvSpec, repo_dir: str) -> list[str]:
    """The first lines of every eval script: strict bash in the repository, the spec's import root on the path."""
    lines = ["#!/bin/bash", "set -uxo pipefail", f"cd {shlex.quote(repo_dir)}"]
    if spec.pythonpath:
        lines.append(f'export PYTHONPATH="$PWD/{spec.pythonpath}"')
    return lines


def make_eval_script(instance, spec: EnvSpec, repo_dir: str = REPO_DIR) -> str:
    """The harness-shaped eval script: reset the test files, apply ``test_patch``, run the tests between
    the Start/End markers (the test command right before the End marker, where the harness records its
    exit code), reset the test files again. A generated task (a record with ``test_args``, no ``test_patch``)
    runs its own suite instead: :func:`_suite_script`."""
    if not instance.test_patch.strip() and TEST_ARGS in instance.raw:
        return _suite_script(instance, spec, repo_dir)
    if not instance.test_patch.strip():
        raise SpecError(f"{instance.instance_id}: the record has no test_patch, so there are no tests to run")
    if HEREDOC in instance.test_patch:
        raise SpecError(f"{instance.instance_id}: test_patch contains the heredoc delimiter {HEREDOC}")
    files = patch_files(instance.test_patch)
    if not files.tests:
        raise SpecError(f"{instance.instance_id}: test_patch touches no test file")
    reset = []
    if files.existing:
        reset.append(f"git checkout HEAD -- {_quote(files.existing)}")
    if files.created:
        reset.append(f"rm -f -- {_quote(files.created)}")
    lines = _script_head(spec, repo_dir)
    lines += ["git -c core.fileMode=false status --short", *reset,
              f"git apply -v - <<'{HEREDOC}'\n{instance.test_patch.rstrip(chr(10))}\n{HEREDOC}",
              f'echo "{START_TEST_OUTPUT}"', f"{spec.test_cmd} {_quote(files.tests)}", f'echo "{END_TEST_OUTPUT}"',
              *reset]
    return "\n".join(lines) + "\n"


def _suite_script(instance, spec: EnvSpec, repo_dir: str) -> str:
    """A generated task's eval script: reset the test files that hold its FAIL_TO_PASS/PASS_TO_PASS tests to
    ``HEAD`` (a patch that edits a test cannot make it pass), run ``test_cmd`` on ``test_args`` (the arguments
    its tests were validated with; [] is the whole suite) between the harness's markers, reset them again."""
    args = instance.raw.get(TEST_ARGS)
    if not isinstance(args, list) or not all(isinstance(a, str) and a and not a.startswith("-") for a in args):
        raise SpecError(f"{instance.instance_id}: {TEST_ARGS} must be a list of test paths (no options), "
                        f"got {str(args)[:200]!r}")
    files = sorted({t.split("::", 1)[0] for t in (*instance.FAIL_TO_PASS, *instance.PASS_TO_PASS)
                    if t.split("::", 1)[0].endswith(".py")})
    reset = [f"git checkout HEAD -- {_quote(files)}"] if files else []
    lines = _script_head(spec, repo_dir)
    lines += ["git -c core.fileMode=false status --short", *reset, f'echo "{START_TEST_OUTPUT}"',
              f"{spec.test_cmd} {_quote(args)}".rstrip(), f'echo "{END_TEST_OUTPUT}"', *reset]
    return "\n".join(lines) + "\n"


def harness_test_names(names) -> list[str]:
    """Test ids as the whitespace-splitting log parsers report them: cut at the first whitespace, then
    de-duplicated. Parametrized ids with spaces (``test_x[a b]``) otherwise never match the parsed log;
    the official datasets store them cut the same way (e.g. ``...test_datetime_field_rfc822[value0-Sun,``)."""
    return list(dict.fromkeys(name.split()[0] for name in names if name.strip()))


def harness_record(instance) -> dict:
    """The record ``swebench.harness.run_evaluation`` grades. A record that already has all of
    :data:`HARNESS_FIELDS` is kept as is; otherwise the missing ones come from the instance's spec."""
    if not instance.FAIL_TO_PASS:
        raise SpecError(f"{instance.instance_id}: the record has no FAIL_TO_PASS tests, so any patch would "
                        "count as resolved; fix the dataset record")
    record = instance.to_record()
    missing = [key for key in HARNESS_FIELDS if not record.get(key)]
    if not missing:
        return record
    spec = find_spec(instance)
    if spec is None:
        raise NoEnvironmentError(
            f"{instance.instance_id}: no {'/'.join(missing)} and no build spec for {instance.repo} "
            f"{instance.version or '(no version)'}; pass a dataset with swebench>=5 fields "
            f"({', '.join(HARNESS_FIELDS)}) or add a spec to srl_swe.swebench.specs.SPECS"
        )
    filled = {"image": image_name(instance.instance_id), "log_parser": spec.log_parser, "eval_type": "pass_and_fail"}
    if "eval_script" in missing:
        filled["eval_script"] = make_eval_script(instance, spec)
    for key in missing:
        record[key] = filled[key]
    if record["log_parser"] in WHITESPACE_SPLIT_PARSERS:
        for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
            record[key] = json.dumps(harness_test_names(getattr(instance, key)))
    return record
