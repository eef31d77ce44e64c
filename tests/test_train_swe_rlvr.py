"""`srl-swe train` in RLVR mode on SWE tasks: GRPO whose rollouts use real tools in SRL-SWE-Exec sandboxes (TRL's
environment_factory, srl_swe.train.exec_env) and whose reward is the real grade of the patch they leave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from srl_swe.train.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
CPU_CFG = REPO / "configs" / "cpu-rlvr-swe-smollm2.yaml"
GPU_CFG = REPO / "configs" / "rlvr-swe-qwen2.5-coder-7b.yaml"
TASK = "marshmallow-code__marshmallow-1867"
OTHER = "marshmallow-code__marshmallow-1359"
# The expert's fix of TASK as native tool calls (the qwen syntax), then submit, in one assistant turn.
FIX = {"command": "str_replace", "path": "/testbed/src/marshmallow/fields.py",
       "old_str": "        return int(value.total_seconds() / base_unit.total_seconds())",
       "new_str": "        return value // base_unit"}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_cli(shared_data: Path, *overrides: str, config: Path = CPU_CFG) -> subprocess.CompletedProcess:
    env = {**os.environ, "SRL_SWE_DATA": str(shared_data), "TRL_EXPERIMENTAL_SILENCE": "1"}
    cmd = [sys.executable, "-m", "srl_swe.cli", "train", "--config", str(config), *overrides, "--no-plot"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def check_run_folder(run: Path) -> list[dict]:
    """The files every train mode leaves (see tests/test_train.py); returns metrics.jsonl's training log."""
    (ckpt,) = [p for p in run.glob("checkpoint-*")]
    assert (ckpt / "COMPLETE").is_file() and (ckpt / "optimizer.pt").is_file()
    assert json.loads((run / "summary.json").read_text())["mode"] == "rlvr"
    # The final tokenizer keeps the tool-calling template it was trained with.
    assert "<tool_call>" in (run / "final" / "chat_template.jinja").read_text()
    return [r for r in jsonl(run / "metrics.jsonl") if "rewards/SWEToolEnv/mean" in r]


# -- config: checked before any model loads ------------------------------------------------------------------------
def test_shipped_configs_are_swe_rlvr(shared_data):
    cpu, gpu = load_config(CPU_CFG), load_config(GPU_CFG)
    assert (cpu.exec_rlvr, cpu.runtime, cpu.reward, cpu.train_data) == (True, "local", "swe",
                                                                        str(shared_data / "local_tasks"))
    assert (gpu.exec_rlvr, gpu.runtime, gpu.syntax) == (True, "docker", "qwen")
    assert gpu.trl_kwargs()["max_tool_calling_iterations"] == 40 and gpu.generation_batch == 32
    assert (cpu.exec_grading_workers, gpu.exec_grading_workers) == (2, 8)
    assert "max_tool_calling_iterations" not in load_config(None, ["model=m", "task=math", "mode=rlvr"]).trl_kwargs()


@pytest.mark.parametrize("override, keys, text", [
    ("runtime=podman", ("runtime",), "unknown runtime; allowed: docker"),
    ("runtime=dokcer", ("runtime",), "did you mean 'docker'?"),
    ("syntax=xml", ("mode", "task", "syntax"), "native tool calls"),
    ("train_data=null", ("mode", "task", "train_data"), "none are bundled"),
    ("step_eval=true", ("mode", "task", "step_eval"), "expert trajectories"),
    ("exec_max_steps=0", ("exec_max_steps",), "out of range"),
    ("exec_grading_workers=0", ("exec_grading_workers",), "an integer >= 1"),
])
def test_bad_swe_rlvr_settings_are_config_errors(override, keys, text):
    with pytest.raises(ConfigError) as err:
        load_config(CPU_CFG, [override])
    assert err.value.keys == keys and text in str(err.value)


