"""The paper's comparison on SWE tasks, graded by execution: untrained / SFT / SRL / RLVR / SRL->RLVR at one
fixed CPU budget, each model run as an agent on the held-out generated tasks and graded by their tests.

    python benchmarks/bench_learning_swe.py --budget-minutes 6 [--methods untrained,sft,srl,rlvr,srl_rlvr]
        [--syntax qwen] [--probe-syntax] [--tokens 64] [--tasks N] [--max-steps 5] [--step-examples 16] [--samples 2]
        [--runtime docker] [--backend vllm]
        [--run-dir runs/bench-learning-swe] [--out benchmarks/results/learning_swe.json] [--set srl.KEY=VALUE]

* Data: ``trajectories/swe-tasks/toolz-1.2.0`` (generated tasks, split by file and function: no held-out
  function is trained on). SFT and SRL train on the expert trajectories of the train split, RLVR on its tasks
  (``rlvr_reward: swe``: 1 when the patch makes FAIL_TO_PASS pass without breaking PASS_TO_PASS).
* Budget: every trained method gets ``--budget-minutes`` of training wall time on this machine
  (``max_train_seconds``: training stops after the step that crosses it); SRL->RLVR spends half on SRL and half
  on RLVR from it. Each training is its own ``srl-swe train`` process; its CPU seconds (user + system of that
  process tree; the containers' test runs are the daemon's and not counted) are recorded.
* One action syntax for all (``--syntax``; ``qwen`` by default: RLVR's rollouts are native tool calls, so an
  SRL policy continues into RLVR on the calls it learned). ``--think optional`` (``require_think: false``:
  SmolLM2 writes no ``<think>`` by itself) or ``--think prefill`` (every reply starts with ``<think>\n`` and is
  scored in the paper's strict format; SFT learns whole replies, RLVR's rollouts are TRL's tool-calling turns).
  ``--probe-syntax`` first measures the start model in each syntax and <think> treatment on train-split steps.
* ``--tokens``: one completion budget for every reply: SRL's rollouts, SFT's targets (``max_completion_length``),
  the step eval and each agent turn; RLVR keeps its config's budget for the whole multi-turn rollout.
* Measured per method: held-out step reward (greedy and sampled, with standard errors) and format-violation
  rate; agent mode on the held-out tasks (``srl-swe eval swebench --mode agent``, greedy, all episodes in
  lockstep, Docker sandboxes): resolved rate with a Wilson 95 % interval, valid-tool-call rate, submitted
  rate, mean steps to submit.

Resumable per method: a method whose entry is in ``--out`` is not run again (``--redo`` runs it anyway); a
killed method starts again from scratch, so its budget is never spent twice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, wilson, write_results
from _learning_swe_report import METHODS, PROBES, claims, markdown

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "trajectories" / "swe-tasks" / "toolz-1.2.0"
SRL_CFG = REPO / "configs" / "cpu-srl-swe-smollm2.yaml"
RLVR_CFG = REPO / "configs" / "cpu-rlvr-swe-smollm2.yaml"
#: How a reply's <think> block is treated: "optional" (require_think: false, the block may be left out) or
#: "prefill" (the prompt ends with "<think>\n" and the reply is scored in the paper's strict format).
THINK = {"optional": ["require_think=false"], "prefill": ["require_think=true", "think_prefill=true"]}
LONG = ["max_steps=100000", "save_steps=100000", "lr_scheduler_type=constant", "step_eval=false"]
#: What makes each method's training run (on top of LONG, the budget and the output folder).
RECIPES: dict[str, list[tuple[Path, list[str]]]] = {
    "sft": [(SRL_CFG, ["mode=sft", "per_device_train_batch_size=4", "gradient_accumulation_steps=1"])],
    "srl": [(SRL_CFG, [])],
    "rlvr": [(RLVR_CFG, ["runtime=docker", "exec_max_steps=4"])],
    "srl_rlvr": [(SRL_CFG, []), (RLVR_CFG, ["runtime=docker", "exec_max_steps=4", "mode=srl_then_rlvr"])],
}
def srl_swe() -> list[str]:
    exe = Path(sys.executable).with_name("srl-swe")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "srl_swe.cli"]


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run ``cmd`` with its output in ``log`` (the progress bars go there too); (wall s, CPU s)."""
    print("$ " + " ".join(cmd), flush=True)
    w0, c0 = time.perf_counter(), _children_cpu()
    with log.open("a") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed with exit status {proc.returncode}; see {log}")
    return time.perf_counter() - w0, _children_cpu() - c0


