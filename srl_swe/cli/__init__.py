"""``srl-swe``: data | env | tasks | train | eval | bench | plot.

    srl-swe data inspect PATH            per-source counts: trajectories, steps, outcomes, skipped and why
    srl-swe data build SRC -o DIR        step examples as a Hugging Face dataset (load_from_disk)
    srl-swe env list | check             registered environment ids; gymnasium's check_env over each
    srl-swe env run [--env ID]           episodes with a scripted policy, printing rewards (JSONL out)
    srl-swe tasks make SRC -o DIR        executable SWE tasks: bugs a package's own tests catch, + experts
    srl-swe tasks inspect DIR            task counts, per-family yield, splits, expert trajectories
    srl-swe train --config FILE [k=v ...] [--resume]   SRL / RLVR / SFT / SRL->RLVR on TRL
    srl-swe eval steps --model M --data HELD_OUT       held-out step reward and format-violation rate
    srl-swe eval math --model M --benchmarks ...       greedy accuracy and avg@k, math-verify
    srl-swe eval swebench --dataset D --model M       SWE-bench predictions (agent / oracle-file), harness-graded
    srl-swe eval merge SHARD_DIR... -o OUT            one report from the shards of an `eval swebench --shard I/N`
    srl-swe bench NAME [ARGS]            a benchmark of benchmarks/ (core, train, ...): source checkout only
    srl-swe plot RUN_DIR                 metrics.jsonl of a run as a PNG

One module per group of subcommands (data.py: data + env, tasks.py: tasks, run.py: train + bench + plot,
evaluate.py: eval); each adapts argparse to the typed library calls below it.
"""

from __future__ import annotations

import argparse
import sys

from srl_swe.cli import data, evaluate, run, tasks
from srl_swe.cli.common import printable
from srl_swe.errors import SRLError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srl-swe", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for commands in (data, tasks, run, evaluate):
        commands.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SRLError, FileNotFoundError, ValueError) as e:
        print(printable(f"srl-swe: error: {e}", sys.stderr), file=sys.stderr)
        return 2
