"""``srl-swe``: data | env | train | eval | plot.

    srl-swe data inspect PATH            per-source counts: trajectories, steps, outcomes, skipped and why
    srl-swe data build SRC -o DIR        step examples as a Hugging Face dataset (load_from_disk)
    srl-swe env list | check             registered environment ids; gymnasium's check_env over each
    srl-swe env run [--env ID]           episodes with a scripted policy, printing rewards (JSONL out)
    srl-swe train --config FILE [k=v ...] [--resume]   SRL / RLVR / SFT / SRL->RLVR on TRL
    srl-swe eval steps --model M --data HELD_OUT       held-out step reward and format-violation rate
    srl-swe eval math --model M --benchmarks ...       greedy accuracy and avg@k, math-verify
    srl-swe plot RUN_DIR                 metrics.jsonl of a run as a PNG
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from srl_swe.errors import SRLError


def _window(value: str) -> int | None:
    if value in ("full", "none", "None"):
        return None
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--window takes 'full' or a number of pairs, got {value!r}") from None
    if k < 0:
        raise argparse.ArgumentTypeError("--window must be >= 0")
    return k


def _printable(text: str, stream=None) -> str:
    """``text`` that ``stream`` (stdout) can always write, even with a strict encoding: the bytes of a file name
    that is not UTF-8 (decoded by Python with surrogateescape) and characters the encoding lacks become
    backslash escapes instead of aborting the listing with UnicodeEncodeError."""
    encoding = getattr(stream or sys.stdout, "encoding", None) or "utf-8"
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte (e.g. from JSON "\ud800")
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.encode(encoding, "backslashreplace").decode(encoding, "replace")


def cmd_data_inspect(args: argparse.Namespace) -> int:
    from srl_swe.trajectories import load_trajectories

    result = load_trajectories(args.path, keep=args.keep)
    summary = result.summary()
    if args.json:
        print(json.dumps({"sources": summary, "skipped": [s.__dict__ for s in result.skipped]}, indent=2))
        return 0
    header = f"{'source format':<18}{'trajs':>7}{'steps':>8}{'resolved':>10}{'unresolved':>12}{'unknown':>9}  skipped"
    print(header)
    print("-" * len(header))
    for fmt, row in summary.items():
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(row["skipped"].items())) or "-"
        print(f"{fmt:<18}{row['trajectories']:>7}{row['steps']:>8}{row['resolved']:>10}{row['unresolved']:>12}"
              f"{row['unknown']:>9}  {skipped}")
    malformed = [s for s in result.skipped if s.category == "malformed"]
    for s in malformed[: args.show]:
        print(_printable(f"skipped {s.source}" + (f" [{s.record}]" if s.record else "") + f": {s.reason}"))
    if len(malformed) > args.show:
        print(f"... and {len(malformed) - args.show} more malformed (use --json for all)")
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from srl_swe.dataset import save_dataset
    from srl_swe.steps import StepConfig
    from srl_swe.trajectories import load_trajectories

    cfg = StepConfig(syntax=args.syntax, window=args.window, max_observation_chars=args.max_observation_chars,
                     include_thoughts=args.include_thoughts)
    info = save_dataset(load_trajectories(args.src, keep=args.keep), cfg, Path(args.out), progress=not args.quiet)
    print(f"wrote {info['examples']} step examples from {info['trajectories']} trajectories to {args.out} "
          f"({len(info['skipped'])} skipped; details in {Path(args.out) / 'build_info.json'})")
    return 0


def cmd_env_list(args: argparse.Namespace) -> int:
    from srl_swe.envs.registration import ENV_IDS, EXEC_ENV_IDS

    for env_id, entry in {**ENV_IDS, **EXEC_ENV_IDS}.items():
        print(f"{env_id:<18}{entry}")
    return 0


def _check(env_id: str, label: str, **kwargs) -> bool:
    import warnings

    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, **kwargs)
        check_env(env.unwrapped)
        env.close()
    print(f"{env_id:<18}{label:<12}" + ("ok" if not caught else f"{len(caught)} warning(s): {caught[0].message}"))
    return not caught


def cmd_env_check(args: argparse.Namespace) -> int:
    from srl_swe.envs.registration import ENV_IDS, EXEC_ENV_IDS
    from srl_swe.paths import shared_data_dir

    for env_id in ENV_IDS:
        for mode in ("trajectory", "step"):
            if not _check(env_id, mode, mode=mode):
                return 1
    # The executing env needs tasks (default: the shared local_tasks) and runs commands: checked on the local
    # runtime, which needs no Docker.
    tasks = shared_data_dir() / "local_tasks"
    for env_id in EXEC_ENV_IDS:
        if not tasks.is_dir():
            print(f"{env_id:<18}{'local':<12}skipped: no tasks at {tasks} (set SRL_SWE_DATA)")
        elif not _check(env_id, "local", data=tasks, runtime="local", max_steps=5):
            return 1
    return 0


def cmd_env_run(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from tqdm.auto import tqdm

    from srl_swe.envs.policies import POLICIES

    kwargs = {"keep": args.keep} if args.data is None else {"data": args.data, "keep": args.keep}
    if args.window != "default":
        kwargs["window"] = _window(args.window)
    env = gym.make(args.env, **kwargs)
    base = env.unwrapped
    policy = POLICIES.get(args.policy)(base, seed=args.seed)
    n = min(args.episodes, len(base.trajectories)) if args.episodes else len(base.trajectories)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out = open(args.out, "w") if args.out else None  # noqa: SIM115 - closed below, kept open across episodes
    rewards_all = []
    try:
        for ep in tqdm(range(n), desc=f"{args.env} episodes", unit="ep", disable=args.quiet or n < 2):
            obs, info = env.reset(seed=args.seed + ep, options={"index": ep})
            done, rewards = False, []
            while not done:
                obs, reward, terminated, truncated, step_info = env.step(policy(obs, info))
                rewards.append(float(reward))
                if out:
                    out.write(json.dumps({"episode": ep, "task_id": info["task_id"], "step": info["step_index"],
                                          "reward": reward, "valid": step_info["score"]["valid"]}) + "\n")
                info, done = step_info, terminated or truncated
            rewards_all.extend(rewards)
            tqdm.write(f"episode {ep} {info['task_id']}: {len(rewards)} steps, mean reward "
                       f"{sum(rewards) / len(rewards):.3f}  [{' '.join(f'{r:.2f}' for r in rewards)}]")
    finally:
        if out:
            out.close()
    print(f"{args.env} / {args.policy}: {n} episodes, {len(rewards_all)} steps, "
          f"mean step reward {sum(rewards_all) / len(rewards_all):.3f}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from srl_swe.train.config import load_config

    cfg = load_config(args.config, args.overrides)  # every check runs before any model loads
    cfg.check_paths()
    from srl_swe.train.run import is_main_process, train

    summary = train(cfg, resume=args.resume)
    if not is_main_process():  # torchrun / accelerate launch: rank 0 reports and plots
        return 0
    print(json.dumps(summary, indent=2))
    if not args.no_plot:
        from srl_swe.train.plot import plot_run

        print(f"plot: {plot_run(summary['run_dir'])}")
    return 0


def cmd_eval_steps(args: argparse.Namespace) -> int:
    from srl_swe.eval.steps import evaluate_steps, rows_from_path
    from srl_swe.models import make_generator

    rows = rows_from_path(args.data)[: args.limit] if args.limit else rows_from_path(args.data)
    generator = make_generator(args.backend, args.model, batch_size=args.batch_size)
    out = Path(args.out) if args.out else None
    result = evaluate_steps(generator, rows, n=args.n, temperature=args.temperature,
                            max_new_tokens=args.max_new_tokens, seed=args.seed, out_dir=out,
                            require_think=not args.think_optional)
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
    from srl_swe.models import GENERATORS, backend_option

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
    parser.add_argument("--backend", default="transformers", type=backend_option,
                        help=f"generation backend: {', '.join(GENERATORS.names())} or a dotted path module.Class")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per generate call (transformers)")
    parser.add_argument("--dtype", default="auto")


def cmd_eval_swebench(args: argparse.Namespace) -> int:
    import dataclasses

    from srl_swe.eval.swebench import PREDICTIONS, SWEBenchOptions, evaluate, table

    opts = SWEBenchOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SWEBenchOptions)})
    out, summary = evaluate(opts)
    print(table(summary), end="")
    print(f"wrote {out}/results.json, {PREDICTIONS}")
    return 0


def _add_swebench_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``srl-swe eval swebench``: the fields of :class:`srl_swe.eval.swebench.SWEBenchOptions`."""
    from srl_swe.eval.swebench import MODES
    from srl_swe.models import GENERATORS, backend_option
    from srl_swe.runtime import RUNTIMES
    from srl_swe.swebench.grading import GRADERS

    parser.add_argument("--model", default=None,
                        help="model spec, or 'gold' (gold patches), or 'replay:PATH' (expert trajectories)")
    parser.add_argument("--predictions", type=Path, default=None,
                        help="grade this predictions JSONL instead of generating (no --model needed)")
    parser.add_argument("--dataset", required=True,
                        help="SWE-bench JSONL/JSON file, a local_tasks folder, or a Hugging Face dataset name")
    parser.add_argument("--split", default="test", help="split of a Hugging Face dataset")
    parser.add_argument("--instances", nargs="*", default=None, help="only these instance ids")
    parser.add_argument("--mode", choices=MODES, default="agent")
    parser.add_argument("--runtime", choices=RUNTIMES.names(), default="docker")
    parser.add_argument("--grader", choices=GRADERS, default=None,
                        help="default: harness with --runtime docker, runtime with --runtime local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default: runs/eval/swebench/MODEL")
    parser.add_argument("--run-id", default=None, help="harness run id (default: derived from --out)")
    parser.add_argument("--backend", default="transformers", type=backend_option,
                        help=f"generation backend: {', '.join(GENERATORS.names())} or a dotted path module.Class")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--max-steps", type=int, default=50, help="agent mode: tool calls per instance")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="agent mode: wall time per instance")
    parser.add_argument("--syntax", default="xml", help="agent mode: action syntax (xml, qwen, bash)")
    parser.add_argument("--timeout", type=int, default=1800, help="harness: test run timeout per instance")
    parser.add_argument("--quiet", action="store_true")


