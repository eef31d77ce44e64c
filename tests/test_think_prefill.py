"""The ``<think>`` prefill: the generation prompt ends with the opening tag, the model continues it, and what is
scored or executed is the whole reply in the paper's strict format. Checked on a real tiny Qwen2 model for the
transformers generator, the step evaluation, SRL's GRPO data and reward, and the agent episode's prompts (the
vLLM generator's prefill is in tests/test_vllm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from srl_swe.actions import THINK_PREFILL, with_prefill
from srl_swe.rewards import SRLReward, score_output

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]
MSGS = [{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "Fix the bug in toolz."}]
ACTION = '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call>'


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from srl_swe.models.tiny import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def gen(tiny: Path):
    from srl_swe.models.generation import TransformersGenerator

    return TransformersGenerator.from_spec(str(tiny), batch_size=4, progress=False)


def test_with_prefill_appends_the_start_of_the_reply():
    assert with_prefill(MSGS, "") == MSGS
    assert with_prefill(MSGS, THINK_PREFILL) == [*MSGS, {"role": "assistant", "content": "<think>\n"}]
    assert len(MSGS) == 2  # the caller's list is not changed


def test_render_prompt_leaves_the_prefill_open(gen):
    from srl_swe.models.templates import render_prompt

    tok = gen.tokenizer
    plain = render_prompt(tok, MSGS)
    assert plain == tok.apply_chat_template(MSGS, add_generation_prompt=True, tokenize=False)
    assert render_prompt(tok, with_prefill(MSGS, THINK_PREFILL)) == plain + "<think>\n"


def test_generator_continues_the_prefill_and_returns_the_whole_reply(gen):
    import torch

    (out,), (plain,) = gen.generate([with_prefill(MSGS, THINK_PREFILL), MSGS], n=1, temperature=0.0,
                                    max_new_tokens=6, seed=0)
    assert out.startswith("<think>\n") and len(out) > len("<think>\n")
    # The continuation is greedy decoding from the rendered prompt + "<think>\n", token for token.
    tok = gen.tokenizer
    enc = tok(tok.apply_chat_template(MSGS, add_generation_prompt=True, tokenize=False) + "<think>\n",
              return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        ids = gen.model.generate(**enc, generation_config=gen._generation_config(0.0, 6))
    assert out == "<think>\n" + tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert plain == gen.generate([MSGS], n=1, temperature=0.0, max_new_tokens=6, seed=0)[0][0]


def test_reward_scores_the_reply_with_its_prefill():
    completion = "I list the files.\n</think>\n" + ACTION  # what TRL hands over: the text after the prompt
    strict = score_output("<think>\n" + completion, ACTION, "qwen", require_think=True)
    assert strict.valid and strict.reward == 1.0
    assert SRLReward(prefill=THINK_PREFILL)(completions=[completion], expert_action=[ACTION],
                                            syntax=["qwen"]) == [1.0]
    # Without the prefill the same completion has no opening tag: a broken format under the strict rule.
    assert SRLReward()(completions=[completion], expert_action=[ACTION], syntax=["qwen"]) == [-1.0]
    # Hostile completions stay a broken format, prefill or not: never an error.
    assert SRLReward(prefill=THINK_PREFILL)(completions=[None, [{"role": "assistant", "content": completion}]],
                                            expert_action=[ACTION, ACTION], syntax=["qwen", "qwen"]) == [-1.0, 1.0]


def test_step_eval_scores_prefilled_replies(gen):
    from srl_swe.eval.steps import evaluate_steps

    rows = [{"prompt": MSGS, "expert_action": ACTION, "syntax": "qwen", "example_id": "x"}]
    res = evaluate_steps(gen, rows, n=0, max_new_tokens=4, prefill=THINK_PREFILL)
    assert res["prefill"] == "<think>\n" and res["greedy"]["mean_reward"] == -1.0  # 4 tokens cannot close it


def test_config_rules_for_the_prefill():
    from srl_swe.train.config import ConfigError, load_config

    cfg = REPO / "configs" / "cpu-srl-swe-smollm2.yaml"
    assert load_config(cfg, ["think_prefill=true", "require_think=true"]).think_prefill
    with pytest.raises(ConfigError) as err:
        load_config(cfg, ["think_prefill=true"])  # the config has require_think: false
    assert err.value.keys == ("think_prefill", "require_think")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, ["think_prefill=true", "require_think=true", "mode=sft"])
    assert err.value.keys == ("mode", "think_prefill")


@pytest.mark.slow
def test_grpo_prompts_end_with_the_prefill(tiny: Path, tmp_path: Path):
    pytest.importorskip("trl")
    from srl_swe.train.config import load_config
    from srl_swe.train.run import build_trainer, train

    over = [f"model={tiny}", f"output_dir={tmp_path / 'run'}", "think_prefill=true", "require_think=true",
            "max_steps=1", "eval_max_examples=2", "max_completion_length=8", "step_eval=true", "step_eval_samples=0"]
    cfg = load_config(REPO / "configs" / "cpu-srl-swe-smollm2.yaml", over)
    trainer = build_trainer(cfg, "srl", str(tiny), tmp_path / "probe")
    prompts = trainer.train_dataset["prompt"]
    assert all(isinstance(p, str) and p.endswith("<|im_start|>assistant\n<think>\n") for p in prompts)
    assert trainer.reward_funcs[0].prefill == "<think>\n"
    del trainer
    summary = train(cfg)
    assert summary["held_out_step_reward"]["after"] == -1.0  # a random model does not close the block
    samples = (tmp_path / "run" / "step_eval_after" / "step_samples.jsonl").read_text().splitlines()
    assert len(samples) == 2 and all('"greedy": "<think>\\n' in s for s in samples)


def test_agent_episode_prompts_end_with_the_prefill(tmp_path: Path):
    from srl_swe.agent.episode import Episode
    from srl_swe.runtime.local import LocalRuntime

    (tmp_path / "repo").mkdir()
    rt = LocalRuntime(tmp_path / "repo")
    try:
        ep = Episode("t", "Fix it.", rt, syntax="qwen", prefill=THINK_PREFILL, max_steps=2)
        assert ep.prompt()[-1] == {"role": "assistant", "content": "<think>\n"}
        ep.step("<think>\nlook\n</think>\n" + ACTION)
        assert ep.steps[0].action is not None and ep.prompt()[-1]["content"] == "<think>\n"
        assert Episode("u", "Fix it.", rt, syntax="qwen").prompt()[-1]["role"] == "user"
    finally:
        rt.close()
