"""`make demo`: SRL on software tasks, end to end on a CPU, then the trained model graded as an agent.

    python scripts/demo_swe.py [--config configs/cpu-srl-swe-smollm2.yaml] [--out runs/demo] [--tasks 3]

Model outputs are untrusted: the agents run in Docker containers (``--runtime auto`` skips the agent stage
when no daemon answers; ``--runtime local`` runs them on this host, unisolated, for a machine you can lose).

1. ``srl-swe train`` with the config (GRPO on the step examples of the generated toolz tasks' train split),
   which measures the held-out step reward before and after and writes the plot;
2. ``srl-swe eval swebench --mode agent`` of the untrained and of the trained model on the first ``--tasks``
   tasks of the held-out split (functions and files never trained on), all episodes of a model in lockstep,
   each task graded by running its tests: resolved, valid tool calls, steps to submit;
3. ``OUT/report.json`` and a table of both.

Each stage is its own process (a model is loaded once per stage, and the peaks of memory do not add up), and
each is resumable: rerunning the demo continues a killed training run and skips the graded episodes.
The agent evaluation uses the training config's prompt settings (syntax, window, observation budget,
``require_think``, completion length), so the trained model acts on the context it was trained on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "cpu-srl-swe-smollm2.yaml"
TASKS = REPO / "trajectories" / "swe-tasks" / "toolz-1.2.0"


def srl_swe() -> list[str]:
    exe = Path(sys.executable).with_name("srl-swe")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "srl_swe.cli"]


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd[1:] if cmd[0].endswith("srl-swe") else cmd), flush=True)
    subprocess.run(cmd, check=True)


def docker_up() -> bool:
    from srl_swe.runtime.images import DockerUnavailableError, docker_client

    try:
        docker_client(timeout=10)
        return True
    except DockerUnavailableError:
        return False


def agent_eval(cfg: dict[str, Any], model: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    window, n = cfg.get("window", 2), args.tasks
    run([*srl_swe(), "eval", "swebench", "--dataset", str(args.tasks_dir), "--split", "heldout", "--limit", str(n),
         "--mode", "agent", "--runtime", args.runtime, "--model", model, "--batch-size", str(n),
         "--dtype", str(cfg.get("dtype", "float32")), "--max-steps", str(args.max_steps),
         "--max-new-tokens", str(cfg.get("max_completion_length", 96)), "--syntax", str(cfg.get("syntax", "xml")),
         "--window", str(2 if window == "default" else -1 if window is None else window),
         "--max-observation-chars", str(cfg.get("max_observation_chars", 4000)),
         *([] if cfg.get("require_think", True) else ["--no-require-think"]),
         *(["--think-prefill"] if cfg.get("think_prefill") else []), "--out", str(out), "--quiet"])
    return json.loads((out / "results.json").read_text())


def row(name: str, results: dict[str, Any]) -> dict[str, Any]:
    agent = results.get("agent") or {}
    return {"model": name, "resolved": results["resolved"], "tasks": results["total"],
            "valid_tool_call_rate": agent.get("valid_tool_call_rate"), "submitted_rate": agent.get("submitted_rate"),
            "mean_steps_to_submit": agent.get("mean_steps_to_submit"), "steps": agent.get("steps")}


def fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if pct else f"{v:.2f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "demo")
    ap.add_argument("--tasks-dir", type=Path, default=TASKS, help="the `srl-swe tasks make` folder to grade on")
    ap.add_argument("--tasks", type=int, default=3, help="held-out tasks graded per model")
    ap.add_argument("--max-steps", type=int, default=3, help="tool calls per episode")
    ap.add_argument("--runtime", choices=("auto", "docker", "local"), default="auto",
                    help="where the agents' commands run; auto: docker when a daemon answers, else the agent "
                    "evaluation is skipped (local runs the model's commands on this host, unisolated)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides for the training config")
    args = ap.parse_args(argv)
    # overrides are read as YAML values, as `srl-swe train` reads them (require_think=false is False)
    given = (o.split("=", 1) for o in args.overrides if "=" in o)
    cfg = {**yaml.safe_load(args.config.read_text()), **{k: yaml.safe_load(v) for k, v in given}}
    run_dir = args.out / "srl"
    run([*srl_swe(), "train", "--config", str(args.config), f"output_dir={run_dir}", *args.overrides, "--resume"])
    summary = json.loads((run_dir / "summary.json").read_text())
    if args.runtime == "auto":
        args.runtime = "docker" if docker_up() else None
    rows = []
    if args.runtime is None:
        print("No Docker daemon answers, so the agent evaluation is skipped: the model's commands are untrusted "
              "and run only in containers. Start Docker (as root: bash scripts/start_dockerd.sh) and rerun, or "
              "pass --runtime local to run them on this host without isolation.", flush=True)
    else:
        rows = [row("untrained", agent_eval(cfg, str(cfg["model"]), args.out / "agent-untrained", args)),
                row("SRL", agent_eval(cfg, summary["final_model"], args.out / "agent-srl", args))]
    step = summary.get("held_out_step_reward") or {}
    report = {"config": str(args.config), "overrides": args.overrides, "train_run": str(run_dir),
              "held_out_step_reward": step, "agent": rows, "agent_settings": {
                  "tasks_dir": str(args.tasks_dir), "split": "heldout", "tasks": args.tasks,
                  "max_steps": args.max_steps, "runtime": args.runtime, "greedy": True}}
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    width = shutil.get_terminal_size((100, 20)).columns
    print("=" * min(width, 100))
    print(f"held-out step reward (greedy): before {fmt(step.get('before'))}  after {fmt(step.get('after'))}"
          f"   format violations: before {fmt(step.get('format_violation_before'), True)}"
          f"  after {fmt(step.get('format_violation_after'), True)}")
    if rows:
        print(f"agent mode on {args.tasks} held-out toolz tasks ({args.runtime} runtime), graded by running their "
              f"tests (at most {args.max_steps} tool calls, greedy):")
        print(f"  {'model':<10} {'resolved':>9} {'valid calls':>12} {'submitted':>10} {'steps to submit':>16}")
    for r in rows:
        print(f"  {r['model']:<10} {r['resolved']:>4}/{r['tasks']:<4} {fmt(r['valid_tool_call_rate'], True):>12} "
              f"{fmt(r['submitted_rate'], True):>10} {fmt(r['mean_steps_to_submit']):>16}")
    print(f"report: {args.out / 'report.json'}   plot: {run_dir / 'metrics.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
