"""``srl-swe plot RUN_DIR``: the run's metrics.jsonl as one PNG (a panel per metric)."""

from __future__ import annotations

import json
import math
from pathlib import Path

# Panels worth reading first; any other numeric metric in the log follows.
PREFERRED = ("reward", "reward_std", "rewards/srl_sequence_matcher/mean", "rewards/format_violation/mean",
             "rewards/math_answer/mean", "dynamic_sampling/filtered_fraction", "kl", "loss", "learning_rate",
             "eval_reward", "eval_loss", "completions/mean_length", "entropy", "grad_norm", "step_time")
MAX_PANELS = 12
SKIP = {"step", "epoch", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second"}


def metric_records(path: Path) -> list[tuple[bytes, dict]]:
    """The log lines of ``metrics.jsonl`` with their records. A line that is not a JSON object with an integer
    step is skipped: a kill mid-write leaves the last line torn, and that must not stop a plot or a resume."""
    out = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            out.append((raw, rec))
    return out


def read_metrics(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (is {run_dir} an `srl-swe train` output folder?)")
    series: dict[str, list[tuple[int, float]]] = {}
    for _, rec in metric_records(path):
        for key, value in rec.items():
            if key not in SKIP and isinstance(value, (int, float)) and math.isfinite(value):
                series.setdefault(key, []).append((rec["step"], float(value)))
    return series


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    series = read_metrics(run_dir)
    # The metrics that say whether SRL learns come first; a flat series of anything else says nothing.
    others = sorted(k for k in series if k not in PREFERRED and len({v for _, v in series[k]}) > 1)
    keys = ([k for k in PREFERRED if k in series] + others)[:MAX_PANELS]
    if not keys:
        raise ValueError(f"{run_dir / 'metrics.jsonl'} has no numeric metrics yet")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        steps, values = zip(*series[key], strict=True)
        ax.plot(steps, values, marker="." if len(steps) < 50 else None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(run_dir.name)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    out = Path(out) if out else run_dir / "metrics.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
