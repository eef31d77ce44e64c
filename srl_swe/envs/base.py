"""The step-level imitation environment shared by SRL-SWE-v0 and SRL-Math-v0.

Subclasses only choose defaults (data, action syntax, context window); the episode logic, spaces,
scoring and rendering live here, so both environments behave identically and score through the one
reward path in :mod:`srl_swe.rewards`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym

from srl_swe.envs.spaces import UnicodeText, chat_observation_space
from srl_swe.errors import SRLError
from srl_swe.rewards import FORMAT_PENALTY, Score, get_metric, score_output
from srl_swe.schema import Trajectory
from srl_swe.steps import Message, PromptBuilder, StepConfig
from srl_swe.trajectories import KEEP_CHOICES, load_trajectories

MAX_PROMPT_CHARS = 1 << 22
OBS_CACHE_SIZE = 256  # (trajectory, step) prefixes kept
# The whole model output (monologue included) may be long; only the action part is capped when scored. Parsing
# is linear, so an output of this size is scored in under 1 s whatever it holds (tests/test_bounded_parsing.py).
MAX_OUTPUT_CHARS = 1 << 20
Mode = Literal["trajectory", "step"]
Entry = tuple[str, tuple[dict[str, str], ...], str]  # prompt text, message dicts, expert action


class StepImitationEnv(gym.Env[dict, str]):
    # render_fps is required by the checker; text rendering has no natural rate, 4 is a readable default.
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    kind = "swe"  # a name in srl_swe.tasks.TASKS

    def __init__(
        self,
        data: str | Path | Sequence[Trajectory] | None = None,
        *,
        mode: Mode = "trajectory",
        syntax: str | None = None,
        window: int | Literal["default"] | None = "default",
        max_observation_chars: int = 4000,
        include_thoughts: bool = False,
        keep: str = "resolved",
        metric: str = "sequence_matcher",
        require_think: bool = True,
        max_action_chars: int = MAX_OUTPUT_CHARS,
        chat_template: Callable[[list[dict[str, str]]], str] | None = None,
        render_mode: str | None = None,
    ):
        if mode not in ("trajectory", "step"):
            raise ValueError(f"mode={mode!r}: choose 'trajectory' (one expert path per episode) or 'step'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: supported {self.metadata['render_modes']}")
        if keep not in KEEP_CHOICES:
            raise ValueError(f"keep={keep!r}: choose one of {KEEP_CHOICES}")
        get_metric(metric)
        self.trajectories = self._load(data, keep)
        cfg = StepConfig.for_task(self.kind, syntax, window, max_observation_chars=max_observation_chars,
                                  include_thoughts=include_thoughts)
        self.builder = PromptBuilder(self.trajectories, cfg)
        self.mode, self.metric, self.render_mode = mode, metric, render_mode
        self.require_think = require_think
        self.chat_template = chat_template
        # (trajectory, step) of every step example: the index space of single-step mode.
        self.index = [(i, k) for i, t in enumerate(self.trajectories) for k in range(len(t.steps))]
        self.observation_space = chat_observation_space(MAX_PROMPT_CHARS)
        self.action_space = UnicodeText(max_action_chars)
        self._traj = self._step = -1
        self._done = True
        # (trajectory, step) -> (prompt text, message dicts that are copied, never handed out, expert action)
        self._obs_cache: OrderedDict[tuple[int, int], Entry] = OrderedDict()
        self._cur: Entry = ("", (), "")  # the entry of the current prompt
        self._last: Score | None = None  # the score of the latest step, None right after reset
        self._info_of, self._info_base = -1, {}
        self._syntax = ""

    # -- data -------------------------------------------------------------------------------------
    def _default_data(self) -> Path:
        raise NotImplementedError

    def _load(self, data: Any, keep: str) -> list[Trajectory]:
        if data is None:
            data = self._default_data()
        if isinstance(data, (str, Path)):
            result = load_trajectories(data, keep=keep)  # type: ignore[arg-type]
            trajs = result.trajectories
            reasons = sorted({s.category for s in result.skipped})
            hint = f" ({len(result.skipped)} skipped: {', '.join(reasons)})" if result.skipped else ""
        else:
            trajs, hint = list(data), ""
        if not all(isinstance(t, Trajectory) for t in trajs):
            raise TypeError("data must be a path or a sequence of srl_swe.schema.Trajectory")
        trajs = [t for t in trajs if t.kind == self.kind]
        if not trajs:
            raise SRLError(f"no {self.kind} trajectories in {data!s}{hint}; "
                           "check the path, or pass keep='all' to include unresolved/unknown outcomes")
        return trajs

    @property
    def num_examples(self) -> int:
        return len(self.index)

    # -- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        size = len(self.trajectories) if self.mode == "trajectory" else len(self.index)
        idx = (options or {}).get("index")
        if idx is None:
            idx = int(self.np_random.integers(size))
        if not isinstance(idx, int) or not 0 <= idx < size:
            raise IndexError(f"options['index']={idx!r}: this {self.mode}-mode env has indices 0..{size - 1}")
        self._traj, self._step = (idx, 0) if self.mode == "trajectory" else self.index[idx]
        self._done, self._last = False, None
        self._syntax = self.builder.syntax_of(self._traj)
        self._cur = self._entry(self._traj, self._step)
        return _fresh(self._cur), self._info()

    def step(self, action: str):
        if self._done:
            raise RuntimeError("the episode is over: call reset() before step()")
        i, k = self._traj, self._step
        score = self._last = score_output(action, self._cur[2], self._syntax, self.metric, self.require_think)
        self._step = k + 1  # follow the expert's path whatever the agent did
        if self.mode == "step":
            # One decision per episode (a contextual bandit): nothing follows the action, so the final
            # observation is the prompt it answered (cached by reset; fresh dicts, as gymnasium asks) rather
            # than a prefix nobody reads (GRPO steps G rollouts per example and discards it). info names the
            # expert action.
            self._done = terminated = True
        else:
            terminated = self._done = self._step >= len(self.trajectories[i].steps)
            self._cur = self._entry(i, self._step)
        # Built inline (score.__dict__.copy() is Score.as_dict): beyond the reward, a step costs a few dict
        # copies, and it is timed against the bare reward in benchmarks/bench_core.py.
        return _fresh(self._cur), score.reward, terminated, False, {
            **self._info_base, "step_index": self._step, "expert_action": score.expert,
            "format_error": not score.valid, "score": score.__dict__.copy()}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._traj < 0:
            return "(call reset() first)\n"
        t = self.trajectories[self._traj]
        head = f"[{t.id}] step {self._step}/{len(t.steps)}"
        if self._last is not None:
            s = self._last
            head += f"  reward={s.reward:.3f} ({s.reason})"
            return f"{head}\npredicted:\n{s.predicted}\nexpert:\n{s.expert}\n"
        return f"{head}\n{self.builder.prompt(self._traj, self._step)[-1][1][-2000:]}\n"

    # -- helpers ----------------------------------------------------------------------------------
    def _entry(self, i: int, k: int) -> Entry:
        # GRPO resets to the same step example G times: keep the last few prefixes with their targets.
        hit = self._obs_cache.get((i, k))
        if hit is None:
            messages: tuple[Message, ...] = self.builder.prompt(i, k)
            dicts = tuple([{"role": r, "content": c} for r, c in messages])
            prompt = self.chat_template(list(map(dict.copy, dicts))) if self.chat_template else \
                self.builder.prompt_text(i, k)
            # k == number of steps: the final prefix of a finished episode, which has no expert action
            target = self.builder.target(i, k) if k < len(self.trajectories[i].steps) else ""
            hit = self._obs_cache[(i, k)] = (prompt, dicts, target)
            if len(self._obs_cache) > OBS_CACHE_SIZE:
                self._obs_cache.popitem(last=False)
        return hit

    def _info(self) -> dict[str, Any]:
        """info after reset: the per-trajectory part (built once per episode) and the step index."""
        if self._info_of != self._traj:
            t = self.trajectories[self._traj]
            self._info_of, self._info_base = self._traj, {
                "task_id": t.id, "trajectory_index": self._traj, "step_index": 0, "num_steps": len(t.steps),
                "source_format": t.source_format, "syntax": self.builder.syntax_of(self._traj)}
        return {**self._info_base, "step_index": self._step}


def _fresh(entry: Entry) -> dict[str, Any]:
    """An observation from a cache entry: fresh message dicts every call (callers may mutate or keep them,
    and gymnasium's checker flags observations that share objects); the strings are immutable."""
    return {"prompt": entry[0], "messages": tuple(map(dict.copy, entry[1]))}


__all__ = ["FORMAT_PENALTY", "StepImitationEnv"]