def test_paths_and_split(shared_data, tmp_path):
    from srl_swe.train.data import swe_split

    # A Hugging Face dataset name is not a path to check (it is loaded before the model); a missing file is.
    load_config(CPU_CFG, ["train_data=SWE-bench/SWE-bench_Lite"]).check_paths()
    with pytest.raises(ConfigError, match="no such file"):
        load_config(CPU_CFG, [f"train_data={tmp_path / 'nope.jsonl'}"]).check_paths()
    with pytest.raises(ConfigError, match="no such file"):  # other modes keep the strict check
        load_config(CPU_CFG, ["mode=srl", "train_data=SWE-bench/SWE-bench_Lite"]).check_paths()
    train, held = swe_split(load_config(CPU_CFG, ["eval_fraction=0.7"]))
    # By a hash of the instance id, as trajectories are split: the same every run.
    assert ([i.instance_id for i in train], [i.instance_id for i in held]) == ([OTHER], [TASK])
    assert [i.instance_id for i in swe_split(load_config(CPU_CFG))[0]] == [OTHER, TASK]
    # A generated task folder keeps its own split by function: none of its held-out tasks is trained on.
    tasks = REPO / "trajectories" / "swe-tasks" / "toolz-1.2.0"
    splits = json.loads((tasks / "splits.json").read_text())["ids"]
    train, held = swe_split(load_config(CPU_CFG, [f"train_data={tasks}", "eval_fraction=0.5"]))
    assert [i.instance_id for i in train] == splits["train"] and [i.instance_id for i in held] == splits["heldout"]


def test_bad_runtime_fails_before_any_model_loads(shared_data):
    code = ("import sys; from srl_swe.cli import main; rc = main(['train', '--config', sys.argv[1], 'model=nowhere', "
            "'runtime=podman']); print(rc, [m for m in ('torch', 'transformers', 'trl') if m in sys.modules])")
    env = {**os.environ, "SRL_SWE_DATA": str(shared_data)}
    out = subprocess.run([sys.executable, "-c", code, str(CPU_CFG)], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["2", "[]"], out.stdout + out.stderr
    assert "runtime='podman': unknown runtime" in out.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    pytest.importorskip("trl")
    from srl_swe.models.tiny import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny"))


def test_tool_calling_tokenizer(tiny):
    from tokenizers import Tokenizer, models
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from srl_swe.models.templates import tool_calling_tokenizer

    # ChatML without tools (the tiny model, SmolLM2): Qwen2.5's tool template, and TRL parses its calls.
    tok = tool_calling_tokenizer(AutoTokenizer.from_pretrained(tiny))
    text = '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call><|im_end|>'
    (call,) = tok.parse_response(text, prefix="")["tool_calls"]
    assert call["function"] == {"name": "bash", "arguments": {"command": "ls"}}
    assert tool_calling_tokenizer(tok) is tok and tok.chat_template.startswith("{%- if tools %}")
    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "?": 1}, unk_token="?")))
    plain.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ValueError, match="ChatML tokenizer"):
        tool_calling_tokenizer(plain)


def test_swe_prompts_are_counted_with_the_tools_trl_renders(shared_data, tiny, tmp_path):
    """TRL renders the environment's tool schemas into every RLVR prompt: the prompt budget counts them (a
    prompt that fits only without them is skipped, as it would overflow the context), and the count is TRL's."""
    from transformers import AutoTokenizer

    from srl_swe.models.templates import tool_calling_tokenizer
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.train.exec_env import environment_tools, exec_environment_factory, exec_rows
    from srl_swe.train.prompts import prompt_tokens

    tok = tool_calling_tokenizer(AutoTokenizer.from_pretrained(tiny))
    instances = load_instances(shared_data / "local_tasks", [TASK, OTHER])
    tools = environment_tools(exec_environment_factory(instances, runtime="local"))
    assert [t.__name__ for t in tools] == ["bash", "str_replace_editor", "submit"]
    prompts = [r["prompt"] for r in exec_rows(instances)]
    # what GRPOTrainer._tokenize_prompts gives for these prompts and tools
    trl = [len(ids) for ids in tok.apply_chat_template(conversation=prompts, tools=tools, add_generation_prompt=True,
                                                       tokenize=True, return_dict=True)["input_ids"]]
    plain, counted = prompt_tokens(tok, prompts), prompt_tokens(tok, prompts, tools)
    assert counted == trl and all(c > p + 200 for c, p in zip(counted, plain, strict=True))

    # A budget the prompts meet only without the tools: the run stops before any rollout, saying so.
    budget = (max(plain) + min(counted)) // 2
    run = tmp_path / "run"
    out = run_cli(shared_data, f"model={tiny}", f"output_dir={run}", "max_steps=1", "max_completion_length=16",
                  f"max_prompt_length={budget}")
    assert out.returncode != 0 and f"every train prompt is longer than the prompt budget, {budget} tokens" in out.stderr
    report = json.loads((run / "prompt_lengths.json").read_text())
    assert report["tools"] == ["bash", "str_replace_editor", "submit"] and report["train"]["kept"] == 0
    assert report["train"]["longest_tokens"] == max(counted) and not (run / "rollouts.jsonl").exists()


