"""Episodes in lockstep (srl_swe.agent.batch.run_agents) on the real local runtime: greedy outputs, transcripts
and patches equal the sequential loop's with a real (tiny) model; one generate call per turn holds every
running episode; a finished episode's place goes to the next task; a task whose sandbox cannot be created is
reported with its error while the others run; ``eval swebench`` records each episode as it ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srl_swe.agent import ModelPolicy, run_agent
from srl_swe.agent.batch import run_agents
from srl_swe.schema import ToolCall

TASKS = ("marshmallow-code__marshmallow-1359", "marshmallow-code__marshmallow-1867")


@pytest.fixture(scope="module")
def instances(local_tasks: Path):
    from srl_swe.swebench.datasets import load_instances

    insts = load_instances(local_tasks, list(TASKS))
    assert [i.instance_id for i in insts] == list(TASKS)
    return insts


def local(instance):
    from srl_swe.swebench.runtimes import task_runtime

    return task_runtime("local", instance)


def xml(call: ToolCall) -> str:
    from srl_swe.actions import render

    return f"<think>\nnext\n</think>\n{render(call, 'xml')}"


class Scripted:
    """A generator that answers each prompt by its task (found by its issue text) and turn, and records the
    size of every call's batch."""

    def __init__(self, instances, plans: dict[str, list[str]]):
        self.plans, self.calls = plans, []
        self.issues = {i.problem_statement[:200]: i.instance_id for i in instances}

    def generate(self, prompts, *, n, temperature, max_new_tokens, seed):
        self.calls.append(len(prompts))
        out = []
        for messages in prompts:
            task = next(iid for text, iid in self.issues.items() if text in messages[1]["content"])
            turn = sum(m["role"] == "assistant" for m in messages)  # window 2 shows at most 2 turns
            plan = self.plans[task]
            out.append([plan[min(turn, len(plan) - 1)]])
        return out


@pytest.mark.slow
def test_greedy_lockstep_equals_the_sequential_loop_with_a_real_model(instances, tmp_path):
    pytest.importorskip("torch")
    from srl_swe.models.generation import TransformersGenerator
    from srl_swe.models.tiny import make_tiny_qwen2

    gen = TransformersGenerator.from_spec(str(make_tiny_qwen2(tmp_path / "tiny")), batch_size=8, progress=False)
    limits = {"max_steps": 4, "max_format_errors": 4}
    # Three episodes: both tasks (prompts of different lengths, so the batch is padded) and the first again.
    order = [instances[0], instances[1], instances[0]]
    sequential = []
    for inst in order:
        with local(inst) as rt:
            sequential.append(run_agent(ModelPolicy(gen, max_new_tokens=24, name="tiny"), inst, rt, **limits))
    batched = run_agents(gen, order, local, max_new_tokens=24, model_name="tiny", **limits)
    for seq, bat in zip(sequential, batched, strict=True):
        assert not isinstance(bat, BaseException), bat
        assert [s.output for s in bat.steps] == [s.output for s in seq.steps]
        assert bat.messages == seq.messages and bat.exit_status == seq.exit_status
        assert bat.prediction.to_dict() == seq.prediction.to_dict() and bat.total_tokens == seq.total_tokens
    assert len(sequential[0].steps) == 4  # the episodes ran their turns (not all over at the first output)


def test_one_generate_call_per_turn_and_the_batch_refills(instances):
    view = xml(ToolCall.make("str_replace_editor", {"command": "view", "path": "/testbed/setup.py"}))
    edit = xml(ToolCall.bash("echo '# batched' >> /testbed/setup.py"))
    submit = xml(ToolCall("submit"))
    gen = Scripted(instances, {TASKS[0]: [view, edit, submit], TASKS[1]: [view, submit]})
    a, b = instances
    seen: list[str] = []
    results = run_agents(gen, [a, b, a], local, concurrency=2, max_steps=10,
                         on_result=lambda inst, res: seen.append(inst.instance_id))
    # Turns: {a, b}; {a, b}; b submits, the third episode joins: {a, a'}; a submits: {a'}; {a'}.
    assert gen.calls == [2, 2, 2, 1, 1]
    assert seen == [TASKS[1], TASKS[0], TASKS[0]]
    for res, steps in zip(results, (3, 2, 3), strict=True):
        assert res.exit_status == "submitted" and len(res.steps) == steps
    assert "+# batched" in results[0].patch and results[1].patch == "" and results[2].patch == results[0].patch
    assert "setup" in results[0].steps[0].observation  # the real file was viewed


def test_a_task_whose_sandbox_fails_is_reported_and_the_others_run(instances):
    submit = xml(ToolCall("submit"))
    gen = Scripted(instances, {TASKS[0]: [submit], TASKS[1]: [submit]})

    def opener(inst):
        if inst.instance_id == TASKS[0]:
            raise OSError("no sandbox for this one")
        return local(inst)

    first, second = run_agents(gen, instances, opener)
    assert isinstance(first, OSError) and "no sandbox" in str(first)
    assert second.exit_status == "submitted" and gen.calls == [1]
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        run_agents(gen, instances, local, concurrency=0)
    assert run_agents(gen, [], local) == []


@pytest.mark.slow
def test_eval_swebench_agent_mode_batches_and_records_each_episode(local_tasks, tmp_path):
    pytest.importorskip("torch")
    from srl_swe.eval.swebench import PREDICTIONS, SWEBenchOptions, evaluate
    from srl_swe.models.tiny import make_tiny_qwen2

    model = make_tiny_qwen2(tmp_path / "tiny")
    common = {"dataset": local_tasks, "model": str(model), "runtime": "local", "max_steps": 2,
              "max_new_tokens": 16, "dtype": "float32", "quiet": True}
    out_seq, seq = evaluate(SWEBenchOptions(**common, out=tmp_path / "seq", batch_size=1))
    out_bat, bat = evaluate(SWEBenchOptions(**common, out=tmp_path / "bat", batch_size=2))
    assert seq["total"] == bat["total"] == 2 and seq["instances"] == bat["instances"]
    read = lambda out: {json.loads(line)["instance_id"]: json.loads(line) for line in  # noqa: E731
                        (out / PREDICTIONS).read_text().splitlines()}
    preds_seq, preds_bat = read(out_seq), read(out_bat)
    assert set(preds_bat) == set(TASKS)
    for iid in TASKS:
        assert preds_bat[iid]["model_patch"] == preds_seq[iid]["model_patch"]
        assert preds_bat[iid]["exit_status"] == preds_seq[iid]["exit_status"] and preds_bat[iid]["seconds"] > 0
        assert (out_bat / "trajs" / f"{iid}.json").read_text() == (out_seq / "trajs" / f"{iid}.json").read_text()
