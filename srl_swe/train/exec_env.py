"""SWE tasks as a TRL ``environment_factory`` environment: RLVR with real tools and a harness-graded reward.

TRL's ``GRPOTrainer(environment_factory=...)`` (TRL >= 1.16, experimental there) creates one environment per
rollout, calls ``reset(**example)`` before generation, exposes the environment's public methods as tools
(schemas from their signatures and Google-style docstrings), runs the model's native tool calls against
them, and calls ``get_reward()`` once the rollout ends. :class:`SWEToolEnv` gives it the same three tools as
``SRL-SWE-Exec-v0`` (:class:`srl_swe.tools.ToolBox`: ``bash``, ``str_replace_editor``, ``submit``) in a fresh
sandbox per rollout, and grades the patch exactly like the environment does.

    rows = exec_rows(instances)                    # {"prompt": [...], "instance_id": ...} per task
    factory = exec_environment_factory(instances, runtime="docker")
    trainer = GRPOTrainer(model, args=GRPOConfig(...), train_dataset=Dataset.from_list(rows),
                          environment_factory=factory, processing_class=tokenizer)

The tool calls are the model's native format (Qwen: ``<tool_call>{json}</tool_call>``, the ``qwen`` action
syntax), so a policy SRL-trained with ``syntax="qwen"`` continues here on the calls it learned; the xml
syntax would need a custom ``rollout_func`` instead. The tokenizer's chat template must render tools
(TRL checks it) and be one TRL can parse tool calls from (Qwen2.5/Qwen3, Llama 3.1, ...):
:func:`srl_swe.models.templates.tool_calling_tokenizer` makes it so for ChatML models.

``srl-swe train`` with ``mode: rlvr`` (or ``srl_then_rlvr``) and ``task: swe`` goes through here: the config
keys ``runtime``, ``exec_max_steps``, ``exec_command_timeout`` and ``exec_grading_workers`` are checked by
:func:`exec_config_rules` and the config's ranges before any model loads; every graded rollout (training and
evaluation alike) is appended to the run's ``rollouts.jsonl``.
"""

from __future__ import annotations

import difflib
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from srl_swe.runtime import RUNTIMES
from srl_swe.runtime.base import REPO_DIR
from srl_swe.schema import ToolCall
from srl_swe.swebench.grading import InstanceResult, default_grader, grade_patch
from srl_swe.swebench.prediction import make_prediction
from srl_swe.swebench.runtimes import task_runtime
from srl_swe.tasks.swe import SWE, TOOLS
from srl_swe.tools import ToolBox

_RESULTS_LOCK = threading.Lock()  # rollouts graded in parallel append to one results file


def exec_rows(instances: Sequence[Any]) -> list[dict[str, Any]]:
    """One training row per task: the issue as the user prompt, and the id that ``reset`` uses."""
    return [{"prompt": [{"role": "user", "content": SWE.task_message(i.problem_statement, repo=REPO_DIR,
                                                                      submit_hint=True)}],
             "instance_id": i.instance_id} for i in instances]


def exec_environment_factory(instances: Sequence[Any], *, grading_workers: int = 1,
                             **kwargs: Any) -> Callable[[], SWEToolEnv]:
    """A zero-argument factory for TRL; ``kwargs`` go to :class:`SWEToolEnv` (runtime, grader, ...).

    With ``grading_workers > 1`` its environments share a pool of that many grading threads."""
    by_id = {i.instance_id: i for i in instances}
    if not by_id:
        raise ValueError("no tasks: pass the SWE-bench instances the training rows refer to")
    if grading_workers < 1:
        raise ValueError(f"grading_workers must be >= 1, got {grading_workers}")
    pool = ThreadPoolExecutor(grading_workers, thread_name_prefix="srl-swe-grade") if grading_workers > 1 else None
    return lambda: SWEToolEnv(by_id, grading_pool=pool, **kwargs)


