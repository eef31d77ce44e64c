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
(TRL checks it) and be one TRL can parse tool calls from (Qwen2.5/Qwen3, Llama 3.1, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from srl_swe.schema import ToolCall
from srl_swe.tools import ToolBox

TASK_PROMPT = ("Solve this issue in the repository at /testbed. Use the tools to explore, edit and test, then call "
               "submit.\n\n<issue>\n{problem}\n</issue>")


def exec_rows(instances: Sequence[Any]) -> list[dict[str, Any]]:
    """One training row per task: the issue as the user prompt, and the id that ``reset`` uses."""
    return [{"prompt": [{"role": "user", "content": TASK_PROMPT.format(problem=i.problem_statement)}],
             "instance_id": i.instance_id} for i in instances]


def exec_environment_factory(instances: Sequence[Any], **kwargs: Any) -> Callable[[], SWEToolEnv]:
    """A zero-argument factory for TRL; ``kwargs`` go to :class:`SWEToolEnv` (runtime, grader, ...)."""
    by_id = {i.instance_id: i for i in instances}
    if not by_id:
        raise ValueError("no tasks: pass the SWE-bench instances the training rows refer to")
    return lambda: SWEToolEnv(by_id, **kwargs)


class SWEToolEnv:
    """One rollout's sandbox. Public methods other than ``reset``/``get_reward`` are the model's tools."""

    def __init__(self, instances: dict[str, Any], *, runtime: str = "docker", grader: str | None = None,
                 command_timeout: float | None = None, runtime_kwargs: dict[str, Any] | None = None,
                 workdir: str | None = None):
        self._instances, self._runtime_name = instances, runtime
        self._grader = grader or ("harness" if runtime == "docker" else "runtime")
        self._timeout, self._runtime_kwargs, self._workdir = command_timeout, dict(runtime_kwargs or {}), workdir
        self._runtime: Any = None
        self._box: ToolBox | None = None
        self._instance: Any = None
        self._patch: str | None = None
        self.last_grade: Any = None

    def reset(self, instance_id: str, **example: Any) -> str | None:
        from srl_swe.runtime import make_runtime

        if instance_id not in self._instances:
            raise KeyError(f"instance_id {instance_id!r} is not among the {len(self._instances)} tasks given to "
                           "exec_environment_factory")
        self._close()
        self._instance, self._patch, self.last_grade = self._instances[instance_id], None, None
        self._runtime = make_runtime(self._runtime_name, self._instance, **self._runtime_kwargs)
        self._box = ToolBox(self._runtime, timeout=self._timeout)
        return None  # the row's prompt already holds the task

    def bash(self, command: str) -> str:
        """Run a shell command in the repository (/testbed) and return its output.

        Args:
            command: The bash command to run.
        """
        return self._run(ToolCall.make("bash", command=command))

    def str_replace_editor(self, command: str, path: str, file_text: str | None = None, old_str: str | None = None,
                           new_str: str | None = None, insert_line: int | None = None,
                           view_range: list[int] | None = None) -> str:
        """View, create and edit files. view shows a file with line numbers (or a directory two levels deep);
        create writes a new file; str_replace replaces old_str, which must occur exactly once, by new_str;
        insert adds new_str after line insert_line; undo_edit reverts the last edit of the file.

        Args:
            command: One of view, create, str_replace, insert, undo_edit.
            path: Absolute path of the file or directory, e.g. /testbed/src/module.py.
            file_text: For create: the content of the new file.
            old_str: For str_replace: the exact text to replace.
            new_str: For str_replace: the replacement; for insert: the text to insert.
            insert_line: For insert: the line after which new_str is inserted (0 = start of the file).
            view_range: For view of a file: [first, last] line numbers (last -1 = end of file).
        """
        given = {"command": command, "path": path, "file_text": file_text, "old_str": old_str, "new_str": new_str,
                 "insert_line": insert_line, "view_range": view_range}
        return self._run(ToolCall.make("str_replace_editor", {k: v for k, v in given.items() if v is not None}))

    def submit(self) -> str:
        """Finish: submit the current changes to the repository as the solution."""
        return self._run(ToolCall.make("submit"))

    def get_reward(self) -> float:
        """1.0 if the patch (the submitted one, else the current diff) resolves the task, else 0.0."""
        if self._box is None or self._instance is None:
            raise RuntimeError("get_reward() before reset(): no rollout to grade")
        patch = self._patch
        if patch is None:  # the rollout ended without submit (length or tool-call limit): SWE-agent autosubmits
            patch = self._box.run(ToolCall.make("submit")).patch or ""
        self._close()
        self.last_grade = self._grade(patch)
        return 1.0 if self.last_grade.resolved else 0.0

    def _run(self, call: ToolCall) -> str:
        if self._box is None:
            raise RuntimeError("call reset() first")
        if self._patch is not None:
            return "You already submitted; the episode is over."
        out = self._box.run(call)
        if out.done:
            self._patch = out.patch or ""
        return out.observation

    def _grade(self, patch: str) -> Any:
        if self._grader == "runtime":
            from srl_swe.swebench.grading import grade_in_runtime

            return grade_in_runtime(self._instance, patch, runtime=self._runtime_name)
        import tempfile
        import uuid
        from pathlib import Path

        from srl_swe.swebench.grading import grade_with_harness

        prediction = {"instance_id": self._instance.instance_id, "model_name_or_path": "srl-swe-rlvr",
                      "model_patch": patch}
        workdir = Path(self._workdir or tempfile.mkdtemp(prefix="srl-swe-rlvr-"))
        results = grade_with_harness([prediction], [self._instance], run_id=f"rlvr-{uuid.uuid4().hex[:12]}",
                                     workdir=workdir)
        return results[self._instance.instance_id]

    def _close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
