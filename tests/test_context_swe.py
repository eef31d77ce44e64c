"""Model limits on the SWE paths, with real tiny models of a short context on the two real marshmallow tasks: an
agent episode whose prompt outgrows the context ends with ``context_exceeded`` (checked every turn, in lockstep
and in the sequential loop, without failing the other episodes), and oracle-file mode records a per-instance error
saying by how much, without generating, while the instance beside it in the batch is generated."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from srl_swe.agent import ModelPolicy, run_agent
from srl_swe.agent.batch import run_agents
from srl_swe.agent.episode import Episode
from srl_swe.eval import oracle
from srl_swe.models.generation import TransformersGenerator
from srl_swe.models.tiny import make_tiny_qwen2

ID_1359, ID_1867 = "marshmallow-code__marshmallow-1359", "marshmallow-code__marshmallow-1867"
NEW = 16  # max_new_tokens


@pytest.fixture(scope="module")
def instances(local_tasks: Path):
    from srl_swe.swebench.datasets import load_instances

    return {i.instance_id: i for i in load_instances(local_tasks, [ID_1359, ID_1867])}


def local(instance):
    from srl_swe.swebench.runtimes import task_runtime

    return task_runtime("local", instance)


def _count(tok, messages) -> int:
    """Tokens of a prompt counted by the chat template's own tokenization (independently of the code under test)."""
    return len(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"])


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_tiny_qwen2(tmp_path_factory.mktemp("tok") / "m", max_positions=256))


def _model(tmp_path: Path, positions: int) -> TransformersGenerator:
    path = make_tiny_qwen2(tmp_path / f"ctx{positions}", max_positions=positions)
    return TransformersGenerator.from_spec(str(path), batch_size=4, progress=False)


def test_agent_episodes_end_with_context_exceeded_as_their_prompts_outgrow_it(instances, tokenizer, tmp_path):
    first = {}
    for iid, inst in instances.items():
        with local(inst) as rt:
            first[iid] = _count(tokenizer, Episode(iid, inst.problem_statement, rt).prompt())
    assert first[ID_1867] < first[ID_1359]  # 1359's issue is the longer
    # 1867's first prompt fits, with a little room; a turn (output + observation) takes more than that room
    context = first[ID_1867] + NEW + 24
    gen = _model(tmp_path, context)
    limits = {"max_steps": 5, "max_format_errors": 5}
    batched = run_agents(gen, [instances[ID_1359], instances[ID_1867]], local, max_new_tokens=NEW,
                         model_name="tiny", **limits)
    long, short = batched
    # 1359 does not fit from the start: no step, nothing generated for it, and its batch mate still ran
    assert long.exit_status == "context_exceeded" and long.steps == () and long.patch == ""
    assert long.error == (f"prompt is {first[ID_1359]:,} tokens + {NEW} new > {context:,} context by "
                          f"{first[ID_1359] + NEW - context:,}: the episode ends (context_exceeded); fewer history "
                          f"pairs (--window), shorter observations (--max-observation-chars) or a lower "
                          f"--max-new-tokens keep prompts shorter")
    # 1867 ran a turn; its second prompt (the history grew) no longer fits, by as much as that prompt says
    assert short.exit_status == "context_exceeded" and len(short.steps) == 1
    with local(instances[ID_1867]) as rt:
        replay = Episode(ID_1867, instances[ID_1867].problem_statement, rt)
        replay.step(short.steps[0].output)
        grown = _count(tokenizer, replay.prompt())
    assert short.error.startswith(f"prompt is {grown:,} tokens + {NEW} new > {context:,} context by "
                                  f"{grown + NEW - context:,}: the episode ends")
    # the sequential loop ends the same episodes the same way
    for inst, bat in zip((instances[ID_1359], instances[ID_1867]), batched, strict=True):
        with local(inst) as rt:
            seq = run_agent(ModelPolicy(gen, max_new_tokens=NEW, name="tiny"), inst, rt, **limits)
        assert (seq.exit_status, [s.output for s in seq.steps]) == (bat.exit_status, [s.output for s in bat.steps])
        assert bat.error == seq.error


def test_oracle_batch_generates_what_fits_and_records_by_how_much_the_rest_is_over(instances, tokenizer, tmp_path):
    files = {}
    for iid, inst in instances.items():
        with local(inst) as rt:
            files[iid] = oracle.read_oracle_files(inst, rt.read_file)
    # 1867 with its files cut to their first 10 lines fits; 1359 with its whole files does not
    cut = {p: "\n".join(c.splitlines()[:10]) + "\n" for p, c in files[ID_1867].items()}
    n_cut = _count(tokenizer, oracle.build_prompt(instances[ID_1867], cut))
    n_full = _count(tokenizer, oracle.build_prompt(instances[ID_1359], files[ID_1359]))
    context = n_cut + NEW + 8
    gen = _model(tmp_path, context)
    both = oracle.oracle_predict_batch([instances[ID_1867], instances[ID_1359]], [cut, files[ID_1359]], gen,
                                       max_new_tokens=NEW, model_name="tiny")
    fits, over = (p.to_dict() for p in both)
    alone = oracle.oracle_predict_batch([instances[ID_1867]], [cut], gen, max_new_tokens=NEW, model_name="tiny")
    assert fits == alone[0].to_dict() and fits["raw_output"]  # generated, as if alone
    assert over["model_patch"] == "" and over["raw_output"] == "" and over["prompt_tokens"] == n_full
    assert over["error"].startswith(f"prompt is {n_full:,} tokens + {NEW} new > "
                                    f"{context:,} context by {n_full + NEW - context:,}: not generated")
    assert over["files"] == ["src/marshmallow/fields.py"]


@pytest.mark.shared_data
def test_eval_swebench_oracle_file_with_a_short_context_model_fails_fast_per_instance(local_tasks, tokenizer,
                                                                                      tmp_path):
    from srl_swe.eval.swebench import PREDICTIONS, SWEBenchOptions, evaluate

    model = make_tiny_qwen2(tmp_path / "short", max_positions=256)
    start = time.monotonic()
    out, summary = evaluate(SWEBenchOptions(dataset=local_tasks, model=str(model), mode="oracle-file",
                                            runtime="local", max_new_tokens=512, out=tmp_path / "run", quiet=True))
    took = time.monotonic() - start
    preds = {json.loads(x)["instance_id"]: json.loads(x) for x in (out / PREDICTIONS).read_text().splitlines()}
    assert set(preds) == {ID_1359, ID_1867} and summary["resolved"] == 0
    for iid, pred in preds.items():
        n = pred["prompt_tokens"]
        assert n > 10_000 and pred["model_patch"] == ""
        assert pred["error"].startswith(f"prompt is {n:,} tokens + 512 new > 256 context "
                                        f"by {n + 512 - 256:,}: not generated")
        entry = summary["instances"][iid]
        assert entry["status"] == "empty_patch" and entry["prediction_error"] == pred["error"]
    assert took < 30, f"{took:.1f} s: the over-long prompts were generated from instead of refused"
