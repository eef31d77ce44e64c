"""Training and held-out datasets for every mode, built from the same loaders and prompts as the envs.

* ``srl``: one row per expert step (:func:`srl_swe.dataset.step_rows`, the rows ``srl-swe data build``
  writes): ``prompt`` (chat messages, TRL's conversational format), ``expert_action`` and ``syntax``, which
  :class:`srl_swe.rewards.SRLReward` scores through the environments' own scoring path.
* ``sft``: the same prompts with the expert's step as the completion, written in the format the SRL
  policy must produce (``<think>`` with the expert's own reasoning, then the action).
* ``rlvr`` (math): one row per problem with the reference ``answer`` for the outcome reward.
* ``rlvr`` (swe): one row per SWE-bench instance (:func:`srl_swe.train.exec_env.exec_rows`: the issue as
  the prompt, the ``instance_id`` the rollout's environment resets to); the reward is the environment's.

The held-out split is by task (a hash of the task id), never by step, so no held-out task has steps in
training.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

from srl_swe.dataset import step_rows
from srl_swe.eval.math import build_messages
from srl_swe.paths import bundled
from srl_swe.schema import Trajectory
from srl_swe.steps import StepConfig
from srl_swe.trajectories import load_trajectories


def step_config(cfg: Any) -> StepConfig:
    """The step examples' config of a training config (the task kind's syntax unless ``syntax`` is set)."""
    return StepConfig.for_task(cfg.task, cfg.syntax, cfg.step_window, max_observation_chars=cfg.max_observation_chars,
                               include_thoughts=cfg.include_thoughts)


def _held_out(task_id: str, fraction: float) -> bool:
    digest = hashlib.sha256(task_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def load_split(cfg: Any) -> tuple[list[Trajectory], list[Trajectory]]:
    """(train, held-out) trajectories of the config's task."""
    source = cfg.train_data or bundled(cfg.task)
    trajs = [t for t in load_trajectories(source, keep=cfg.keep).trajectories if t.kind == cfg.task]
    if not trajs:
        raise ValueError(f"no {cfg.task} trajectories in {source} (see `srl-swe data inspect {source}`)")
    if cfg.eval_data:
        held = [t for t in load_trajectories(cfg.eval_data, keep=cfg.keep).trajectories if t.kind == cfg.task]
        return trajs, held
    if cfg.eval_fraction <= 0:
        return trajs, []
    train = [t for t in trajs if not _held_out(t.id, cfg.eval_fraction)]
    return train, [t for t in trajs if _held_out(t.id, cfg.eval_fraction)]


def swe_split(cfg: Any) -> tuple[list[Any], list[Any]]:
    """(train, held-out) SWE-bench instances for RLVR on SWE tasks, split by instance id like trajectories.
    A ``srl-swe tasks make`` folder has its own split (by file and function, so held-out functions are never
    trained on): its ``train`` tasks train and its ``heldout`` tasks are held out, whatever ``eval_fraction``."""
    from srl_swe.swebench.datasets import GENERATED, load_instances

    if Path(str(cfg.train_data)).is_dir() and (Path(str(cfg.train_data)) / GENERATED).is_file():
        held = load_instances(cfg.eval_data) if cfg.eval_data else load_instances(cfg.train_data, split="heldout")
        return load_instances(cfg.train_data, split="train"), held
    instances = load_instances(cfg.train_data)
    if cfg.eval_data:
        return instances, load_instances(cfg.eval_data)
    if cfg.eval_fraction <= 0:
        return instances, []
    out = {i.instance_id for i in instances if _held_out(i.instance_id, cfg.eval_fraction)}
    return [i for i in instances if i.instance_id not in out], [i for i in instances if i.instance_id in out]


def problem_rows(trajs: list[Trajectory]) -> list[dict[str, Any]]:
    return [{"prompt": build_messages(t.task.problem_statement), "answer": t.task.answer or "",
             "task_id": t.id} for t in trajs if t.task.answer]