BENCHMARKS = ("core", "train", "learning", "swebench")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``benchmarks/bench_NAME.py`` of a source checkout (benchmarks are not part of the wheel)."""
    import runpy

    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"bench_{args.name}.py"
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


def build_parser() -> argparse.ArgumentParser:
    from srl_swe.actions import SYNTAXES
    from srl_swe.envs.policies import POLICIES
    from srl_swe.envs.registration import ENV_IDS
    from srl_swe.models import GENERATORS, backend_option
    from srl_swe.trajectories import KEEP_CHOICES

    p = argparse.ArgumentParser(prog="srl-swe", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect trajectories and build step datasets").add_subparsers(
        dest="action", required=True)
    ins = data.add_parser("inspect", help="per-source counts of a trajectory file or folder")
    ins.add_argument("path")
    ins.add_argument("--keep", choices=KEEP_CHOICES, default="resolved")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    ins.add_argument("--show", type=int, default=10, help="how many malformed records to list")
    ins.set_defaults(func=cmd_data_inspect)
    build = data.add_parser("build", help="write step examples as a Hugging Face dataset")
    build.add_argument("src")
    build.add_argument("-o", "--out", required=True)
    build.add_argument("--syntax", choices=SYNTAXES.names(), default="xml")
    build.add_argument("--window", type=_window, default=None, help="'full' (default) or last k pairs")
    build.add_argument("--max-observation-chars", type=int, default=4000)
    build.add_argument("--include-thoughts", action="store_true")
    build.add_argument("--keep", choices=KEEP_CHOICES, default="resolved")
    build.add_argument("--quiet", action="store_true")
    build.set_defaults(func=cmd_data_build)

    env = sub.add_parser("env", help="the Gymnasium environments").add_subparsers(dest="action", required=True)
    env.add_parser("list", help="registered environment ids").set_defaults(func=cmd_env_list)
    env.add_parser("check", help="gymnasium check_env over every registered id").set_defaults(func=cmd_env_check)
    run = env.add_parser("run", help="run episodes with a scripted policy and print rewards")
    run.add_argument("--env", choices=list(ENV_IDS), default="SRL-SWE-v0")
    run.add_argument("--data", default=None, help="trajectory file or folder (default: bundled)")
    run.add_argument("--policy", choices=POLICIES.names(), default="replay")
    run.add_argument("--episodes", type=int, default=0, help="0 = every trajectory once")
    run.add_argument("--window", default="default", help="'full', a number of pairs, or the env's default")
    run.add_argument("--keep", choices=KEEP_CHOICES, default="resolved")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", default=None, help="write per-step rewards as JSONL")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=cmd_env_run)

    tr = sub.add_parser("train", help="train with SRL / RLVR / SFT / SRL->RLVR (configs/*.yaml)")
    tr.add_argument("--config", required=True, help="a YAML file from configs/ or your own")
    tr.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_steps=20 model=./my-model")
    tr.add_argument("--resume", action="store_true", help="continue from the run's last complete checkpoint")
    tr.add_argument("--no-plot", action="store_true")
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a model").add_subparsers(dest="action", required=True)
    st = ev.add_parser("steps", help="held-out step reward and format-violation rate")
    st.add_argument("--model", required=True)
    st.add_argument("--data", required=True, help="a `data build` folder or trajectory file/folder")
    st.add_argument("--n", type=int, default=4, help="sampled outputs per example (0: greedy only)")
    st.add_argument("--temperature", type=float, default=1.0)
    st.add_argument("--max-new-tokens", type=int, default=256)
    st.add_argument("--limit", type=int, default=None)
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--backend", default="transformers", type=backend_option,
                    help=f"generation backend: {', '.join(GENERATORS.names())} or a dotted path module.Class")
    st.add_argument("--batch-size", type=int, default=8)
    st.add_argument("--out", default=None, help="folder for step_eval.json and step_samples.jsonl")
    st.add_argument("--think-optional", action="store_true",
                    help="score outputs without a <think> block as all action (not the paper's format)")
    st.set_defaults(func=cmd_eval_steps)
    mt = ev.add_parser("math", help="math benchmarks: greedy accuracy and avg@k (math-verify)")
    _add_math_arguments(mt)
    mt.set_defaults(func=cmd_eval_math)
    sw = ev.add_parser("swebench", help="SWE-bench: predictions (agent or oracle-file) graded by the harness")
    _add_swebench_arguments(sw)
    sw.set_defaults(func=cmd_eval_swebench)

    be = sub.add_parser("bench", help="run a benchmark of benchmarks/ (results as JSON + Markdown)")
    be.add_argument("name", choices=BENCHMARKS)
    be.add_argument("args", nargs=argparse.REMAINDER, help="passed to the script, e.g. --quick")
    be.set_defaults(func=cmd_bench)

    pl = sub.add_parser("plot", help="draw a run's metrics.jsonl to PNG")
    pl.add_argument("run_dir")
    pl.add_argument("-o", "--out", default=None)
    pl.set_defaults(func=cmd_plot)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SRLError, FileNotFoundError, ValueError) as e:
        print(_printable(f"srl-swe: error: {e}", sys.stderr), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