# -- training end to end on the local runtime ---------------------------------------------------------------------
@pytest.mark.slow
def test_cli_rlvr_on_both_tasks_with_a_random_model(shared_data, tiny, tmp_path):
    run = tmp_path / "run"
    out = run_cli(shared_data, f"model={tiny}", f"output_dir={run}", "max_steps=1", "max_completion_length=16")
    assert out.returncode == 0, out.stderr[-3000:]
    (logged,) = check_run_folder(run)
    # A random model writes no tool call: every rollout's (empty) diff is graded and scores 0, so dynamic
    # sampling drops both groups, refills once (max_tries 1) with two more, and tops the batch up with them.
    assert (logged["rewards/SWEToolEnv/mean"], logged["tools/call_frequency"]) == (0.0, 0.0)
    assert (logged["dynamic_sampling/filtered_fraction"], logged["dynamic_sampling/refills"],
            logged["dynamic_sampling/unfilled_groups"]) == (1.0, 1.0, 2.0)
    rollouts = jsonl(run / "rollouts.jsonl")
    assert len(rollouts) == 4 + 4 and {r["instance_id"] for r in rollouts[:4]} == {TASK, OTHER}
    assert {(r["status"], r["reward"], r["tool_calls"], r["submitted"]) for r in rollouts} == {
        ("empty_patch", 0.0, 0, False)}


