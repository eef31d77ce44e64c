"""SRL-SWE-Exec-v0: solve a SWE-bench task for real, one tool call per step, rewarded by the harness."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym

from srl_swe.agent.episode import Episode, check_options
from srl_swe.envs.base import MAX_OUTPUT_CHARS, MAX_PROMPT_CHARS
from srl_swe.envs.spaces import UnicodeText, chat_observation_space
from srl_swe.paths import shared_data_dir
from srl_swe.runtime import RUNTIMES  # the registry only: no backend is imported
from srl_swe.swebench.grading import GRADERS, InstanceResult, default_grader, grade_patch
from srl_swe.swebench.prediction import Prediction
from srl_swe.swebench.runtimes import task_runtime
from srl_swe.tasks.swe import SWE


class SRLSWEExecEnv(gym.Env[dict, str]):
    """
    ## Description
    The online counterpart of SRL-SWE-v0: the agent works on a real SWE-bench task inside a sandbox (a
    Docker container from the task's image, or a temporary copy of the repository on the host), and its
    tool calls are executed for real. There is no expert to imitate; the reward is whether the submitted
    patch resolves the issue, graded like SWE-bench (the FAIL_TO_PASS and PASS_TO_PASS tests of the task,
    which the agent never sees). This is the environment for RL with verifiable rewards on software tasks,
    and for evaluating a trained policy step by step.

    ## Action Space
    ``UnicodeText(max_action_chars)``: the model's raw output, ``<think>…</think>`` followed by exactly one
    tool call in the env's ``syntax`` (``xml`` default, ``qwen``, or ``bash``). Tools: ``bash(command)``,
    ``str_replace_editor(command, path, file_text, old_str, new_str, insert_line, view_range)`` (SWE-agent's
    editor) and ``submit()`` (with the ``bash`` syntax, only bash; ``echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT``
    submits). A malformed output is not executed: the next observation explains the format.

    ## Observation Space
    ``Dict(prompt=UnicodeText, messages=Sequence(Dict(role, content)))``, built like SRL-SWE-v0's: the
    system prompt listing the tools, the issue (the repository is at ``/testbed``), then the last
    ``window`` executed actions and their *real* outputs as ``OBSERVATION:`` user turns; ``prompt`` is the
    same rendered as ChatML or by ``chat_template``.

    ## Rewards
    0 on every step but the last. When the episode ends the patch (``git diff`` of ``/testbed``; on a limit
    the current diff is submitted for the agent, as SWE-agent does) is graded: 1.0 if the task is resolved,
    else 0.0. ``grader="harness"`` runs the real swebench harness on Docker; ``grader="runtime"`` applies
    the patch and the task's tests in a fresh sandbox of ``runtime`` and grades with swebench's log parser.

    ## Starting State
    ``reset()`` picks a task uniformly with the env's RNG, ``options={"instance_id": id}`` or
    ``options={"index": i}`` picks one; every reset starts a fresh sandbox at the task's base commit (the
    previous one is removed).

    ## Episode End
    Terminates when the agent submits. Truncates at ``max_steps`` actions, ``max_seconds`` of wall time,
    ``max_format_errors`` consecutive malformed outputs, or when the sandbox fails.

    ## Arguments
    ``data`` (a ``local_tasks`` folder, a SWE-bench JSONL/JSON file, a dataset name, or a list of
    ``SWEInstance``; default ``$SRL_SWE_DATA/local_tasks``), ``runtime`` (``"docker"`` default, or
    ``"local"``: no isolation, see :mod:`srl_swe.runtime.local`), ``grader`` (default ``"harness"`` on docker,
    ``"runtime"`` otherwise: :func:`srl_swe.swebench.grading.default_grader`), ``syntax``, ``max_steps`` (50),
    ``max_seconds``, ``command_timeout`` (per bash command), ``max_format_errors`` (3), ``window`` (default 2
    as SRL-SWE-v0; ``None`` = whole history), ``max_observation_chars`` (4000), ``include_thoughts``,
    ``require_think``, ``chat_template``, ``runtime_kwargs`` (passed to
    :func:`srl_swe.swebench.runtimes.task_runtime`), ``workdir`` (harness logs; default a temporary folder),
    ``render_mode`` (``"ansi"``).

    ## Info
    ``instance_id``, ``step`` (actions taken), ``syntax``, ``exit_status`` (``None`` while running, then one of
    ``srl_swe.agent.EXIT_STATUSES``); after a step ``format_error``; at the end also ``patch``,
    ``prediction`` (``{instance_id, model_name_or_path, model_patch}``), ``resolved`` and ``grade`` (the
    grader's ``InstanceResult`` as a dict).

    ## Version History
    * v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        data: str | Path | Sequence[Any] | None = None,
        *,
        runtime: str = "docker",
        grader: Literal["harness", "runtime"] | None = None,
        syntax: str = "xml",
        max_steps: int = 50,
        max_seconds: float | None = None,
        command_timeout: float | None = None,
        max_format_errors: int = 3,
        window: int | Literal["default"] | None = "default",
        max_observation_chars: int = 4000,
        include_thoughts: bool = False,
        require_think: bool = True,
        chat_template: Callable[[list[dict[str, str]]], str] | None = None,
        runtime_kwargs: dict[str, Any] | None = None,
        workdir: str | Path | None = None,
        model_name: str = "srl-swe-exec",
        max_action_chars: int = MAX_OUTPUT_CHARS,
        render_mode: str | None = None,
    ):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime={runtime!r}: choose one of {sorted(RUNTIMES.names())}")
        grader = grader or default_grader(runtime)
        if grader not in GRADERS:
            raise ValueError(f"grader={grader!r}: choose 'harness' (swebench on Docker) or 'runtime'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: supported {self.metadata['render_modes']}")
        self.instances = _load_tasks(data)
        self.runtime_name, self.grader, self.render_mode = runtime, grader, render_mode
        self.runtime_kwargs = dict(runtime_kwargs or {})
        self.chat_template = chat_template
        self.workdir = Path(workdir) if workdir is not None else None
        self.episode_options = dict(
            syntax=syntax, max_steps=max_steps, max_seconds=max_seconds, command_timeout=command_timeout,
            max_format_errors=max_format_errors, window=SWE.default_window if window == "default" else window,
            max_observation_chars=max_observation_chars, include_thoughts=include_thoughts,
            require_think=require_think, model_name=model_name,
        )
        check_options(syntax, max_steps, self.episode_options["window"], max_format_errors)
        self.observation_space = chat_observation_space(MAX_PROMPT_CHARS)
        self.action_space = UnicodeText(max_action_chars)
        self._runtime: Any = None
        self._episode: Episode | None = None
        self._instance: Any = None
        self._final: dict[str, Any] = {}
        self._tmp: tempfile.TemporaryDirectory | None = None

    # -- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._close_runtime()
        self._episode, self._final = None, {}  # if the new sandbox cannot be made, no stale episode lingers
        self._instance = self._pick(options or {})
        self._runtime = task_runtime(self.runtime_name, self._instance, **self.runtime_kwargs)
        self._episode = Episode(self._instance.instance_id, self._instance.problem_statement, self._runtime,
                                **self.episode_options)
        return self._obs(), self._info()

    def step(self, action: str):
        episode = self._episode
        if episode is None or episode.done or self._instance is None:
            raise RuntimeError("the episode is over: call reset() before step()")
        record = episode.step(action)
        reward, terminated, truncated = 0.0, False, False
        if episode.done:
            # The sandbox is not needed for grading (graders start a fresh one): free it first.
            self._close_runtime()
            prediction = episode.result().prediction
            result = self._grade(self._instance, prediction)
            reward = 1.0 if result.resolved else 0.0
            terminated = episode.exit_status == "submitted"
            truncated = not terminated
            self._final = {"patch": episode.patch or "", "resolved": result.resolved, "grade": asdict(result),
                           "prediction": prediction.to_dict()}
        info = self._info()
        info["format_error"] = record.action is None
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._episode is None:
            return "(call reset() first)\n"
        ep = self._episode
        head = f"[{ep.instance_id}] step {len(ep.steps)}/{ep.max_steps}" + (f" {ep.exit_status}" if ep.done else "")
        if not ep.steps:
            return f"{head}\n{ep.task[-2000:]}\n"
        last = ep.steps[-1]
        return f"{head}\naction:\n{last.output[-2000:]}\nobservation:\n{last.observation[-2000:]}\n"

    def close(self) -> None:
        self._close_runtime()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        super().close()

    # -- helpers ----------------------------------------------------------------------------------
    def _pick(self, options: dict[str, Any]) -> Any:
        if "instance_id" in options:
            found = [i for i in self.instances if i.instance_id == options["instance_id"]]
            if not found:
                ids = ", ".join(i.instance_id for i in self.instances[:10])
                raise KeyError(f"options['instance_id']={options['instance_id']!r} is not among the tasks ({ids}...)")
            return found[0]
        idx = options.get("index")
        if idx is None:
            idx = int(self.np_random.integers(len(self.instances)))
        if not isinstance(idx, int) or not 0 <= idx < len(self.instances):
            raise IndexError(f"options['index']={idx!r}: this env has tasks 0..{len(self.instances) - 1}")
        return self.instances[idx]

    def _grade(self, instance: Any, prediction: Prediction) -> InstanceResult:
        if self.grader == "harness" and self.workdir is None:  # the harness's logs: removed by close()
            self._tmp = self._tmp or tempfile.TemporaryDirectory(prefix="srl-swe-exec-")
            self.workdir = Path(self._tmp.name)
        return grade_patch(instance, prediction, runtime=self.runtime_name, grader=self.grader,
                           workdir=self.workdir, run_prefix="exec")

    def _obs(self) -> dict[str, Any]:
        ep = self._require_episode()
        messages = ep.prompt()
        prompt = self.chat_template(messages) if self.chat_template else ep.prompt_text()
        return {"prompt": prompt, "messages": tuple(messages)}

    def _info(self) -> dict[str, Any]:
        ep = self._require_episode()
        info: dict[str, Any] = {"instance_id": ep.instance_id, "step": len(ep.steps), "syntax": ep.syntax,
                                "exit_status": ep.exit_status}
        info.update(self._final)
        return info

    def _require_episode(self) -> Episode:
        if self._episode is None:
            raise RuntimeError("call reset() first")
        return self._episode

    def _close_runtime(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def _load_tasks(data: Any) -> list[Any]:
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.swebench.instance import SWEInstance

    if data is None:
        data = shared_data_dir() / "local_tasks"
    if isinstance(data, (str, Path)):
        instances = load_instances(data)
    else:
        instances = list(data)
        if not all(isinstance(i, SWEInstance) for i in instances):
            raise TypeError("data must be a path, a dataset name or a sequence of srl_swe.swebench.SWEInstance")
    if not instances:
        raise ValueError(f"no tasks in {data!s}")
    return instances
