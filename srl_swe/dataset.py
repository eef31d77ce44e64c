"""Step examples as rows, and as a Hugging Face ``datasets.Dataset`` (``srl-swe data build``).

:func:`step_rows` is the one writer of a step example's row: ``srl-swe data build``, ``srl-swe train`` (SRL
and SFT) and ``srl-swe eval steps`` all use it, so a dataset built ahead and the rows a run builds itself
are the same. Columns follow TRL's conventions so the rows plug into ``GRPOTrainer`` unchanged: ``prompt``
is a list of chat messages (conversational format) and every other column reaches the reward function as
a keyword argument (``expert_action``, ``syntax``, ...), which :class:`srl_swe.rewards.SRLReward` reads;
SFT rows add ``completion``, the expert's step as the SRL policy must write it.
The build is deterministic: same input and options give the same rows in the same order and the same
dataset fingerprint (a hash of the rows).

At the paper's scale (5k trajectories, 100k+ step examples) neither the trajectories nor the rows fit in memory
as Python objects, and one Arrow array of every prompt overflows Arrow's 2 GB string offsets. So a build
streams (:func:`write_step_dataset`): a first pass over the files gathers what every row shares (each task
kind's system prompt, from the tools the whole set uses: :class:`ToolSignatures`), a second pass turns one file
at a time into rows that go to an Arrow file in batches, memory-mapped afterwards. The rows, their order and
the fingerprint are those of building the whole set in memory (:func:`step_rows` over
:func:`~srl_swe.trajectories.load_trajectories`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from srl_swe.schema import Step, Task, ToolCall, Trajectory
from srl_swe.steps import PromptBuilder, StepConfig, StepExample, check_expressible
from srl_swe.tasks import TASKS
from srl_swe.trajectories import Keep, LoadResult, Skipped, iter_files, summarize

COLUMNS = ("example_id", "task_id", "step_index", "num_steps", "prompt", "expert_action", "expert_tool",
           "expert_arguments", "syntax", "kind", "source_format", "answer")
# SFT's completion needs a thought; a step without one (GSM8K's) gets this stand-in.
PLACEHOLDER_THOUGHT = "I take the next step."


def example_row(ex: StepExample, completion_thought: str | None = None) -> dict[str, Any]:
    """The :data:`COLUMNS` of ``ex``; with ``completion_thought`` (SFT) also ``completion``:
    ``<think>`` with that thought, then the expert's action, as one assistant message."""
    row = {
        "example_id": ex.example_id,
        "task_id": ex.task_id,
        "step_index": ex.step_index,
        "num_steps": ex.num_steps,
        "prompt": ex.chat(),
        "expert_action": ex.expert_action,
        "expert_tool": ex.expert_call.name,
        "expert_arguments": json.dumps(dict(ex.expert_call.arguments), ensure_ascii=False),
        "syntax": ex.syntax,
        "kind": ex.kind,
        "source_format": ex.source_format,
        "answer": ex.answer or "",
    }
    if completion_thought is not None:
        text = f"<think>\n{completion_thought}\n</think>\n{ex.expert_action}"
        row["completion"] = [{"role": "assistant", "content": text}]
    return row


def step_rows(trajectories: Sequence[Trajectory], cfg: StepConfig, *, with_completion: bool = False,
              progress: bool = False, system: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per step of every trajectory, in order (:func:`example_row`); ``with_completion`` for SFT;
    ``system``: the kinds' system prompts made over a larger set (:class:`ToolSignatures`)."""
    builder = PromptBuilder(trajectories, cfg, system=system)
    rows = []
    for i, t in enumerate(tqdm(trajectories, desc="step examples", unit="traj", disable=not progress)):
        for k, step in enumerate(t.steps):
            thought = (step.thought or PLACEHOLDER_THOUGHT) if with_completion else None
            rows.append(example_row(builder.example(i, k), completion_thought=thought))
    return rows


#: Rows per Arrow record batch: small enough that no batch's strings come near Arrow's 2 GB offsets (a row's
#: prompt is at most a few hundred kB), large enough that the per-batch cost does not show.
WRITER_BATCH = 256


def features(with_completion: bool = False):
    """The rows' Arrow types, fixed rather than inferred per batch (what ``Dataset.from_list`` infers)."""
    import datasets

    chat = datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})
    types = {c: datasets.Value("int64") if c in ("step_index", "num_steps") else datasets.Value("string")
             for c in COLUMNS}
    types["prompt"] = chat
    if with_completion:
        types["completion"] = chat
    return datasets.Features(types)


