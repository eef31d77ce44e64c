"""What a person sees while a run trains: one progress bar with the step, the ETA and the running reward.

transformers' own ``ProgressCallback`` prints every log as a raw metrics dict under its bar (about 30 keys a
GRPO step). :class:`RewardProgress` replaces it: the bar's postfix carries the last step's mean reward, the
mean over the run so far, and the format-violation rate (GRPO) or the loss (SFT); everything the Trainer logs
still goes to ``metrics.jsonl`` (:class:`srl_swe.train.run.RunLog`) and to ``report_to``.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

#: The keys shown, in order, with their short names (the first present of each group).
REWARD_KEYS = ("reward",)
FORMAT_KEYS = ("rewards/format_violation/mean",)


def _first(logs: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for k in keys:
        if isinstance(logs.get(k), int | float):
            return float(logs[k])
    return None


class RewardProgress(TrainerCallback):
    """A tqdm bar over the optimizer steps (resumed runs start where they left off). With a time budget
    (``max_train_seconds``) the run ends by the clock, not at ``max_steps``: the bar then counts steps without a
    total and shows the budget's time left instead of an ETA to ``max_steps``."""

    def __init__(self, budget_s: float | None = None) -> None:
        self.bar: Any = None
        self.rewards: list[float] = []
        self.budget_s, self.started = budget_s, 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero and self.bar is None:
            self.bar = tqdm(total=None if self.budget_s else state.max_steps, initial=state.global_step,
                            desc="train", unit="step", dynamic_ncols=True)
            self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs:
            return
        post: dict[str, str] = {}
        reward = _first(logs, REWARD_KEYS)
        if reward is not None:
            self.rewards.append(reward)
            post["reward"] = f"{reward:+.3f}"
            post["mean"] = f"{sum(self.rewards) / len(self.rewards):+.3f}"
        fmt = _first(logs, FORMAT_KEYS)
        if fmt is not None:
            post["bad_format"] = f"{fmt:.0%}"
        if reward is None and isinstance(logs.get("loss"), int | float):
            post["loss"] = f"{logs['loss']:.4f}"
        if self.budget_s:
            left = max(0.0, self.budget_s - (time.monotonic() - self.started))
            post["budget_left"] = f"{left / 60:.1f}/{self.budget_s / 60:g} min"
        evals = {k: v for k, v in logs.items() if k.startswith("eval_") and isinstance(v, int | float)}
        if evals:  # an evaluation is rare and worth a line of its own
            self.bar.write(f"step {state.global_step} eval: " + ", ".join(f"{k}={v:.4g}" for k, v in evals.items()))
        if post:
            self.bar.set_postfix(post, refresh=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def use_reward_progress(trainer: Any, budget_s: float | None = None) -> None:
    """Swap the Trainer's default progress bar for :class:`RewardProgress` (unless tqdm is disabled)."""
    if trainer.args.disable_tqdm:
        return
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RewardProgress(budget_s))
