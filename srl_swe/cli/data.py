"""``srl-swe data`` and ``srl-swe env``: trajectories, step datasets and the step environments."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from srl_swe.cli.common import printable


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
        print(printable(f"skipped {s.source}" + (f" [{s.record}]" if s.record else "") + f": {s.reason}"))
    if len(malformed) > args.show:
        print(f"... and {len(malformed) - args.show} more malformed (use --json for all)")
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from srl_swe.dataset import save_dataset
    from srl_swe.steps import StepConfig

    cfg = StepConfig(syntax=args.syntax, window=args.window, max_observation_chars=args.max_observation_chars,
                     include_thoughts=args.include_thoughts)
    info = save_dataset(args.src, cfg, Path(args.out), keep=args.keep, progress=not args.quiet)
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


def add_commands(sub: Any) -> None:
    """The ``data`` and ``env`` subcommands; choices come from the registries."""
    from srl_swe.actions import SYNTAXES
    from srl_swe.envs.policies import POLICIES
    from srl_swe.envs.registration import ENV_IDS
    from srl_swe.trajectories import KEEP_CHOICES

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
