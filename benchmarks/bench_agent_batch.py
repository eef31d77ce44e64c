"""Agent-mode throughput: N episodes in lockstep against the sequential loop (one run, JSON + Markdown).

    python benchmarks/bench_agent_batch.py [--tasks 8] [--runtime docker] [--max-steps 4] [--max-new-tokens 96]
                                           [--out benchmarks/results/agent_batch.json]

Same model (SmolLM2-135M-Instruct, loaded once), same tasks (the first ``--tasks`` held-out toolz tasks of
``trajectories/swe-tasks/toolz-1.2.0``), same limits and prompt settings (those of
``configs/cpu-srl-swe-smollm2.yaml``), greedy decoding:

* ``sequential``: :func:`srl_swe.agent.loop.run_agent` task after task, one generation per step (batch 1), which
  is what ``eval swebench --mode agent`` did before (its workers overlapped execution, not generation);
* ``batched``: :func:`srl_swe.agent.batch.run_agents` with every task in one lockstep batch: one generate call
  per turn, the actions executed in parallel in their sandboxes.

Reported: wall seconds, tasks per hour, the ratio, the seconds spent inside generate calls, and whether every
episode's outputs are identical between the two (greedy). Sandbox images are built before the timing starts.
Grading is not part of it (it costs the same either way).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results  # noqa: E402

TASKS = REPO / "trajectories" / "swe-tasks" / "toolz-1.2.0"
TARGET_RATIO = 2.5


class Timed:
    """A generator wrapper that adds up the seconds spent in ``generate`` (and counts the calls). It passes on
    the tokenizer and the context, so the agents check their prompts against the model as they do unwrapped."""

    def __init__(self, inner: Any):
        self.inner, self.seconds, self.calls = inner, 0.0, 0
        self.tokenizer, self.name = getattr(inner, "tokenizer", None), inner.name

    @property
    def context_length(self) -> int | None:
        return getattr(self.inner, "context_length", None)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.generate(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--backend", choices=("transformers", "vllm"), default="transformers",
                    help="vllm: one engine serves both loops (it schedules its own batches, with prefix caching)")
    ap.add_argument("--tasks-dir", type=Path, default=TASKS)
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--runtime", default="docker")
    ap.add_argument("--max-steps", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "agent_batch.json")
    args = ap.parse_args(argv)

    from srl_swe.agent import ModelPolicy, run_agent
    from srl_swe.agent.batch import run_agents
    from srl_swe.models.generation import TransformersGenerator
    from srl_swe.models.loading import load_model_and_tokenizer
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.swebench.runtimes import task_runtime

    instances, errors = load_instances(args.tasks_dir, split="heldout", strict=False)
    instances = instances[: args.tasks]
    if errors or len(instances) < args.tasks:
        raise SystemExit(f"need {args.tasks} held-out tasks in {args.tasks_dir}: {errors or len(instances)}")
    if args.backend == "vllm":
        from srl_swe.models import make_generator

        engine = make_generator("vllm", args.model, dtype="float32")
        make_gen = lambda batch: engine  # noqa: E731
    else:
        model, tok = load_model_and_tokenizer(args.model, dtype="float32")
        make_gen = lambda batch: TransformersGenerator(model, tok, batch_size=batch, name=args.model,  # noqa: E731
                                                       progress=False)
    episode = {"max_steps": args.max_steps, "window": 2, "max_observation_chars": 1200, "require_think": False,
               "syntax": "xml", "max_seconds": None}
    open_rt = lambda inst: task_runtime(args.runtime, inst)  # noqa: E731
    with open_rt(instances[0]):  # builds the sandbox image (or the local checkout) outside the timing
        pass

    seq_gen = Timed(make_gen(1))
    start = time.perf_counter()
    sequential = []
    for inst in instances:
        with open_rt(inst) as rt:
            policy = ModelPolicy(seq_gen, max_new_tokens=args.max_new_tokens, name=args.model)
            sequential.append(run_agent(policy, inst, rt, **episode))
        print(f"sequential {len(sequential)}/{len(instances)} {time.perf_counter() - start:.0f}s", flush=True)
    seq_s = time.perf_counter() - start

    bat_gen = Timed(make_gen(len(instances)))
    start = time.perf_counter()
    batched = run_agents(bat_gen, instances, open_rt, max_new_tokens=args.max_new_tokens, model_name=args.model,
                         **episode)
    bat_s = time.perf_counter() - start
    failed = [repr(b) for b in batched if isinstance(b, BaseException)]
    if failed:
        raise SystemExit(f"batched episodes failed: {failed}")
    same = [[s.output for s in a.steps] == [s.output for s in b.steps] and a.patch == b.patch
            for a, b in zip(sequential, batched, strict=True)]
    steps = sum(len(r.steps) for r in sequential)
    res = {"machine": machine_info(), "model": args.model, "backend": args.backend, "runtime": args.runtime,
           "tasks": len(instances),
           "task_ids": [i.instance_id for i in instances], "limits": {**episode, "max_new_tokens": args.max_new_tokens},
           "steps": steps, "identical_episodes": sum(same), "identical": all(same),
           "sequential": {"seconds": round(seq_s, 1), "tasks_per_hour": round(3600 * len(instances) / seq_s, 1),
                          "generate_seconds": round(seq_gen.seconds, 1), "generate_calls": seq_gen.calls},
           "batched": {"seconds": round(bat_s, 1), "tasks_per_hour": round(3600 * len(instances) / bat_s, 1),
                       "generate_seconds": round(bat_gen.seconds, 1), "generate_calls": bat_gen.calls},
           "ratio": round(seq_s / bat_s, 2), "target_ratio": TARGET_RATIO}
    md = (f"# Agent-mode throughput, {len(instances)} held-out toolz tasks ({args.model}, {args.backend}, "
          f"{args.runtime} runtime, "
          f"greedy, at most {args.max_steps} steps of {args.max_new_tokens} tokens)\n\n"
          "| loop | wall s | tasks/hour | in generate s | generate calls |\n|---|---|---|---|---|\n"
          + "".join(f"| {k} | {res[k]['seconds']} | {res[k]['tasks_per_hour']} | {res[k]['generate_seconds']} | "
                    f"{res[k]['generate_calls']} |\n" for k in ("sequential", "batched"))
          + f"\nbatched / sequential: **{res['ratio']}x** tasks per hour (target >= {TARGET_RATIO}x); "
          f"identical greedy episodes: {sum(same)}/{len(same)}; {steps} steps in all.")
    write_results(args.out, res, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
