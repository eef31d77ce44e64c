"""``srl-swe train | bench | plot``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError


def cmd_train(args: argparse.Namespace) -> int:
    from srl_swe.train.config import load_config

    cfg = load_config(args.config, args.overrides)  # every check runs before any model loads
    cfg.check_paths()
    from srl_swe.train.run import is_main_process, train

    summary = train(cfg, resume=args.resume)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # torchrun / accelerate launch: the group goes before the interpreter's teardown, where a gloo group
        # once aborted a process after its work was done ("terminate called without an active exception")
        dist.destroy_process_group()
    if not is_main_process():  # rank 0 reports and plots
        return 0
    print(json.dumps(summary, indent=2))
    if not args.no_plot:
        from srl_swe.train.plot import plot_run

        print(f"plot: {plot_run(summary['run_dir'])}")
    return 0


BENCHMARKS = ("core", "train", "learning", "swebench", "tasks", "grpo_step", "agent_batch", "learning_swe",
              "docker_storage", "data_build")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``benchmarks/bench_NAME.py`` of a source checkout (benchmarks are not part of the wheel)."""
    import runpy

    script = Path(__file__).resolve().parents[2] / "benchmarks" / f"bench_{args.name}.py"
    if not script.is_file():
        raise SRLError(f"{script} not found: the benchmarks ship with the source checkout, not the wheel; "
                       f"run srl-swe from a clone (pip install -e .)")
    sys.argv = [str(script), *args.args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:  # the scripts end with sys.exit(main())
        return int(e.code or 0)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from srl_swe.train.plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0


def add_commands(sub: Any) -> None:
    """The ``train``, ``bench`` and ``plot`` subcommands."""
    tr = sub.add_parser("train", help="train with SRL / RLVR / SFT / SRL->RLVR (configs/*.yaml)")
    tr.add_argument("--config", required=True, help="a YAML file from configs/ or your own")
    tr.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_steps=20 model=./my-model")
    tr.add_argument("--resume", action="store_true", help="continue from the run's last complete checkpoint")
    tr.add_argument("--no-plot", action="store_true")
    tr.set_defaults(func=cmd_train)

    # Not packaged: the scripts read the checkout around them (configs/, trajectories/swe-tasks/, scripts/) and
    # write to benchmarks/results/, so a wheel would need them rewritten; --help says so instead.
    be = sub.add_parser(
        "bench", help="run a benchmark of benchmarks/ (source checkout only; JSON + Markdown results)",
        description="Runs benchmarks/bench_NAME.py of a source checkout. The benchmarks are not in the wheel: "
                    "from an installed package this command stops with an error. Clone the repository and "
                    "`pip install -e .` to run them.")
    be.add_argument("name", choices=BENCHMARKS)
    be.add_argument("args", nargs=argparse.REMAINDER, help="passed to the script, e.g. --quick")
    be.set_defaults(func=cmd_bench)

    pl = sub.add_parser("plot", help="draw a run's metrics.jsonl to PNG")
    pl.add_argument("run_dir")
    pl.add_argument("-o", "--out", default=None)
    pl.set_defaults(func=cmd_plot)
