"""``srl-swe eval steps``: mean step reward and format-violation rate on held-out step examples.

The reward is the environments' own (``srl_swe.rewards.score_output``): what SRL trains on, measured on
steps of tasks the model was not trained on. Greedy decoding gives one output per example; sampling
(``temperature``, ``n`` per example) shows what the policy does during RL.

An example whose prompt and ``max_new_tokens`` do not fit the model's context (:mod:`srl_swe.models.context`) is
skipped, as training skips such prompts (:mod:`srl_swe.train.prompts`): it is not scored, ``step_eval.json``
counts it under ``skipped_context`` with the error saying by how much, and the means are over the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srl_swe.actions import with_prefill
from srl_swe.dataset import step_rows
from srl_swe.models.context import fit_errors
from srl_swe.models.generation import Generator
from srl_swe.rewards import score_output
from srl_swe.steps import StepConfig
from srl_swe.trajectories import load_trajectories


def _summary(scores: list[Any]) -> dict[str, Any]:
    valid = [s for s in scores if s.valid]
    return {
        "outputs": len(scores),
        "mean_reward": sum(s.reward for s in scores) / len(scores) if scores else None,
        "format_violation_rate": 1 - len(valid) / len(scores) if scores else None,
        "mean_similarity_when_valid": sum(s.similarity for s in valid) / len(valid) if valid else None,
    }


def evaluate_steps(generator: Generator, rows: list[dict[str, Any]], *, n: int = 4, temperature: float = 1.0,
                   max_new_tokens: int = 256, seed: int = 0, out_dir: Path | None = None,
                   require_think: bool = True, prefill: str = "") -> dict[str, Any]:
    """``rows``: dicts with ``prompt`` (messages), ``expert_action``, ``syntax`` (as ``srl-swe data build`` writes).
    ``prefill`` starts every reply (``THINK_PREFILL``); what is scored is the whole reply, prefill included.
    Examples that do not fit the model's context are skipped and counted (``skipped_context``, ``skipped``)."""
    if not rows:
        raise ValueError("no held-out step examples to evaluate")
    prompts = [with_prefill(list(r["prompt"]), prefill) for r in rows]
    errors = fit_errors(generator, prompts, max_new_tokens, names=[f"example {r.get('example_id')}" for r in rows],
                        advice="skipped (shorten prompts with window / max_observation_chars, or lower max_new_tokens)")
    skipped = [{"example_id": r.get("example_id"), "error": str(e)} for r, e in zip(rows, errors, strict=True) if e]
    rows = [r for r, e in zip(rows, errors, strict=True) if e is None]
    prompts = [p for p, e in zip(prompts, errors, strict=True) if e is None]
    greedy = (generator.generate(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed)
              if rows else [])
    sampled = (generator.generate(prompts, n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
               if n > 0 and rows else [[] for _ in rows])
    records, g_scores, s_scores = [], [], []
    for row, g, s in zip(rows, greedy, sampled, strict=True):
        gs = score_output(g[0], row["expert_action"], row["syntax"], require_think=require_think)
        ss = [score_output(x, row["expert_action"], row["syntax"], require_think=require_think) for x in s]
        g_scores.append(gs)
        s_scores.extend(ss)
        records.append({"example_id": row.get("example_id"), "greedy": g[0], "greedy_reward": gs.reward,
                        "greedy_reason": gs.reason, "sampled_rewards": [x.reward for x in ss]})
    result = {"examples": len(rows), "max_new_tokens": max_new_tokens, "seed": seed, "require_think": require_think,
              "prefill": prefill, "skipped_context": len(skipped), "skipped": skipped,
              "greedy": _summary(g_scores),
              "sampled": {**_summary(s_scores), "n": n, "temperature": temperature} if n > 0 else None}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "step_eval.json").write_text(json.dumps(result, indent=2) + "\n")
        with (out_dir / "step_samples.jsonl").open("w") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
    return result


def rows_from_path(path: str | Path) -> list[dict[str, Any]]:
    """Held-out rows from a dataset folder written by `srl-swe data build`, or from trajectories (the same
    rows, :func:`srl_swe.dataset.step_rows`, with each kind's default syntax and window)."""
    p = Path(path)
    if p.is_dir() and (p / "dataset_info.json").is_file():
        import datasets

        return list(datasets.load_from_disk(str(p)))
    trajs = load_trajectories(p, keep="all").trajectories
    kind = trajs[0].kind if trajs else "swe"
    return step_rows(trajs, StepConfig.for_task(kind))
