"""Checkpoint and run-file hygiene for ``srl-swe train --resume``: which checkpoints count, where a resumed
run starts, and the run files cut back to that point so a resume repeats and loses nothing.

* A checkpoint counts only once ``COMPLETE`` is written inside it (after the Trainer saved model, optimizer,
  scheduler, RNG and state), so a run killed mid-save resumes from the previous one.
* ``metrics.jsonl`` is cut back to the resumed step: the steps after it are trained and logged again.
* A checkpoint at the run's last step is finished work: ``final/`` is written from it, no step is trained.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from srl_swe.train.config import TrainConfig

COMPLETE = "COMPLETE"


def is_main_process() -> bool:
    """Rank 0 under ``torchrun`` / ``accelerate launch`` (and a run on its own): the one that writes run files."""
    return int(os.environ.get("RANK", "0")) == 0


def complete_checkpoints(run_dir: Path) -> list[Path]:
    found = [p for p in run_dir.glob("checkpoint-*") if (p / COMPLETE).is_file() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def drop_incomplete(run_dir: Path) -> list[Path]:
    """Remove checkpoint folders a killed run left half-written (no COMPLETE marker)."""
    stale = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and not (p / COMPLETE).is_file()]
    for p in stale:
        shutil.rmtree(p)
    return stale


def best_checkpoint(run_dir: Path) -> Path:
    """The SRL stage's best checkpoint (Trainer's best_model_checkpoint if evaluated, else the last)."""
    done = complete_checkpoints(run_dir)
    if not done:
        raise FileNotFoundError(f"{run_dir}: no complete checkpoint-* folder (looked for {COMPLETE} markers)")
    state = json.loads((done[-1] / "trainer_state.json").read_text())
    best = state.get("best_model_checkpoint")
    return Path(best) if best and Path(best).is_dir() else done[-1]


def trim_metrics(run_dir: Path, step: int) -> None:
    """Keep the ``metrics.jsonl`` lines of steps up to ``step``, the checkpoint the run resumes from (0: a
    fresh start): the steps after it are trained again and logged again, and must not appear twice. Torn or
    unreadable lines go too. Rewritten atomically (temp file, fsync, rename), so a kill here loses nothing."""
    from srl_swe.train.plot import metric_records

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.writelines(raw + b"\n" for raw, rec in metric_records(path) if rec["step"] <= step)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def checkpoint_step(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / "trainer_state.json").read_text())["global_step"])


def is_final_step(cfg: TrainConfig, checkpoint: Path) -> bool:
    """Whether ``checkpoint`` is the run's last step (the Trainer, resumed there, would train one step more)."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    target = cfg.max_steps if cfg.max_steps > 0 else int(state.get("max_steps") or 0)
    return target > 0 and int(state["global_step"]) >= target


# What a checkpoint holds beyond the saved model: the Trainer's state for resuming, not part of final/.
TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "trainer_state.json", COMPLETE,
                  "global_step*")


def final_from_checkpoint(checkpoint: Path, run_dir: Path) -> Path:
    """final/ from a checkpoint at the last step: the model files the Trainer saved there (``save_model``,
    the same call that writes final/) without the training state; copied to a temp folder, renamed in."""
    final, tmp = run_dir / "final", run_dir / "final.tmp"
    if is_main_process():
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(checkpoint, tmp, ignore=shutil.ignore_patterns(*TRAINING_STATE))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    return final