class SWEToolEnv:
    """One rollout's sandbox. Public methods other than ``reset``/``get_reward`` are the model's tools."""

    def __init__(self, instances: dict[str, Any], *, runtime: str = "docker", grader: str | None = None,
                 command_timeout: float | None = None, runtime_kwargs: dict[str, Any] | None = None,
                 workdir: str | None = None, results_path: str | Path | None = None,
                 grading_pool: Executor | None = None):
        self._instances, self._runtime_name = instances, runtime
        self._grader = grader or default_grader(runtime)
        self._timeout, self._runtime_kwargs, self._workdir = command_timeout, dict(runtime_kwargs or {}), workdir
        # One JSON line per graded rollout: TRL logs only the batch mean, this says which task got what and why.
        self._results_path = Path(results_path) if results_path is not None else None
        self._runtime: Any = None
        self._box: ToolBox | None = None
        self._instance: Any = None
        self._patch: str | None = None
        self._calls, self._started = 0, 0.0
        self._pool, self._pending = grading_pool, None  # _pending: the Future of this rollout's reward
        self.last_grade: Any = None

    def reset(self, instance_id: str, **example: Any) -> str | None:
        if instance_id not in self._instances:
            raise KeyError(f"instance_id {instance_id!r} is not among the {len(self._instances)} tasks given to "
                           "exec_environment_factory")
        self._close()
        self._instance, self._patch, self.last_grade = self._instances[instance_id], None, None
        self._calls, self._started, self._pending = 0, time.monotonic(), None
        self._runtime = task_runtime(self._runtime_name, self._instance, **self._runtime_kwargs)
        self._box = ToolBox(self._runtime, timeout=self._timeout)
        return None  # the row's prompt already holds the task

    # The tools: TRL builds their schemas from these signatures and docstrings, which are the one tool
    # description of srl_swe.tasks.swe.TOOLS (what SRL-SWE-v0's system prompt lists, what ToolBox accepts).
    def bash(self, command: str) -> str:
        return self._run(ToolCall.make("bash", command=command))

    def str_replace_editor(self, command: str, path: str, file_text: str | None = None, old_str: str | None = None,
                           new_str: str | None = None, insert_line: int | None = None,
                           view_range: list[int] | None = None) -> str:
        given = {"command": command, "path": path, "file_text": file_text, "old_str": old_str, "new_str": new_str,
                 "insert_line": insert_line, "view_range": view_range}
        return self._run(ToolCall.make("str_replace_editor", {k: v for k, v in given.items() if v is not None}))

    def submit(self) -> str:
        return self._run(ToolCall.make("submit"))

    bash.__doc__, str_replace_editor.__doc__, submit.__doc__ = (
        TOOLS[name].docstring() for name in ("bash", "str_replace_editor", "submit"))

    def get_reward(self) -> float:
        """1.0 if the patch (the submitted one, else the current diff) resolves the task, else 0.0."""
        self._grade_later()
        pending, self._pending = self._pending, None
        return pending.result()

    def _grade_later(self) -> None:
        """End the rollout and start grading its patch (on the factory's grading pool, else right here).

        TRL asks each rollout for its reward in turn; SRLGRPOTrainer calls this on every rollout of the batch
        first, so with ``grading_workers > 1`` the gradings (minutes each under the harness) overlap."""
        if self._pending is not None:
            return
        if self._box is None or self._instance is None:
            raise RuntimeError("get_reward() before reset(): no rollout to grade")
        submitted, patch = self._patch is not None, self._patch
        if patch is None:  # the rollout ended without submit (length or tool-call limit): SWE-agent autosubmits
            patch = self._box.run(ToolCall.make("submit")).patch or ""
        self._close()  # graders use a fresh sandbox: this one's container or copy can go now
        job = (self._instance, patch, submitted, self._calls, self._started)
        if self._pool is not None:
            self._pending = self._pool.submit(self._finish, *job)
        else:
            self._pending = Future()
            self._pending.set_result(self._finish(*job))

    def _finish(self, instance: Any, patch: str, submitted: bool, calls: int, started: float) -> float:
        self.last_grade = grade = self._grade(instance, patch)
        reward = 1.0 if grade.resolved else 0.0
        if self._results_path is not None:
            record = {"instance_id": instance.instance_id, "reward": reward, "status": grade.status,
                      "error": grade.error, "tool_calls": calls, "submitted": submitted,
                      "patch_lines": len(patch.splitlines()), "seconds": round(time.monotonic() - started, 3)}
            with _RESULTS_LOCK:
                self._results_path.parent.mkdir(parents=True, exist_ok=True)
                with self._results_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
        return reward

    def _run(self, call: ToolCall) -> str:
        if self._box is None:
            raise RuntimeError("call reset() first")
        if self._patch is not None:
            return "You already submitted; the episode is over."
        self._calls += 1
        out = self._box.run(call)
        if out.done:
            self._patch = out.patch or ""
        return out.observation

    def _grade(self, instance: Any, patch: str) -> InstanceResult:
        prediction = make_prediction(instance.instance_id, patch, "srl-swe-rlvr")
        return grade_patch(instance, prediction, runtime=self._runtime_name, grader=self._grader,
                           workdir=self._workdir, run_prefix="rlvr")

    def _close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def environment_tools(factory: Callable[[], Any]) -> list[Callable[..., Any]]:
    """The tools TRL's ``GRPOTrainer`` exposes for ``environment_factory=factory`` and renders into every prompt:
    the public functions of the environment's class other than ``reset`` and ``get_reward``, bound to one
    instance, in name order (TRL lists them the same way)."""
    import inspect

    env = factory()
    return [getattr(env, name) for name, _ in inspect.getmembers(type(env), predicate=inspect.isfunction)
            if not name.startswith("_") and name not in ("reset", "get_reward")]


