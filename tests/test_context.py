"""Model limits are checked, not discovered (srl_swe.models.context): the context read from real configs, the one
rule (prompt tokens + max_new_tokens <= context) and its error text, the generators' guard, batches where one
prompt does not fit, the held-out step eval and math eval with a real tiny model of 256 positions, and a GRPO
config whose budgets exceed the model's context, refused when the trainer is built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from srl_swe.errors import ContextLengthError
from srl_swe.models.context import check_fits, context_error, context_length, generate_fitting, prompt_lengths
from srl_swe.models.generation import TransformersGenerator
from srl_swe.models.tiny import make_tiny_qwen2

REPO = Path(__file__).resolve().parents[1]
SHORT = 256  # positions of the short-context tiny model


@pytest.fixture(scope="module")
def short_model(tmp_path_factory) -> Path:
    return make_tiny_qwen2(tmp_path_factory.mktemp("short") / "model", max_positions=SHORT)


@pytest.fixture(scope="module")
def gen(short_model: Path) -> TransformersGenerator:
    return TransformersGenerator.from_spec(str(short_model), batch_size=4, progress=False)


def _count(gen: TransformersGenerator, messages) -> int:
    """A prompt's tokens counted independently of srl_swe.models.context: the chat template's own tokenization."""
    return len(gen.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"])


def test_the_error_says_by_how_much_and_the_completion_must_fit():
    err = ContextLengthError(22104, 512, 8192, where="inst-1", advice="use a longer context")
    assert str(err) == "inst-1: prompt is 22,104 tokens + 512 new > 8,192 context by 14,424: use a longer context"
    assert (err.prompt_tokens, err.max_new_tokens, err.context, err.over) == (22104, 512, 8192, 14424)
    assert isinstance(err, ValueError)
    check_fits(7680, 512, 8192)  # exactly full fits
    with pytest.raises(ContextLengthError, match="by 1:"):
        check_fits(7681, 512, 8192)
    with pytest.raises(ContextLengthError, match="prompt is 8,000 tokens \\+ 512 new"):  # the prompt alone fits
        check_fits(8000, 512, 8192)
    assert context_error(10**6, 512, None) is None  # unknown context: nothing to check


def test_context_comes_from_the_config_not_the_tokenizer_sentinel(short_model: Path):
    from transformers import AutoConfig, AutoTokenizer, GPT2Config

    from srl_swe.models.context import spec_context_length

    assert context_length(AutoConfig.from_pretrained(short_model)) == SHORT == spec_context_length(str(short_model))
    assert context_length(GPT2Config(n_positions=1024)) == 1024
    assert context_length({"text_config": {"max_position_embeddings": 4096}}) == 4096
    tok = AutoTokenizer.from_pretrained(short_model)
    assert context_length(None, tok) == SHORT  # a real model_max_length
    tok.model_max_length = int(1e30)  # transformers' "no limit" (SmolLM2's tokenizer has it)
    assert context_length(None, tok) is None
    assert context_length({"max_position_embeddings": 8192}, tok) == 8192


def test_generator_refuses_an_over_long_call_and_a_batch_generates_the_rest(gen: TransformersGenerator):
    short = [{"role": "user", "content": "Name a prime number."}]
    long = [{"role": "user", "content": "def f(x):\n    return x\n" * 60}]
    n_long = _count(gen, long)
    assert gen.context_length == SHORT and prompt_lengths(gen.tokenizer, [long]) == [n_long] and n_long > SHORT
    with pytest.raises(ContextLengthError, match=f"prompt 2 of 2: prompt is {n_long:,} tokens \\+ 8 new > 256 "
                                                 f"context by {n_long + 8 - SHORT:,}"):
        gen.generate([short, long], n=1, temperature=0.0, max_new_tokens=8, seed=0)
    out = generate_fitting(gen, [short, long, short], n=2, temperature=1.0, max_new_tokens=8, seed=0,
                           names=["a", "b", "c"])
    assert isinstance(out[1], ContextLengthError) and str(out[1]).startswith(f"b: prompt is {n_long:,} tokens")
    # the prompts that fit are one call, as if the other had not been asked for
    assert [out[0], out[2]] == gen.generate([short, short], n=2, temperature=1.0, max_new_tokens=8, seed=0)
    # a completion budget that reaches past the context is refused even for a short prompt
    (alone,) = generate_fitting(gen, [short], n=1, temperature=0.0, max_new_tokens=SHORT, seed=0)
    assert isinstance(alone, ContextLengthError) and alone.over == _count(gen, short)


def test_step_eval_skips_and_counts_examples_that_do_not_fit(gen: TransformersGenerator, tmp_path: Path):
    from srl_swe.eval.steps import evaluate_steps, rows_from_path

    rows = rows_from_path(REPO / "trajectories" / "math" / "bundled.jsonl")
    lengths = {r["example_id"]: _count(gen, r["prompt"]) for r in rows}
    fit = [r for r in rows if lengths[r["example_id"]] + 8 <= SHORT]
    rows = [r for r in rows if r in fit[:3] or r not in fit][:6]  # real prompts straddling the context, in order
    over = {r["example_id"] for r in rows if r not in fit}
    assert 0 < len(over) < len(rows) == 6
    res = evaluate_steps(gen, rows, n=1, temperature=1.0, max_new_tokens=8, out_dir=tmp_path)
    assert res["skipped_context"] == len(over) and res["examples"] == len(rows) - len(over)
    assert res["greedy"]["outputs"] == res["sampled"]["outputs"] == len(rows) - len(over)
    assert {s["example_id"] for s in res["skipped"]} == over
    for s in res["skipped"]:
        n = lengths[s["example_id"]]
        assert f"prompt is {n} tokens + 8 new > 256 context by {n + 8 - SHORT}: skipped" in s["error"]
    samples = [json.loads(line) for line in (tmp_path / "step_samples.jsonl").read_text().splitlines()]
    assert [s["example_id"] for s in samples] == [r["example_id"] for r in rows if r["example_id"] not in over]
    none = evaluate_steps(gen, rows[:2], n=1, max_new_tokens=SHORT)  # nothing fits: nothing generated, no crash
    assert none["examples"] == 0 and none["skipped_context"] == 2 and none["greedy"]["mean_reward"] is None


@pytest.mark.shared_data
def test_math_problem_that_does_not_fit_is_graded_wrong_with_the_reason(gen: TransformersGenerator, shared_data):
    from srl_swe.eval import math as ev

    problems = ev.load_benchmark("gsm8k", shared_data, 3)
    long = ev.MathProblem("long", "\n\n".join(p.problem for p in ev.load_benchmark("gsm8k", shared_data, 12)), "1")
    n_long = _count(gen, ev.build_messages(long.problem))
    assert all(_count(gen, ev.build_messages(p.problem)) + 8 <= SHORT for p in problems) and n_long + 8 > SHORT
    metrics, records = ev.evaluate_benchmark(gen, [problems[0], long, *problems[1:]], k=2, temperature=1.0,
                                             max_new_tokens=8, seed=0)
    assert metrics["n_problems"] == 4 and metrics["context_exceeded"] == 1
    failed = [r for r in records if r["id"] == "long"]
    assert [r["mode"] for r in failed] == ["greedy", "sample"] and not any(r["correct"] for r in failed)
    assert all(r["error"] == f"problem long: prompt is {n_long:,} tokens + 8 new > 256 context by "
               f"{n_long + 8 - SHORT:,}: graded wrong (lower max_new_tokens, or use a model with a longer "
               f"context)" for r in failed)
    assert len([r for r in records if r["id"] != "long"]) == 3 * (1 + 2)  # the others were generated


# --- training: GRPO's prompt budget --------------------------------------------------------------------------

TINY_CFG = REPO / "configs" / "cpu-tiny-test.yaml"


def test_prompt_budget_is_the_context_less_the_completion_and_an_over_budget_config_is_refused(tmp_path):
    pytest.importorskip("trl")
    from srl_swe.train.config import ConfigError, load_config
    from srl_swe.train.prompts import prompt_budget

    cfg = load_config(TINY_CFG, [f"output_dir={tmp_path}"])  # max_prompt_length 512, max_completion_length 8
    assert prompt_budget(cfg, 8192) == 512 and prompt_budget(cfg, None) == 512
    with pytest.raises(ConfigError, match="512 \\+ 8 = 520 tokens > the model's 256 context by 264; allowed: lower"):
        prompt_budget(cfg, SHORT)
    unset = load_config(TINY_CFG, [f"output_dir={tmp_path}", "max_prompt_length=null"])
    assert prompt_budget(unset, SHORT) == SHORT - 8 and prompt_budget(unset, None) is None
    with pytest.raises(ConfigError, match="max_completion_length=256: leaves no room for a prompt"):
        prompt_budget(load_config(TINY_CFG, [f"output_dir={tmp_path}", "max_prompt_length=null",
                                             "max_completion_length=256"]), SHORT)


@pytest.mark.slow
def test_trainer_build_refuses_the_config_and_defaults_the_budget(short_model: Path, tmp_path: Path):
    pytest.importorskip("trl")
    from srl_swe.train.config import ConfigError, load_config
    from srl_swe.train.run import build_trainer, train

    over = load_config(TINY_CFG, [f"model={short_model}", f"output_dir={tmp_path / 'over'}", "step_eval=true"])
    with pytest.raises(ConfigError, match="by 264"):  # train() refuses before the step eval loads a model
        train(over)
    assert not (tmp_path / "over" / "step_eval_before").exists()
    with pytest.raises(ConfigError, match="by 264"):  # and so does the trainer, with the model loaded
        build_trainer(over, "srl", str(short_model), tmp_path / "over")
    run = tmp_path / "unset"
    cfg = load_config(TINY_CFG, [f"model={short_model}", f"output_dir={run}", "max_prompt_length=null"])
    trainer = build_trainer(cfg, "srl", str(short_model), run)
    report = json.loads((run / "prompt_lengths.json").read_text())
    assert report["max_prompt_length"] == SHORT - 8
    assert 0 < report["train"]["kept"] < report["train"]["examples"] and report["train"]["longest_tokens"] > 248
    assert len(trainer.train_dataset) == report["train"]["kept"]
