"""``srl-swe eval steps | math | swebench | merge``: argparse flags adapted to the typed calls of srl_swe.eval."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from srl_swe.cli.common import registry_option


def cmd_eval_steps(args: argparse.Namespace) -> int:
    from srl_swe.actions import THINK_PREFILL
    from srl_swe.eval.steps import evaluate_steps, rows_from_path
    from srl_swe.models import make_generator

    rows = rows_from_path(args.data)[: args.limit] if args.limit else rows_from_path(args.data)
    generator = make_generator(args.backend, args.model, batch_size=args.batch_size)
    out = Path(args.out) if args.out else None
    result = evaluate_steps(generator, rows, n=args.n, temperature=args.temperature,
                            max_new_tokens=args.max_new_tokens, seed=args.seed, out_dir=out,
                            require_think=not args.think_optional,
                            prefill=THINK_PREFILL if args.think_prefill else "")
    print(json.dumps(result, indent=2))
    return 0


def cmd_eval_math(args: argparse.Namespace) -> int:
    from srl_swe.eval.math import default_out_dir, results_table, run_math_eval
    from srl_swe.models import make_generator

    out = args.out or default_out_dir(args.model)
    generator = make_generator(args.backend, args.model, batch_size=args.batch_size, dtype=args.dtype)
    results = run_math_eval(generator, args.benchmarks, k=args.k, temperature=args.temperature,
                            max_new_tokens=args.max_new_tokens, limit=args.limit, out_dir=out, seed=args.seed,
                            data_dir=args.data_dir, model=args.model)
    print(results_table([results]), end="")
    print(f"wrote {out}/results.json, results.md, samples.jsonl")
    return 0


def _benchmark_list(value: str) -> list[str]:
    from srl_swe.eval import math as math_eval

    names = [b.strip() for b in value.split(",") if b.strip()]
    unknown = [b for b in names if b not in math_eval.BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown benchmarks {unknown}; known: {', '.join(math_eval.BENCHMARKS)}")
    return names


def _add_math_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``srl-swe eval math``: :func:`srl_swe.eval.math.run_math_eval`'s settings and the model's."""
    from srl_swe.eval import math as math_eval
    from srl_swe.models import GENERATORS

    parser.add_argument("--model", required=True, help="hub id or local path of the model")
    parser.add_argument("--benchmarks", type=_benchmark_list, default=list(math_eval.DEFAULT_BENCHMARKS),
                        help=f"comma-separated, from {','.join(math_eval.BENCHMARKS)} (default: all)")
    parser.add_argument("--k", type=int, default=32, help="samples per problem for avg@k (0: greedy only)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for avg@k")
    parser.add_argument("--max-new-tokens", type=int, default=4096)
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems of each benchmark")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: runs/eval/math/MODEL)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None, help="shared data folder (default: $SRL_SWE_DATA)")
    parser.add_argument("--backend", default="transformers", type=registry_option(GENERATORS),
                        help=f"generation backend: {', '.join(GENERATORS.names())} or a dotted path module.Class")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per generate call (transformers)")
    parser.add_argument("--dtype", default="auto")


def cmd_eval_swebench(args: argparse.Namespace) -> int:
    import dataclasses

    from srl_swe.eval.swebench import PREDICTIONS, SWEBenchOptions, evaluate, table

    opts = SWEBenchOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SWEBenchOptions)})
    out, summary = evaluate(opts)
    print(table(summary), end="")
    shard = f" (shard {opts.shard}: merge every shard's folder with `srl-swe eval merge`)" if opts.shard else ""
    print(f"wrote {out}/results.json, {PREDICTIONS}{shard}")
    return 0


def cmd_eval_merge(args: argparse.Namespace) -> int:
    from srl_swe.eval.shards import MERGE_RECORD, merge
    from srl_swe.eval.swebench import PREDICTIONS, table

    out, summary = merge(args.shards, args.out, run_id=args.run_id)
    print(table(summary), end="")
    print(f"wrote {out}/results.json, {PREDICTIONS}, {MERGE_RECORD} ({len(args.shards)} shards)")
    return 0


