"""Kept bugs as SWE-bench instances (issue 12): the records ``srl-swe eval swebench --dataset DIR`` grades.

Each kept candidate (``kept.jsonl`` of :func:`srl_swe.taskgen.run.generate`) becomes one record:

- ``base_commit``: the clean sdist repository with the bug committed on top, with a fixed identity, so the id is
  the same on every machine (:func:`srl_swe.swebench.local_env.task_base`); ``setup_patch`` is that bug, which
  the local runtime and the task image apply to the package's clean source to reach this very commit;
- ``patch``: the fix, ``git diff HEAD HEAD~1`` of that repository; ``test_patch``: empty (the package's own tests
  catch the bug), and ``test_args``: what the test command ran in validation;
- ``FAIL_TO_PASS`` / ``PASS_TO_PASS``: from validation; ``problem_statement``: :mod:`srl_swe.taskgen.statement`;
- ``env_spec``: the package's :class:`~srl_swe.swebench.specs.EnvSpec`, so grading needs no registry entry;
- ``mutation``: family, file, function (qualname), line, description; ``split``: :func:`split_of`.

Splits are by source function: a function's bugs are all ``train`` or all ``heldout``, decided by a hash of its
file and qualname (module-level code counts as one function per file), so a function never lands in both, the
split of a task never changes when more tasks are generated, and evaluation on ``heldout`` never sees a
function the model trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from srl_swe.jsonl import write_atomic
from srl_swe.swebench.datasets import GENERATED, GENERATED_SPLITS
from srl_swe.swebench.local_env import task_base
from srl_swe.swebench.specs import SETUP_PATCH, TEST_ARGS, EnvSpec
from srl_swe.taskgen.statement import problem_statement

TASKS, SPLITS = GENERATED, "splits.json"
HELDOUT_FRACTION = 0.2
SPLIT_RULE = ("a task is heldout iff sha256('FILE::QUALNAME') read as a fraction in [0, 1) is below the heldout "
              "fraction: every bug of one function is in one split")


def split_of(file: str, qualname: str, heldout: float = HELDOUT_FRACTION) -> str:
    """``"heldout"`` or ``"train"`` for a bug in function ``qualname`` of ``file`` (see the module docstring)."""
    # A nested function is part of the function around it: "f.<locals>.g" splits with "f".
    function = (qualname or "<module>").split(".<locals>.", 1)[0]
    digest = hashlib.sha256(f"{file}::{function}".encode()).hexdigest()
    return "heldout" if int(digest[:13], 16) / 16**13 < heldout else "train"


def instance_id(spec: EnvSpec, key: str) -> str:
    """SWE-bench style (``owner__name-...``), and a valid image tag once lower-cased by ``image_name``."""
    return f"{spec.repo.replace('/', '__')}-{spec.package_version}.{key[:12]}"


def task_record(spec: EnvSpec, kept: Mapping[str, Any], test_args: list[str], heldout: float = HELDOUT_FRACTION,
                cache: Path | None = None) -> dict[str, Any]:
    """The SWE-bench record of one ``kept.jsonl`` line (module docstring)."""
    base = task_base(spec, kept["patch"], cache)
    what = f"{spec.package} {spec.package_version}"
    return {
        "instance_id": instance_id(spec, kept["key"]), "repo": spec.repo, "version": spec.version,
        "base_commit": base.commit, "patch": base.fix, "test_patch": "",
        "problem_statement": problem_statement(what, kept["fail_to_pass"], kept.get("failure", ""), kept["key"]),
        "hints_text": "", "FAIL_TO_PASS": json.dumps(kept["fail_to_pass"]),
        "PASS_TO_PASS": json.dumps(kept["pass_to_pass"]), SETUP_PATCH: kept["patch"], TEST_ARGS: list(test_args),
        "env_spec": spec.to_dict(),
        "mutation": {k: kept[k] for k in ("key", "family", "file", "qualname", "line", "description")},
        "split": split_of(kept["file"], kept["qualname"], heldout),
    }


def write_tasks(spec: EnvSpec, out: Path, kept: Mapping[str, Mapping[str, Any]], test_args: list[str],
                heldout: float = HELDOUT_FRACTION, progress: bool = True) -> dict[str, Any]:
    """Write ``tasks.jsonl`` (sorted by id) and ``splits.json`` for the ``kept`` records, atomically (derived
    files: a rerun rewrites them whole). Returns the splits summary."""
    from tqdm import tqdm

    records = [task_record(spec, rec, test_args, heldout)
               for rec in tqdm(list(kept.values()), desc=f"tasks {spec.package}", unit="task", disable=not progress)]
    records.sort(key=lambda r: r["instance_id"])
    write_atomic(out / TASKS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
                 .encode("utf-8", "backslashreplace"))
    counts = Counter(r["split"] for r in records)
    functions = {s: sorted({f"{r['mutation']['file']}::{r['mutation']['qualname'].split('.<locals>.')[0]}"
                            for r in records
                            if r["split"] == s}) for s in GENERATED_SPLITS}
    splits = {"rule": SPLIT_RULE, "heldout_fraction": heldout, "counts": {s: counts.get(s, 0) for s in functions},
              "functions": {s: len(v) for s, v in functions.items()},
              "ids": {s: [r["instance_id"] for r in records if r["split"] == s] for s in functions}}
    write_atomic(out / SPLITS, (json.dumps(splits, indent=1) + "\n").encode())
    return {k: splits[k] for k in ("heldout_fraction", "counts", "functions")}
