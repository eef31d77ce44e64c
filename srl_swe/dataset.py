"""Step examples as a Hugging Face ``datasets.Dataset`` (``srl-swe data build``).

Columns follow TRL's conventions so the dataset plugs into ``GRPOTrainer`` unchanged: ``prompt`` is a
list of chat messages (conversational format) and every other column reaches the reward function as
a keyword argument (``expert_action``, ``syntax``, ...), which :class:`srl_swe.rewards.SRLReward` reads.
The build is deterministic: same input and options give the same rows in the same order and the same
dataset fingerprint (a hash of the rows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from srl_swe.steps import PromptBuilder, StepConfig, StepExample
from srl_swe.trajectories import LoadResult

COLUMNS = ("example_id", "task_id", "step_index", "num_steps", "prompt", "expert_action", "expert_tool",
           "expert_arguments", "syntax", "kind", "source_format", "answer")


def example_row(ex: StepExample) -> dict[str, Any]:
    return {
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


def iter_rows(loaded: LoadResult, cfg: StepConfig, progress: bool = True) -> Iterable[dict[str, Any]]:
    builder = PromptBuilder(loaded.trajectories, cfg)
    bar = tqdm(total=len(loaded.trajectories), desc="step examples", unit="traj", disable=not progress)
    for i, t in enumerate(loaded.trajectories):
        for k in range(len(t.steps)):
            yield example_row(builder.example(i, k))
        bar.update(1)
    bar.close()


def build_dataset(loaded: LoadResult, cfg: StepConfig, progress: bool = True):
    try:
        import datasets
    except ImportError as e:
        raise ImportError("building a dataset needs the `datasets` package: pip install 'srl-swe[data]'") from e
    rows = list(iter_rows(loaded, cfg, progress))
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