def settle_docker(timeout: float = 900) -> float | None:
    """Wait until the Docker daemon's btrfs has finished deleting removed containers; the seconds waited, or
    None when its storage is not btrfs (or there is no daemon or no btrfs tool). Why: under full quota groups
    each removed container costs the kernel's btrfs-cleaner seconds of a core after the removal
    (benchmarks/results/docker_storage.md), so an agent evaluation leaves minutes of it behind, and a training
    stage that started at once would spend part of its wall budget beside it. Under simple quotas (what
    scripts/start_dockerd.sh sets up where the kernel has them) or none, a removal costs next to nothing after
    the fact: 0.0, without waiting for the next commit."""
    from srl_swe.runtime.sandbox import btrfs_quota_mode

    try:
        info = subprocess.run(["docker", "info", "-f", "{{.Driver}} {{.DockerRootDir}}"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    driver, _, root = info.stdout.strip().partition(" ")
    mode = btrfs_quota_mode(root) if not info.returncode and driver == "btrfs" else None
    if mode != "qgroup":
        return None if mode is None else 0.0
    t0 = time.perf_counter()
    with contextlib.suppress(subprocess.TimeoutExpired):  # waited long enough: train beside what is left
        subprocess.run(["btrfs", "subvolume", "sync", root], capture_output=True, timeout=timeout)
    return time.perf_counter() - t0


def train(method: str, args: argparse.Namespace, mdir: Path) -> dict[str, Any]:
    """Train ``method`` within the budget (stages split it evenly); the final model and what it cost."""
    stages, start, out = RECIPES[method], None, []
    seconds = args.budget_minutes * 60 / len(stages)
    for k, (cfg, overrides) in enumerate(stages):
        sdir = mdir / f"train{k}"
        think = THINK[args.think]
        if "mode=sft" in overrides and args.think == "prefill":  # SFT learns the whole reply, <think> block included
            think = ["require_think=true"]
        sets = [f"output_dir={sdir}", f"max_train_seconds={seconds:g}", f"syntax={args.syntax}", *think, *LONG,
                f"max_completion_length={args.tokens}", f"train_data={train_data(cfg, args.tasks_dir)}",
                *overrides, *([f"init_checkpoint={start}"] if start else []), *args.sets.get(method, [])]
        if args.model:
            sets.append(f"model={args.model}")
        if args.max_train_steps:
            sets.append(f"max_steps={args.max_train_steps}")
        if cfg == RLVR_CFG:  # RLVR's rollouts are native tool calls (no syntax or <think> keys of its own), and
            # its completion budget holds every turn of a rollout
            sets = [s for s in sets if not s.startswith(("syntax=", "require_think=", "think_prefill=",
                                                         "max_completion_length="))]
        settled = settle_docker()
        wall, cpu = run([*srl_swe(), "train", "--config", str(cfg), *sets], mdir / "train.log")
        start = json.loads((sdir / "summary.json").read_text())["final_model"]
        out.append({"config": str(cfg.relative_to(REPO)), "overrides": sets, "wall_s": wall, "cpu_s": cpu,
                    "docker_settle_s": settled, **curve(sdir)})
    return {"final_model": start, "budget_s": args.budget_minutes * 60, "stages": out,
            "train_wall_s": sum(s["wall_s"] for s in out), "train_cpu_s": sum(s["cpu_s"] for s in out),
            "optimizer_steps": sum(s["optimizer_steps"] for s in out)}


def train_data(cfg: Path, tasks_dir: Path) -> Path:
    """What a stage trains on, from ``--tasks-dir``: RLVR the train split's tasks, SFT and SRL their experts'
    trajectories (so the held-out split the agents are graded on is always the same set's)."""
    return tasks_dir if cfg == RLVR_CFG else tasks_dir / "experts" / "train" / "trajectories.jsonl"


def curve(run_dir: Path) -> dict[str, Any]:
    """Optimizer steps, training reward (GRPO) or loss (SFT) per step, from the run's metrics.jsonl."""
    recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = max((r.get("step", 0) for r in recs), default=0)
    key = "reward" if any("reward" in r for r in recs) else "loss"
    return {"optimizer_steps": steps, "curve_key": key, "curve": [r[key] for r in recs if key in r]}


def step_eval(args: argparse.Namespace, model: str, out_dir: Path) -> dict[str, Any]:
    """Held-out step reward of ``model`` under the SRL config's prompt settings (the same for every method), with
    standard errors: bench_learning's measure."""
    from bench_learning import evaluate

    from srl_swe.train.config import load_config

    heldout = args.tasks_dir / "experts" / "heldout" / "trajectories.jsonl"
    cfg = load_config(SRL_CFG, [f"syntax={args.syntax}", *THINK[args.think], f"eval_data={heldout}",
                                f"eval_max_examples={args.step_examples}", f"step_eval_samples={args.samples}",
                                *_common_sets(args)])
    res = evaluate(cfg, model, out_dir, args.backend)
    return {**{k: v for k, v in res.items() if k != "per_example"}, "temperature": cfg.temperature}


def _common_sets(args: argparse.Namespace) -> list[str]:
    """The step evals' overrides every method shares: the start model (tests) and the completion budget."""
    return [*([f"model={args.model}"] if args.model else []), f"max_completion_length={args.tokens}"]


def syntax_probe(args: argparse.Namespace, done: dict[str, Any] | None = None) -> dict[str, Any]:
    """Which action syntax and <think> treatment the start model writes well-formed replies in, measured on the
    TRAIN split's step prompts only (choosing on held-out data would be tuning on it): step reward and format
    violations per variant ("qwen", "xml", "qwen+prefill", "xml+prefill"); variants in ``done`` are kept."""
    from srl_swe.train.config import load_config
    from srl_swe.train.run import step_eval as measure

    train = args.tasks_dir / "experts" / "train" / "trajectories.jsonl"
    out = {"data": str(train.relative_to(REPO) if train.is_relative_to(REPO) else train),
           "examples": args.step_examples, "samples": args.samples, **(done or {})}
    for name in args.probes:
        if name in out:
            continue
        syntax, _, think = name.partition("+")
        cfg = load_config(SRL_CFG, [f"syntax={syntax}", *THINK[think or "optional"], f"eval_data={train}",
                                    f"eval_max_examples={args.step_examples}", f"step_eval_samples={args.samples}",
                                    *_common_sets(args)])
        r = measure(cfg, cfg.model, args.run_dir / "syntax_probe" / name, args.backend)
        out[name] = {mode: {"mean_reward": r[mode]["mean_reward"],
                              "format_violation_rate": r[mode]["format_violation_rate"]}
                       for mode in ("greedy", "sampled") if r.get(mode)}
    return out



def agent_eval(args: argparse.Namespace, model: str, out_dir: Path) -> dict[str, Any]:
    cfg = yaml.safe_load(SRL_CFG.read_text())
    cmd = [*srl_swe(), "eval", "swebench", "--dataset", str(args.tasks_dir), "--split", "heldout",
           "--mode", "agent", "--runtime", args.runtime, "--model", model, "--backend", args.backend,
           "--batch-size", str(args.batch_size), "--workers", str(args.batch_size), "--dtype", "float32",
           "--max-steps", str(args.max_steps), "--max-new-tokens", str(args.tokens), "--syntax", args.syntax,
           "--window", str(cfg["window"]), "--max-observation-chars", str(cfg["max_observation_chars"]),
           "--think-prefill" if args.think == "prefill" else "--no-require-think", "--out", str(out_dir), "--quiet",
           *(["--limit", str(args.tasks)] * bool(args.tasks))]
    out_dir.mkdir(parents=True, exist_ok=True)
    wall, _ = run(cmd, out_dir.parent / "agent.log")
    res = json.loads((out_dir / "results.json").read_text())
    agent, k, n = res.get("agent") or {}, res["resolved"], res["total"]
    return {"resolved": k, "tasks": n, "resolved_rate": k / n if n else 0.0, "wilson95": wilson(k, n),
            "valid_tool_call_rate": agent.get("valid_tool_call_rate"), "submitted_rate": agent.get("submitted_rate"),
            "mean_steps_to_submit": agent.get("mean_steps_to_submit"), "steps": agent.get("steps"),
            "exit_status_counts": agent.get("exit_status_counts"), "status_counts": res.get("status_counts"),
            "resolved_ids": sorted(i for i, v in res["instances"].items() if v["resolved"]), "wall_s": wall}


def parse_sets(items: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        method, _, override = item.partition(".")
        if method not in RECIPES or "=" not in override:
            raise SystemExit(f"--set {item!r}: expected METHOD.KEY=VALUE with METHOD one of {', '.join(RECIPES)}")
        out.setdefault(method, []).append(override)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-minutes", type=float, required=True, help="training wall-minutes per trained method")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--syntax", default="qwen", choices=("qwen", "xml"))
    ap.add_argument("--think", default="optional", choices=tuple(THINK),
                    help="optional: require_think=false; prefill: the reply starts with <think>, strict format")
    ap.add_argument("--tasks-dir", type=Path, default=TASKS)
    ap.add_argument("--tasks", type=int, default=None, help="first N held-out tasks (default: all)")
    ap.add_argument("--max-steps", type=int, default=5, help="tool calls per agent episode")
    ap.add_argument("--tokens", type=int, default=None,
                    help="completion tokens per reply: SRL/SFT training, step eval, agent (default: SRL config's)")
    ap.add_argument("--batch-size", type=int, default=12, help="agent episodes in lockstep")
    ap.add_argument("--backend", default="vllm", choices=("vllm", "transformers"),
                    help="agent and step-eval generation (vLLM: 3.47x the sequential loop, "
                         "benchmarks/results/agent_batch_vllm.md)")
    ap.add_argument("--step-examples", type=int, default=16)
    ap.add_argument("--samples", type=int, default=2, help="sampled outputs per held-out step example")
    ap.add_argument("--runtime", choices=("docker", "local"), default="docker")
    ap.add_argument("--model", default=None, help="override the start model (tests: a tiny model)")
    ap.add_argument("--max-train-steps", type=int, default=None, help="also stop training after N steps (tests)")
    ap.add_argument("--run-dir", type=Path, default=REPO / "runs" / "bench-learning-swe")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "learning_swe.json")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.KEY=VALUE")
    ap.add_argument("--probe-syntax", action="store_true",
                    help="first measure the start model's step reward in each syntax on train-split steps")
    ap.add_argument("--probes", default=",".join(PROBES), help=f"what --probe-syntax measures, of {', '.join(PROBES)}")
    ap.add_argument("--redo", action="store_true", help="run methods already in --out again")
    ap.add_argument("--longer-agent", type=int, default=None, metavar="N",
                    help="also run each method's final model as an agent with N tool calls per episode (kept under "
                         "agent_longer; training and the main figures are not touched)")
    args = ap.parse_args(argv)
    args.sets = parse_sets(args.sets)
    args.probes = [p.strip() for p in args.probes.split(",") if p.strip()]
    if bad := [p for p in args.probes if p not in PROBES]:
        raise SystemExit(f"--probes: unknown {bad}; choose from {', '.join(PROBES)}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if bad := [m for m in methods if m not in METHODS]:
        raise SystemExit(f"--methods: unknown {bad}; choose from {', '.join(METHODS)}")
    srl_cfg = yaml.safe_load(SRL_CFG.read_text())
    args.tokens = args.tokens or srl_cfg["max_completion_length"]
    settings = {"model": args.model or srl_cfg["model"], "budget_minutes":
                args.budget_minutes, "syntax": args.syntax, "tasks_dir": str(args.tasks_dir), "tasks": args.tasks,
                "max_steps": args.max_steps, "batch_size": args.batch_size,
                "backend": args.backend, "step_examples": args.step_examples,
                "samples": args.samples, "runtime": args.runtime, "sets": args.sets,
                "tokens": args.tokens,
                "require_think": args.think == "prefill", **({"think": "prefill"} if args.think == "prefill" else {})}
    res: dict[str, Any] = {"machine": machine_info(), "settings": settings, "methods": {}}
    if args.out.is_file() and not args.redo:
        old = json.loads(args.out.read_text())
        if old.get("settings") != settings:  # another run's record: never overwritten unasked
            keys = sorted(k for k in {*settings, *old.get("settings", {})}
                          if settings.get(k) != old.get("settings", {}).get(k))
            raise SystemExit(f"{args.out} holds a run with other settings ({', '.join(keys)}); continue it with "
                             f"the same ones, or pass --redo to replace it, or another --out")
        # the same run, continued: its machine record and date stay
        res["methods"], res["machine"] = old.get("methods", {}), old.get("machine", res["machine"])
        if "syntax_probe" in old:
            res["syntax_probe"] = old["syntax_probe"]
    if args.probe_syntax and not set(args.probes) <= set(res.get("syntax_probe", {})):
        res["syntax_probe"] = syntax_probe(args, res.get("syntax_probe"))
        res["syntax_probe"]["date"] = machine_info()["date"]
        write_results(args.out, res, markdown(res))
    for method in methods:
        if method in res["methods"]:
            print(f"[{method}] in {args.out} already (--redo to run it again)", flush=True)
            continue
        mdir = args.run_dir / method
        shutil.rmtree(mdir, ignore_errors=True)  # a killed method starts over: its budget is spent once
        mdir.mkdir(parents=True)
        entry: dict[str, Any] = {}
        model = settings["model"]
        if method != "untrained":
            entry["train"] = train(method, args, mdir)
            model = entry["train"]["final_model"]
        entry["steps"] = step_eval(args, model, mdir / "step_eval")
        entry["agent"] = agent_eval(args, model, mdir / "agent")
        res["methods"][method] = entry
        res["claims"] = claims(res["methods"])
        res["machine"]["loadavg"] = os.getloadavg()
        write_results(args.out, res, markdown(res))
        print(f"[{method}] " + json.dumps({"resolved": entry["agent"]["resolved"], "tasks": entry["agent"]["tasks"],
                                           "greedy": entry["steps"]["greedy"]["mean_reward"]}), flush=True)
    if args.longer_agent:
        longer_agents(args, res, methods, settings["model"])
    res["claims"] = claims(res["methods"])
    write_results(args.out, res, markdown(res))
    print(markdown(res))
    return 0


def longer_agents(args: argparse.Namespace, res: dict[str, Any], methods: list[str], start: str) -> None:
    """The methods' final models as agents again with ``--longer-agent`` tool calls per episode: an episode
    capped below the experts' own length (5-11 calls on the held-out toolz tasks) cannot end the way its
    teacher did. Resumable per method like the rest."""
    n = str(args.longer_agent)
    for method in methods:
        entry = res["methods"].get(method)
        if entry is None or n in entry.get("agent_longer", {}):
            continue
        model = (entry.get("train") or {}).get("final_model") or start
        longer = argparse.Namespace(**{**vars(args), "max_steps": args.longer_agent})
        out_dir = args.run_dir / method / f"agent_steps{n}"
        shutil.rmtree(out_dir, ignore_errors=True)
        entry.setdefault("agent_longer", {})[n] = agent_eval(longer, model, out_dir)
        write_results(args.out, res, markdown(res))
        print(f"[{method}] {n} tool calls: {entry['agent_longer'][n]['resolved']}/{entry['agent_longer'][n]['tasks']}",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