# -- srl-swe train: config rules and the tokenizer (RLVR on SWE tasks) ------------------------------------------
RLVR_MODES = ("rlvr", "srl_then_rlvr")
_Rule = tuple[tuple[str, ...], bool, str, str | None]


def is_exec_rlvr(cfg: Any) -> bool:
    """Whether a training config runs RLVR on SWE tasks, i.e. through this module's environment."""
    return cfg.task == "swe" and cfg.mode in RLVR_MODES


def names_hub_dataset(source: str) -> bool:
    """Whether :func:`srl_swe.swebench.datasets.load_instances` reads ``source`` from the Hugging Face hub
    (same test as there): not an existing path, not a .json/.jsonl name, not absolute, not ``.``/``~``-led."""
    path = Path(source).expanduser()
    return not (path.exists() or path.suffix in (".json", ".jsonl") or path.is_absolute()
                or source.startswith((".", "~")))


def exec_config_rules(c: Any) -> list[_Rule]:
    """``(keys, ok, problem, allowed)`` rules for :mod:`srl_swe.train.config`, checked before any model loads."""
    near = difflib.get_close_matches(str(c.runtime), RUNTIMES.names(), n=1)
    on = is_exec_rlvr(c)
    return [
        (("runtime",), c.runtime in RUNTIMES, "unknown runtime" + (f"; did you mean {near[0]!r}?" if near else ""),
         "docker (a container per rollout from the task's image, graded by the SWE-bench harness) or local "
         "(a temporary copy of the repository on the host: not isolated)"),
        (("mode", "task", "train_data"), not on or c.train_data is not None,
         "RLVR on SWE tasks trains on SWE-bench instances and none are bundled",
         "train_data=PATH (a local_tasks folder, a SWE-bench .jsonl/.json) or a Hugging Face dataset name"),
        (("mode", "task", "syntax"), not on or c.syntax in (None, "qwen"),
         "RLVR on SWE tasks runs the model's native tool calls (TRL's environment_factory), the qwen syntax",
         "syntax=qwen or null"),
        (("mode", "task", "step_eval"), not on or not c.step_eval,
         "the step evaluation reads expert trajectories; RLVR on SWE tasks reads SWE-bench instances",
         "step_eval=false (measure the trained model with `srl-swe eval swebench`)"),
    ]

