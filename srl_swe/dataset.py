"""Step examples as rows, and as a Hugging Face ``datasets.Dataset`` (``srl-swe data build``).

:func:`step_rows` is the one writer of a step example's row: ``srl-swe data build``, ``srl-swe train`` (SRL
and SFT) and ``srl-swe eval steps`` all use it, so a dataset built ahead and the rows a run builds itself
are the same. Columns follow TRL's conventions so the rows plug into ``GRPOTrainer`` unchanged: ``prompt``
is a list of chat messages (conversational format) and every other column reaches the reward function as
a keyword argument (``expert_action``, ``syntax``, ...), which :class:`srl_swe.rewards.SRLReward` reads;
SFT rows add ``completion``, the expert's step as the SRL policy must write it.
The build is deterministic: same input and options give the same rows in the same order and the same
dataset fingerprint (a hash of the rows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from srl_swe.schema import Trajectory
from srl_swe.steps import PromptBuilder, StepConfig, StepExample
from srl_swe.trajectories import LoadResult

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
              progress: bool = False) -> list[dict[str, Any]]:
    """One row per step of every trajectory, in order (:func:`example_row`); ``with_completion`` for SFT."""
    builder = PromptBuilder(trajectories, cfg)
    rows = []
    for i, t in enumerate(tqdm(trajectories, desc="step examples", unit="traj", disable=not progress)):
        for k, step in enumerate(t.steps):
            thought = (step.thought or PLACEHOLDER_THOUGHT) if with_completion else None
            rows.append(example_row(builder.example(i, k), completion_thought=thought))
    return rows


def build_dataset(loaded: LoadResult, cfg: StepConfig, progress: bool = True):
    try:
        import datasets
    except ImportError as e:
        raise ImportError("building a dataset needs the `datasets` package: pip install 'srl-swe[data]'") from e
    rows = step_rows(loaded.trajectories, cfg, progress=progress)
    if not rows:
        raise ValueError("no step examples to write (every trajectory was skipped; see `srl-swe data inspect`)")
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    ds = datasets.Dataset.from_list(rows)
    return datasets.Dataset(ds.data, info=ds.info, fingerprint=digest.hexdigest()[:16])


def save_dataset(loaded: LoadResult, cfg: StepConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Write the dataset to ``out`` (``datasets.load_from_disk`` reads it) plus ``build_info.json``."""
    ds = build_dataset(loaded, cfg, progress)
    out.mkdir(parents=True, exist_ok=True)
    ds.save_to_disk(str(out))
    info = {
        "examples": len(ds),
        "trajectories": len(loaded.trajectories),
        "fingerprint": ds._fingerprint,
        "config": {"syntax": cfg.syntax, "window": cfg.window, "max_observation_chars": cfg.max_observation_chars,
                   "include_thoughts": cfg.include_thoughts},
        "sources": loaded.summary(),
        "skipped": [{"source": s.source, "record": s.record, "reason": s.reason} for s in loaded.skipped],
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
