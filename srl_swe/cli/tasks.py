"""``srl-swe tasks``: executable SWE tasks made from real packages (issue 12).

    srl-swe tasks make SRC -o DIR [--n N] [--seed S] [--workers W]   inject bugs, keep those the tests catch
    srl-swe tasks inspect DIR [--json]                                counts, per-family yield, splits, experts
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from srl_swe.cli.common import printable
from srl_swe.taskgen.validate import RUNTIMES


def cmd_tasks_make(args: argparse.Namespace) -> int:
    from srl_swe.taskgen.run import generate
    from srl_swe.taskgen.sources import source_spec

    spec = source_spec(args.src, extra_deps=args.deps, pythonpath=args.pythonpath, test_cmd=args.test_cmd)
    generate(spec, args.out, n=args.n, seed=args.seed, workers=args.workers, tests=args.tests,
             only=args.only, timeout=args.timeout, heldout=args.heldout, runtime=args.runtime, progress=not args.quiet)
    if args.experts:
        from srl_swe.taskgen.expert import write_experts

        write_experts(args.out, runtime=args.runtime, workers=args.workers, progress=not args.quiet)
    print(printable(_describe(Path(args.out))))
    return 0


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc}); rerun `srl-swe tasks make` into its folder "
                         "to rewrite it") from None


def task_dirs(path: Path) -> list[Path]:
    """``path`` itself when `tasks make` wrote it, else its immediate subfolders that it wrote (sorted)."""
    if (path / "summary.json").is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder")
    found = sorted(p for p in path.iterdir() if (p / "summary.json").is_file())
    if not found:
        raise FileNotFoundError(f"{path}: no summary.json here or in its subfolders; is it a `srl-swe tasks make` "
                                "output folder?")
    return found


def inspect(path: Path) -> dict[str, Any]:
    """One folder's counts, from the files `tasks make` writes (nothing is rerun)."""
    summary = _read(path / "summary.json") or {}
    tasks = path / "tasks.jsonl"
    n_tasks = sum(1 for line in tasks.open(encoding="utf-8") if line.strip()) if tasks.is_file() else 0
    return {"folder": str(path), "package": f"{summary.get('package')} {summary.get('package_version')}",
            "tasks": n_tasks, "validated": summary.get("validated", 0), "kept": summary.get("kept", 0),
            "families": summary.get("families", {}), "kinds": summary.get("kinds", {}),
            "baseline": summary.get("baseline", {}), "splits": summary.get("splits", {}),
            "validation_seconds": summary.get("validation_seconds"), "experts": _read(path / "experts" /
                                                                                       "summary.json")}


def _describe(path: Path) -> str:
    rows = [inspect(p) for p in task_dirs(path)]
    lines = []
    for row in rows:
        base, splits = row["baseline"], row["splits"].get("counts", {})
        lines += [f"{row['package']}: {row['tasks']} tasks ({row['kept']} kept of {row['validated']} validated, "
                  f"{row['validation_seconds']} s of test runs); baseline {base.get('passing')} passing tests, "
                  f"{base.get('seconds')} s per run",
                  f"  splits: {', '.join(f'{k} {v}' for k, v in splits.items()) or '-'}",
                  f"  {'family':<22}{'kept':>6}{'tried':>7}{'yield':>8}"]
        for family, f in sorted(row["families"].items()):
            lines.append(f"  {family:<22}{f['kept']:>6}{f['tried']:>7}{f['yield']:>8.1%}")
        lines.append("  dropped: " + (", ".join(f"{k} {v}" for k, v in row["kinds"].items() if k != "kept") or "-"))
        if row["experts"]:
            e = row["experts"]
            lines.append(f"  experts: {e.get('kept')} trajectories kept of {e.get('tried')} tried")
    if len(rows) > 1:
        lines.append(f"total: {sum(r['tasks'] for r in rows)} tasks from {len(rows)} folders")
    return "\n".join(lines)


def cmd_tasks_inspect(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if args.json:
        print(json.dumps([inspect(p) for p in task_dirs(path)], indent=1))
    else:
        print(printable(_describe(path)))
    return 0


def _fraction(value: str) -> float:
    x = float(value)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"--heldout is a fraction in [0, 1], got {value}")
    return x


def add_commands(sub: argparse._SubParsersAction) -> None:
    tasks = sub.add_parser("tasks", help="executable SWE tasks made from real packages")
    tsub = tasks.add_subparsers(dest="tasks_command", required=True)
    make = tsub.add_parser("make", help="inject bugs into a package; keep those its tests catch (resumable)")
    make.add_argument("src", help="a PyPI sdist spec NAME==VERSION or a local package folder with a pytest suite")
    make.add_argument("-o", "--out", required=True, help="output folder; a rerun into it resumes")
    make.add_argument("--n", type=int, default=100, help="candidate bugs to sample and validate (default 100)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--workers", type=int, default=2, help="parallel test runs (default 2)")
    make.add_argument("--tests", nargs="*", default=(), help="test paths to run (default: the whole suite)")
    make.add_argument("--only", nargs="*", default=(), help="source files to mutate (default: all but tests)")
    make.add_argument("--timeout", type=float, default=None, help="seconds per candidate test run "
                      "(default: 10x the slowest clean run, at least 120)")
    make.add_argument("--heldout", type=_fraction, default=0.2, help="fraction of functions held out (default 0.2)")
    make.add_argument("--deps", nargs="*", default=(), help="extra test dependencies (pip requirement specs)")
    make.add_argument("--pythonpath", default=None, help="import root inside the source (default: src/ if any)")
    make.add_argument("--test-cmd", default=None, help="the pytest command (default 'pytest -rA')")
    make.add_argument("--experts", action=argparse.BooleanOptionalAction, default=True,
                      help="write a scripted expert trajectory per task, kept if it resolves (default on)")
    make.add_argument("--runtime", choices=RUNTIMES, default="local", help="where the tests and the experts run: "
                      "local (host, fast) or docker (the package's image, isolated); default local")
    make.add_argument("--quiet", action="store_true", help="no progress bars")
    make.set_defaults(func=cmd_tasks_make)
    ins = tsub.add_parser("inspect", help="counts of a `tasks make` folder (or a folder of them)")
    ins.add_argument("path")
    ins.add_argument("--json", action="store_true")
    ins.set_defaults(func=cmd_tasks_inspect)
