"""What ``srl-swe eval swebench`` predicts with: the gold patches, a replay of expert trajectories, or a model.

A :data:`Predictor` maps one instance to its prediction's fields. A model in agent mode gets a
:class:`BatchAgentPredictor` instead, which runs up to ``batch_size`` episodes in lockstep
(:func:`srl_swe.agent.batch.run_agents`: one batched generation per turn, the actions executed in parallel in
their sandboxes) and reports each instance as its episode ends; ``batch_size=1`` is the sequential loop.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from srl_swe.actions import THINK_PREFILL
from srl_swe.errors import SRLError
from srl_swe.swebench.instance import SWEInstance

#: What a predictor returns for one instance: the prediction's fields (``model_patch`` and extra fields such
#: as ``exit_status`` or ``error``); :func:`srl_swe.eval.swebench.predict_all` adds the id, the model name and
#: the time taken.
Predictor = Callable[[SWEInstance, Path], Mapping[str, Any]]
#: Called once per instance of a batch as soon as it is done: its fields, or the exception that stopped it.
Record = Callable[[SWEInstance, "Mapping[str, Any] | BaseException"], None]


def save_messages(out: Path, instance_id: str, messages: list[dict[str, str]]) -> None:
    (out / "trajs").mkdir(parents=True, exist_ok=True)
    (out / "trajs" / f"{instance_id}.json").write_text(json.dumps(messages, indent=1, ensure_ascii=False))


def episode_fields(res: Any) -> dict[str, Any]:
    """What a prediction records of its agent episode: the patch, why it ended, its steps and how many of them
    were valid tool calls (the others broke the action format), and its generated tokens when counted."""
    fields = {"model_patch": res.patch, "exit_status": res.exit_status, "steps": len(res.steps),
              "valid_steps": sum(s.action is not None for s in res.steps)}
    if res.total_tokens is not None:
        fields["tokens"] = res.total_tokens
    return fields


def _replay_predictor(path: str, mode: str, runtime: str, limits: dict[str, Any]) -> Predictor:
    from srl_swe.agent.loop import run_agent
    from srl_swe.agent.policies import ReplayPolicy
    from srl_swe.swebench.runtimes import task_runtime
    from srl_swe.trajectories import load_trajectories

    if mode != "agent":
        raise SRLError("--model replay:PATH replays agent trajectories; use it with --mode agent")
    by_task = {t.task.instance_id: t for t in load_trajectories(path, keep="all").trajectories if t.kind == "swe"}

    def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
        traj = by_task.get(inst.instance_id)
        if traj is None:
            return {"model_patch": "", "error": f"no trajectory for {inst.instance_id} in {path}"}
        with task_runtime(runtime, inst) as rt:
            res = run_agent(ReplayPolicy(traj), inst, rt, model_name=f"replay:{path}", **limits)
        save_messages(out, inst.instance_id, res.messages)
        return episode_fields(res)

    return predict


class BatchAgentPredictor:
    """Agent-mode episodes of one model, ``batch_size`` at a time in lockstep (see the module docstring)."""

    def __init__(self, generator: Any, *, runtime: str, model_name: str, batch_size: int, workers: int,
                 temperature: float, max_new_tokens: int, syntax: str, limits: dict[str, Any]):
        self.generator, self.runtime, self.model_name = generator, runtime, model_name
        self.batch_size, self.workers, self.syntax, self.limits = batch_size, workers, syntax, limits
        self.temperature, self.max_new_tokens = temperature, max_new_tokens

    def predict_batch(self, instances: Sequence[SWEInstance], out: Path, record: Record) -> None:
        from srl_swe.agent.batch import run_agents
        from srl_swe.swebench.runtimes import task_runtime

        def done(inst: SWEInstance, res: Any) -> None:
            if isinstance(res, BaseException):
                record(inst, res)
                return
            save_messages(out, inst.instance_id, res.messages)
            fields = {**episode_fields(res), "seconds": round(res.seconds, 3)}
            record(inst, {**fields, **({"error": res.error} if res.error else {})})

        run_agents(self.generator, instances, lambda inst: task_runtime(self.runtime, inst),
                   temperature=self.temperature, max_new_tokens=self.max_new_tokens, concurrency=self.batch_size,
                   workers=max(self.workers, self.batch_size), syntax=self.syntax, model_name=self.model_name,
                   on_result=done, **self.limits)


def _model_predictor(opts: Any, limits: dict[str, Any]) -> Predictor | BatchAgentPredictor:
    from srl_swe.models import make_generator
    from srl_swe.swebench.runtimes import task_runtime

    model, runtime = str(opts.model), opts.runtime
    generator = make_generator(opts.backend, model, batch_size=opts.batch_size, dtype=opts.dtype)
    if opts.mode == "agent":
        # --workers episodes at once at the least, as when each worker ran one and generation was serialized
        return BatchAgentPredictor(generator, runtime=runtime, model_name=model,
                                   batch_size=max(opts.batch_size, opts.workers), workers=opts.workers,
                                   temperature=opts.temperature, max_new_tokens=opts.max_new_tokens,
                                   syntax=opts.syntax, limits=limits)

    from srl_swe.eval.oracle import oracle_predict_batch, read_oracle_files

    # One model, several sandboxes: workers overlap reading files, not generation. The prompt's token count (the
    # context check) is under the lock too: a fast tokenizer used by two threads at once can fail.
    gen_lock = threading.Lock()

    def predict(inst: SWEInstance, out: Path) -> dict[str, Any]:
        with task_runtime(runtime, inst) as rt:
            files = read_oracle_files(inst, rt.read_file)
        with gen_lock:
            return oracle_predict_batch([inst], [files], generator, temperature=opts.temperature,
                                        max_new_tokens=opts.max_new_tokens, model_name=model)[0].to_dict()
    return predict


def make_predictor(opts: Any) -> Predictor | BatchAgentPredictor:
    """The predictor for ``opts.model`` (a :class:`~srl_swe.eval.swebench.SWEBenchOptions`): the gold patches,
    a replay of expert trajectories, or a model."""
    if opts.model is None:
        raise SRLError("no --model to predict with")
    limits = {"max_steps": opts.max_steps, "max_seconds": opts.max_seconds,
              "window": None if opts.window is None or opts.window < 0 else opts.window,
              "max_observation_chars": opts.max_observation_chars, "require_think": opts.require_think,
              "prefill": THINK_PREFILL if opts.think_prefill else ""}
    if opts.model == "gold":
        return lambda inst, out: {"model_patch": inst.patch}
    if opts.model.startswith("replay:"):
        return _replay_predictor(opts.model[len("replay:"):], opts.mode, opts.runtime, limits)
    return _model_predictor(opts, limits)