class ToolSignatures:
    """Per task kind, the distinct (action name, argument names) of a data set's steps in first-seen order, kept
    as one stripped trajectory: all a kind's system prompt reads (``TaskKind.system_prompt``), so the prompt
    of a set is known after one pass that holds none of it."""

    def __init__(self) -> None:
        self._steps: dict[str, dict[tuple[str, tuple[str, ...]], Step]] = {}

    def add(self, t: Trajectory) -> None:
        seen = self._steps.setdefault(t.kind, {})
        for step in t.steps:
            names = tuple(k for k, _ in step.action.arguments)
            if (step.action.name, names) not in seen:
                seen[step.action.name, names] = Step(ToolCall(step.action.name, tuple((k, "") for k in names)))

    def system_prompts(self, cfg: StepConfig) -> dict[str, str]:
        out = {}
        for kind, steps in self._steps.items():
            task = TASKS.get(kind)
            stripped = Trajectory(Task(f"{kind}-tools", ""), tuple(steps.values()), "tools", "", kind=kind)
            out[kind] = task.system_prompt([stripped], task.step_syntax(cfg.syntax))
        return out


@dataclass
class StepScan:
    """The first pass of a streaming build: what the rows share, and what the build reports."""

    signatures: ToolSignatures = field(default_factory=ToolSignatures)
    counts: list[tuple[str, int, bool | None]] = field(default_factory=list)  # per kept trajectory
    skipped: list[Skipped] = field(default_factory=list)
    spill: Path | None = None  # the taken trajectories, pickled one file at a time (scan_steps' spill_dir)

    def spilled(self) -> Iterator[list[Trajectory]]:
        """What pass 1 took, file by file, read back from :attr:`spill` (written and read by this process only)."""
        assert self.spill is not None
        with self.spill.open("rb") as fh:
            while True:
                try:
                    yield pickle.load(fh)
                except EOFError:
                    return

    @property
    def trajectories(self) -> int:
        return len(self.counts)

    @property
    def steps(self) -> int:
        return sum(n for _, n, _ in self.counts)

    def summary(self) -> dict[str, dict[str, Any]]:
        return summarize(self.counts, self.skipped)


Select = Callable[[Trajectory], bool]


def scan_steps(source: str | Path, cfg: StepConfig, *, keep: Keep = "resolved", select: Select | None = None,
               progress: bool = False, spill_dir: Path | None = None) -> StepScan:
    """Pass 1: read every file once (one at a time), refuse a syntax that cannot write an action (before any
    row is written), and gather the tools and the counts of the trajectories ``select`` takes. With
    ``spill_dir`` those trajectories are also pickled there, so pass 2 reads them back instead of parsing and
    checking the JSON again (about half of a build's time)."""
    scan, left_out = StepScan(), []
    out = None
    if spill_dir is not None:
        spill_dir.mkdir(parents=True, exist_ok=True)
        scan.spill = spill_dir / f"pass1-{os.getpid()}.pickle"
        out = scan.spill.open("wb")
    try:
        _scan(scan, left_out, source, cfg, keep, select, progress, out)
    finally:
        if out is not None:
            out.close()
    scan.skipped.extend(left_out)  # in load_trajectories' order: outcomes after every file's own problems
    return scan


def _scan(scan: StepScan, left_out: list[Skipped], source: str | Path, cfg: StepConfig, keep: Keep,
          select: Select | None, progress: bool, out: Any) -> None:
    for got in tqdm(iter_files(source, keep), desc="scan", unit="file", disable=not progress):
        scan.skipped.extend(got.skipped)
        left_out.extend(got.outcome_skipped)
        taken = [t for t in got.trajectories if select is None or select(t)]
        for kind in {t.kind for t in taken}:
            check_expressible([t for t in taken if t.kind == kind], TASKS.get(kind).step_syntax(cfg.syntax))
        for t in taken:
            scan.signatures.add(t)
            scan.counts.append((t.source_format, len(t.steps), t.resolved))
        if out is not None and taken:
            pickle.dump(taken, out, protocol=pickle.HIGHEST_PROTOCOL)