@pytest.fixture(scope="module")
def fixer(tiny, shared_data, tmp_path_factory) -> Path:
    """The tiny model taught (a few seconds of plain next-token training) to answer TASK's prompt, as TRL renders
    it with the environment's tools, with the fix and submit as native tool calls."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srl_swe.actions import render
    from srl_swe.models.templates import tool_calling_tokenizer
    from srl_swe.schema import ToolCall
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.train.exec_env import exec_environment_factory, exec_rows

    tok = tool_calling_tokenizer(AutoTokenizer.from_pretrained(tiny))
    model = AutoModelForCausalLM.from_pretrained(tiny)
    instances = load_instances(shared_data / "local_tasks", [TASK])
    env = exec_environment_factory(instances, runtime="local")()
    prompt = tok.apply_chat_template(exec_rows(instances)[0]["prompt"], add_generation_prompt=True, tokenize=False,
                                     tools=[env.bash, env.str_replace_editor, env.submit])
    answer = f"{render(ToolCall.make('str_replace_editor', FIX), 'qwen')}\n{render(ToolCall.make('submit'), 'qwen')}"
    p_ids, a_ids = (tok(t, add_special_tokens=False)["input_ids"] for t in (prompt, answer + "<|im_end|>"))
    ids = torch.tensor([p_ids + a_ids])
    labels = torch.tensor([[-100] * len(p_ids) + a_ids])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(300):
            loss = model(input_ids=ids, labels=labels).loss
            if loss.item() < 0.02:
                break
            loss.backward()
            opt.step()
            opt.zero_grad()
    greedy = model.generate(torch.tensor([p_ids]), max_new_tokens=len(a_ids) + 4, do_sample=False)[0, len(p_ids):]
    assert tok.decode(greedy) == answer + "<|im_end|>"
    out = tmp_path_factory.mktemp("fixer")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(out)  # the plain ChatML one: training swaps it again
    return out


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["local", "docker"])
def test_cli_rlvr_reward_one_from_a_policy_that_fixes_the_bug(shared_data, fixer, tmp_path, runtime, request):
    if runtime == "docker":
        request.getfixturevalue("docker_client")  # skips without a daemon (a failure under CI=true)
    run = tmp_path / "run"
    out = run_cli(shared_data, f"model={fixer}", f"output_dir={run}", "max_steps=1", f"runtime={runtime}",
                  f"train_data=shared:local_tasks/{TASK}", "per_device_train_batch_size=2", "temperature=0.05",
                  "exec_max_steps=1", "max_completion_length=1024", "dynamic_sampling=false")
    assert out.returncode == 0, out.stderr[-3000:]
    (logged,) = check_run_folder(run)
    # Both rollouts ran the two calls in their sandboxes, and the real tests passed on the submitted patch.
    assert logged["rewards/SWEToolEnv/mean"] == 1.0 and logged["tools/call_frequency"] > 0
    assert logged["tools/failure_frequency"] == 0.0
    rollouts = jsonl(run / "rollouts.jsonl")
    assert [(r["instance_id"], r["status"], r["reward"], r["submitted"]) for r in rollouts] == [
        (TASK, "resolved", 1.0, True)] * 2
    # Round 1 ran fix + submit; the model's next turn (the same calls) is past exec_max_steps=1, so not run.
    assert [r["tool_calls"] for r in rollouts] == [2, 2] and all(r["patch_lines"] > 5 for r in rollouts)
    # docker: a container per rollout, graded by the real SWE-bench harness, whose reports stay in the run folder.
    reports = list(run.glob(f"grading/logs/run_evaluation/rlvr-*/*/{TASK}/report.json"))
    assert len(reports) == (2 if runtime == "docker" else 0)
    assert all(json.loads(r.read_text())[TASK]["resolved"] for r in reports)


@pytest.mark.slow
def test_dynamic_sampling_filters_on_the_environment_reward(shared_data, tiny, tmp_path, monkeypatch):
    """One rollout resolved, one not: the environment's reward column is the one SRLGRPOTrainer filters on."""
    from datasets import Dataset
    from trl import GRPOConfig

    from srl_swe.models.loading import load_model_and_tokenizer
    from srl_swe.models.templates import tool_calling_tokenizer
    from srl_swe.train.data import swe_split
    from srl_swe.train.exec_env import exec_rows
    from srl_swe.train.grpo import SRLGRPOTrainer, group_std
    from srl_swe.train.run import _exec_environment_factory

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    cfg = load_config(CPU_CFG, [f"model={tiny}", f"train_data={shared_data / 'local_tasks' / TASK}"])
    model, tok = load_model_and_tokenizer(str(tiny), dtype="float32")

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, use_cpu=True,
                      report_to=[], max_completion_length=8, scale_rewards="group")
    (row,) = exec_rows(swe_split(cfg)[0])
    trainer = SRLGRPOTrainer(model=model, args=args, reward_funcs=[], train_dataset=Dataset.from_list([row]),
                             processing_class=tool_calling_tokenizer(tok), dynamic_sampling_eps=0.0,
                             environment_factory=_exec_environment_factory(cfg, tmp_path))
    assert trainer.reward_func_names == ["SWEToolEnv"] and trainer.reward_weights.tolist() == [1.0]
    trainer.environments = envs = [trainer._environment_pool[None][0], trainer.environment_factories[None]()]
    for env in envs:
        env.reset(**row)
    envs[0].str_replace_editor(**FIX)
    envs[0].submit()
    envs[1].bash(command="echo '# note' >> README.rst")  # a diff that fixes nothing
    done = [[{"role": "assistant", "content": ""}]] * 2
    per_func = trainer._calculate_rewards([row, row], [row["prompt"]] * 2, done, [[0], [0]])
    assert per_func[:, 0].tolist() == [1.0, 0.0] and trainer._last_rewards.tolist() == [1.0, 0.0]
    assert group_std(trainer._last_rewards, 2).tolist() == [0.5]  # > eps: this group is kept
    assert [e.last_grade.status for e in envs] == ["resolved", "unresolved"]
    # Gradings run in parallel, so lines land in the order they finish.
    assert sorted((r["reward"], r["tool_calls"]) for r in jsonl(tmp_path / "rollouts.jsonl")) == [(0.0, 1), (1.0, 2)]