def build_datasets(cfg: Any, mode: str):
    """``(train, eval)`` ``datasets.Dataset`` for ``mode`` (``eval`` is None without held-out data). Step rows
    (SRL, SFT) are built streaming into ``<output_dir>/data/`` (:func:`step_datasets`)."""
    import datasets

    if mode in ("srl", "sft"):
        return step_datasets(cfg, with_completion=(mode == "sft"))
    if cfg.task == "swe":
        from srl_swe.train.exec_env import exec_rows

        train, held = swe_split(cfg)
        make = exec_rows
    else:
        train, held = load_split(cfg)
        make = problem_rows
    train_rows = make(train)
    if not train_rows:
        raise ValueError(f"no training rows for mode {mode} (task {cfg.task})")
    eval_rows = make(held) if held else []
    if cfg.eval_max_examples and eval_rows and not fits_prompts(cfg, mode):
        eval_rows = eval_rows[: cfg.eval_max_examples]
    to_ds = datasets.Dataset.from_list
    return to_ds(train_rows), (to_ds(eval_rows) if eval_rows else None)


def step_datasets(cfg: Any, with_completion: bool):
    """SRL's (and SFT's) step rows, the rows of :func:`step_rows` over :func:`load_split`'s trajectories, built
    streaming (:func:`srl_swe.dataset.write_step_dataset`: two passes over the files, one file in memory at a
    time) into memory-mapped Arrow files under ``<output_dir>/data/``, so a paper-scale set trains in bounded
    memory. Each process of a multi-process run writes its own copy (``rank<N>``)."""
    from srl_swe.dataset import iter_step_rows, scan_steps, write_step_dataset

    scfg = step_config(cfg)
    source = cfg.train_data or bundled(cfg.task)
    own = lambda t: t.kind == cfg.task  # noqa: E731
    if cfg.eval_data:
        train_sel, held_src, held_sel = own, cfg.eval_data, own
    elif cfg.eval_fraction > 0:
        frac = cfg.eval_fraction
        train_sel = lambda t: own(t) and not _held_out(t.id, frac)  # noqa: E731
        held_src, held_sel = source, lambda t: own(t) and _held_out(t.id, frac)
    else:
        train_sel, held_src, held_sel = own, None, None
    out = Path(cfg.output_dir) / "data"
    rank = os.environ.get("RANK", "0")
    made = []
    for name, src, sel in (("train", source, train_sel), ("eval", held_src, held_sel)):
        if src is None:
            made.append(None)
            continue
        # pass 1 spills what it read (a file per process: its pid), pass 2 reads it back; gone either way
        scan = scan_steps(src, scfg, keep=cfg.keep, select=sel, spill_dir=out)
        try:
            if name == "train" and not scan.trajectories:
                raise ValueError(f"no {cfg.task} trajectories in {source} (see `srl-swe data inspect {source}`)")
            if not scan.trajectories:
                made.append(None)
                continue
            rows = iter_step_rows(src, scfg, scan, keep=cfg.keep, select=sel, with_completion=with_completion)
            # In GRPO the cut comes after the over-long prompts are skipped (run.fit_prompts), so the held-out
            # examples are the first ones that fit, like the training examples.
            if name == "eval" and cfg.eval_max_examples and not fits_prompts(cfg, "sft" if with_completion else "srl"):
                rows = itertools.islice(rows, cfg.eval_max_examples)
            made.append(write_step_dataset(rows, out / f"{name}-rank{rank}.arrow", with_completion=with_completion))
        finally:
            scan.spill.unlink(missing_ok=True)  # type: ignore[union-attr]
    return made[0], made[1]


def fits_prompts(cfg: Any, mode: str) -> bool:
    """Whether the run skips prompts over its prompt budget (``max_prompt_length``, else the model's context less
    ``max_completion_length``: :func:`srl_swe.train.prompts.prompt_budget`): GRPO on step, problem or SWE task
    rows (these counted with the environment's tools, as TRL renders them); SFT bounds its whole sequence
    instead. A SWE rollout's later turns need no check of their own: TRL stops adding tool results once the
    completion would pass ``max_completion_length``, so every turn's prompt is within the budget plus that."""
    return mode != "sft"


def held_out_steps(cfg: Any) -> list[dict[str, Any]]:
    """Held-out step rows (for `eval steps`), whatever the mode."""
    _, held = load_split(cfg)
    return step_rows(held, step_config(cfg))