def _shard(value: str):
    from srl_swe.eval.shards import ShardError, parse_shard

    try:
        return parse_shard(value)
    except ShardError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_swebench_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``srl-swe eval swebench``: the fields of :class:`srl_swe.eval.swebench.SWEBenchOptions`."""
    from srl_swe.eval.swebench import MODES
    from srl_swe.models import GENERATORS
    from srl_swe.runtime import RUNTIMES
    from srl_swe.swebench.grading import GRADERS

    parser.add_argument("--model", default=None,
                        help="model spec, or 'gold' (gold patches), or 'replay:PATH' (expert trajectories)")
    parser.add_argument("--predictions", type=Path, default=None,
                        help="grade this predictions JSONL instead of generating (no --model needed)")
    parser.add_argument("--dataset", required=True,
                        help="SWE-bench JSONL/JSON file, a local_tasks or `srl-swe tasks make` folder, or a "
                        "Hugging Face dataset name")
    parser.add_argument("--split", default="test", help="split of a Hugging Face dataset, or of a `srl-swe "
                        "tasks make` folder (train / heldout; any other value: all its tasks)")
    parser.add_argument("--instances", nargs="*", default=None, help="only these instance ids")
    parser.add_argument("--limit", type=int, default=None, help="only the first N instances (in dataset order)")
    parser.add_argument("--mode", choices=MODES, default="agent")
    parser.add_argument("--runtime", choices=RUNTIMES.names(), default="docker")
    parser.add_argument("--grader", choices=GRADERS, default=None,
                        help="default: harness with --runtime docker, runtime with --runtime local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default: runs/eval/swebench/MODEL")
    parser.add_argument("--run-id", default=None, help="harness run id (default: derived from --out)")
    parser.add_argument("--backend", default="transformers", type=registry_option(GENERATORS),
                        help=f"generation backend: {', '.join(GENERATORS.names())} or a dotted path module.Class")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="agent mode: episodes in lockstep, one batched generation per turn (1: sequential)")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--max-steps", type=int, default=50, help="agent mode: tool calls per instance")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="agent mode: wall time per instance")
    parser.add_argument("--syntax", default="xml", help="agent mode: action syntax (xml, qwen, bash)")
    parser.add_argument("--window", type=int, default=2, help="agent mode: action/observation pairs in the prompt "
                        "(as SRL-SWE-v0; -1: all)")
    parser.add_argument("--max-observation-chars", type=int, default=4000,
                        help="agent mode: longer observations are cut in the prompt (match the training config)")
    parser.add_argument("--no-require-think", dest="require_think", action="store_false",
                        help="agent mode: accept an output without a <think> block (configs with require_think: "
                        "false, such as the small-model CPU ones)")
    parser.add_argument("--think-prefill", action="store_true",
                        help="agent mode: every reply starts with '<think>\\n' written by srl-swe (configs with "
                        "think_prefill: true); the model continues it")
    parser.add_argument("--timeout", type=int, default=1800, help="harness: test run timeout per instance")
    parser.add_argument("--harness-timeout", type=float, default=None, metavar="SECONDS",
                        help="harness: limit of the whole harness run, after which it is stopped and the instances "
                             "it had not graded are infra_error (default: --timeout + 600 s per round of --workers "
                             "instances, + 600 s)")
    parser.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                        help="only the I-th of N deterministic parts of the run (1 <= I <= N), e.g. one per machine; "
                        "join the parts' folders with `srl-swe eval merge`")
    parser.add_argument("--modal", action="store_true",
                        help="the harness grades on Modal (its own backend; needs `modal` and ~/.modal.toml; "
                        "untested here)")
    parser.add_argument("--quiet", action="store_true")


def add_commands(sub: Any) -> None:
    """The ``eval`` subcommands."""
    from srl_swe.models import GENERATORS

    ev = sub.add_parser("eval", help="evaluate a model").add_subparsers(dest="action", required=True)
    st = ev.add_parser("steps", help="held-out step reward and format-violation rate")
    st.add_argument("--model", required=True)
    st.add_argument("--data", required=True, help="a `data build` folder or trajectory file/folder")
    st.add_argument("--n", type=int, default=4, help="sampled outputs per example (0: greedy only)")
    st.add_argument("--temperature", type=float, default=1.0)
    st.add_argument("--max-new-tokens", type=int, default=256)
    st.add_argument("--limit", type=int, default=None)
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--backend", default="transformers", type=registry_option(GENERATORS),
                    help=f"generation backend: {', '.join(GENERATORS.names())} or a dotted path module.Class")
    st.add_argument("--batch-size", type=int, default=8)
    st.add_argument("--out", default=None, help="folder for step_eval.json and step_samples.jsonl")
    st.add_argument("--think-optional", action="store_true",
                    help="score outputs without a <think> block as all action (not the paper's format)")
    st.add_argument("--think-prefill", action="store_true",
                    help="the reply starts with '<think>\\n' (written by srl-swe; the model continues it)")
    st.set_defaults(func=cmd_eval_steps)
    mt = ev.add_parser("math", help="math benchmarks: greedy accuracy and avg@k (math-verify)")
    _add_math_arguments(mt)
    mt.set_defaults(func=cmd_eval_math)
    sw = ev.add_parser("swebench", help="SWE-bench: predictions (agent or oracle-file) graded by the harness")
    _add_swebench_arguments(sw)
    sw.set_defaults(func=cmd_eval_swebench)
    mg = ev.add_parser("merge", help="one results.json from the shards of an `eval swebench --shard I/N` run")
    mg.add_argument("shards", nargs="+", type=Path, help="the output folders of shards 1/N ... N/N")
    mg.add_argument("-o", "--out", type=Path, required=True, help="folder for the merged run (not a shard's)")
    mg.add_argument("--run-id", default=None, help="run id in the report (default: derived from --out, as a run's)")
    mg.set_defaults(func=cmd_eval_merge)