def iter_step_rows(source: str | Path, cfg: StepConfig, scan: StepScan, *, keep: Keep = "resolved",
                   select: Select | None = None, with_completion: bool = False,
                   progress: bool = False) -> Iterator[dict[str, Any]]:
    """Pass 2: the rows of :func:`step_rows` over the whole set, one file's trajectories in memory at a time
    (from the scan's spill if it has one, else read again)."""
    system = scan.signatures.system_prompts(cfg)
    bar = tqdm(total=scan.steps, desc="step examples", unit="ex", disable=not progress)
    files = scan.spilled() if scan.spill is not None else (
        [t for t in got.trajectories if select is None or select(t)] for got in iter_files(source, keep))
    for taken in files:
        if taken:
            rows = step_rows(taken, cfg, with_completion=with_completion, system=system)
            bar.update(len(rows))
            yield from rows
    bar.close()


def write_step_dataset(rows: Iterable[dict[str, Any]], path: Path, *, with_completion: bool = False):
    """Write ``rows`` to the Arrow file ``path`` in record batches and return it as a memory-mapped
    ``datasets.Dataset`` whose fingerprint is the hash of the rows (the same rows give the same one)."""
    try:
        import datasets
        from datasets.arrow_writer import ArrowWriter
    except ImportError as e:
        raise ImportError("building a dataset needs the `datasets` package: pip install 'srl-swe[data]'") from e
    digest, n = hashlib.sha256(), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with ArrowWriter(features=features(with_completion), path=str(path), writer_batch_size=WRITER_BATCH) as w:
        for row in rows:
            digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
            w.write(row)
            n += 1
        w.finalize()
    if not n:
        raise ValueError("no step examples to write (every trajectory was skipped; see `srl-swe data inspect`)")
    ds = datasets.Dataset.from_file(str(path))
    return datasets.Dataset(ds.data, info=ds.info, fingerprint=digest.hexdigest()[:16])


def save_dataset(source: str | Path, cfg: StepConfig, out: Path, *, keep: Keep = "resolved",
                 progress: bool = True) -> dict[str, Any]:
    """Write the step dataset of the trajectories under ``source`` to ``out`` (``datasets.load_from_disk``
    reads it) plus ``build_info.json``, streaming (module docstring). Nothing is left in ``out`` on failure."""
    import tempfile

    # replaced only if it is an earlier build (or empty): never a folder of the user's
    if out.is_dir() and any(out.iterdir()) and not (out / "build_info.json").is_file():
        raise FileExistsError(f"{out} exists and holds something other than a dataset built by srl-swe: give a new "
                              "or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out.parent) as tmp:
        scan = scan_steps(source, cfg, keep=keep, progress=progress, spill_dir=Path(tmp))
        if not scan.trajectories:
            raise ValueError(f"no step examples to write from {source}: every trajectory was skipped "
                             f"(see `srl-swe data inspect {source}`)")
        ds = write_step_dataset(iter_step_rows(source, cfg, scan, keep=keep, progress=progress),
                                Path(tmp) / "rows.arrow")
        scan.spill.unlink()  # type: ignore[union-attr]
        staged = Path(tmp) / "dataset"
        ds.save_to_disk(str(staged))
        info = {
            "examples": len(ds),
            "trajectories": scan.trajectories,
            "fingerprint": ds._fingerprint,
            "config": {"syntax": cfg.syntax, "window": cfg.window, "max_observation_chars": cfg.max_observation_chars,
                       "include_thoughts": cfg.include_thoughts},
            "sources": scan.summary(),
            "skipped": [{"source": s.source, "record": s.record, "reason": s.reason} for s in scan.skipped],
        }
        (staged / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
        del ds
        if out.exists():
            out.rename(Path(tmp) / "old")  # deleted with the temporary folder, after the new one is in place
        staged.rename(out)
    return info


def build_dataset(loaded: LoadResult, cfg: StepConfig, progress: bool = True):
    """The step dataset of trajectories already in memory (small sets and tests; the CLI streams)."""
    import datasets

    rows = step_rows(loaded.trajectories, cfg, progress=progress)
    if not rows:
        raise ValueError("no step examples to write (every trajectory was skipped; see `srl-swe data inspect`)")
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    ds = datasets.Dataset.from_list(rows, features=features())
    return datasets.Dataset(ds.data, info=ds.info, fingerprint=digest.hexdigest()[:16])
