"""Several agent episodes in lockstep: one batched generation per turn, the actions executed in parallel.

    results = run_agents(generator, instances, lambda inst: task_runtime("docker", inst), max_steps=30)

:func:`srl_swe.agent.loop.run_agent` runs one episode, so N tasks cost N times one, generation included. Here
every turn takes the prompt of each episode still running, asks the generator for all of them in one call
(transformers pads them into one ``model.generate`` batch, vLLM schedules them together), then runs the
resulting tool calls in a thread pool, each in its own sandbox. An episode that ends leaves the batch (its
sandbox is closed at once and ``on_result`` is called, so a caller can record it before the others finish). An
episode whose prompt no longer fits the model's context is left out of the turn's call and ends with
``context_exceeded`` (:func:`srl_swe.models.context.generate_fitting`); the others go on.

The episodes are the same :class:`~srl_swe.agent.episode.Episode` state machine with the same prompts, limits
and autosubmission as the sequential loop, so with greedy decoding the outputs are the sequential loop's,
as far as the backend's batched greedy decoding equals its unbatched one (exact for the models tested in
``tests/test_agent_batch.py``). Sampling draws from one seed per turn (``seed + turn``) for the whole batch,
so sampled episodes are reproducible but not the ones the sequential loop would draw.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from srl_swe.agent.episode import AgentResult, Episode
from srl_swe.agent.policies import CONTEXT_ADVICE
from srl_swe.errors import ContextLengthError
from srl_swe.models.context import generate_fitting
from srl_swe.runtime.base import Runtime

#: What a caller hears when an episode ends: the instance and its result, or the instance and the exception
#: that stopped it before it could have one (its sandbox could not be created, for example).
OnResult = Callable[[Any, "AgentResult | BaseException"], None]


class _Slot:
    """One episode of the batch with the sandbox it owns."""

    def __init__(self, instance: Any):
        self.instance, self.stack = instance, ExitStack()
        self.episode: Episode | None = None
        self.outcome: AgentResult | BaseException | None = None

    def close(self) -> None:
        try:
            self.stack.close()
        except Exception as exc:  # a sandbox that fails to close must not take the result with it
            if isinstance(self.outcome, AgentResult) and self.outcome.error is None:
                self.outcome.error = f"closing the sandbox failed: {exc}"


def _token_counter(generator: Any) -> Callable[[str], int] | None:
    tok = getattr(generator, "tokenizer", None)
    if tok is None:
        return None
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def run_agents(
    generator: Any,
    instances: Sequence[Any],
    open_runtime: Callable[[Any], Runtime],
    *,
    temperature: float = 0.0,
    max_new_tokens: int = 1024,
    seed: int = 0,
    concurrency: int | None = None,
    workers: int | None = None,
    max_steps: int = 50,
    max_tokens: int | None = None,
    max_seconds: float | None = None,
    syntax: str = "xml",
    model_name: str | None = None,
    on_result: OnResult | None = None,
    **episode_options: Any,
) -> list[AgentResult | BaseException]:
    """Run one episode per instance, all at once; returns each instance's result (or the exception that kept
    it from running), in the order of ``instances``.

    ``generator`` is a :class:`~srl_swe.models.generation.Generator`; ``open_runtime(instance)`` returns a fresh
    runtime, closed here when the episode ends. At most ``concurrency`` episodes run at once (default: all);
    when one ends, the next instance takes its place in the following turn's batch. ``workers`` threads create
    sandboxes and execute actions (default: one per running episode). The limits and ``episode_options`` are
    :func:`~srl_swe.agent.loop.run_agent`'s.
    """
    count = _token_counter(generator)
    if max_tokens is not None and count is None:
        raise ValueError("max_tokens needs a generator with a tokenizer; use max_steps or max_seconds")
    name = model_name or getattr(generator, "name", None) or type(generator).__name__
    slots = [_Slot(inst) for inst in instances]
    if not slots:
        return []
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    capacity = concurrency or len(slots)

    def finish(slot: _Slot, outcome: AgentResult | BaseException) -> None:
        slot.outcome = outcome
        slot.close()
        if on_result is not None:
            on_result(slot.instance, slot.outcome)

    def start(slot: _Slot) -> None:
        try:
            runtime = slot.stack.enter_context(open_runtime(slot.instance))
            slot.episode = Episode(slot.instance.instance_id, slot.instance.problem_statement, runtime,
                                   syntax=syntax, max_steps=max_steps, max_tokens=max_tokens,
                                   max_seconds=max_seconds, model_name=name, **episode_options)
        except Exception as exc:  # this task cannot run; the others still do
            finish(slot, exc)

    def act(pair: tuple[_Slot, list[str] | ContextLengthError]) -> None:
        slot, out = pair
        try:
            if isinstance(out, ContextLengthError):  # this episode's prompt outgrew the context; the others go on
                slot.episode.exceed_context(out)
            else:
                slot.episode.step(out[0], tokens=count(out[0]) if count else None)
        except Exception as exc:
            finish(slot, exc)

    pending, running = deque(slots), []
    with ThreadPoolExecutor(max_workers=max(1, workers or capacity)) as pool:
        try:
            turn = 0
            while True:
                for slot in running:
                    if slot.episode.check_limits():
                        finish(slot, slot.episode.result(count_tokens=count is not None))
                running = [s for s in running if s.outcome is None]
                while pending and len(running) < capacity:  # refill the batch; a failed start frees its place
                    new = [pending.popleft() for _ in range(min(capacity - len(running), len(pending)))]
                    list(pool.map(start, new))
                    running += [s for s in new if s.outcome is None]
                if not running:
                    break
                prompts = [s.episode.prompt() for s in running]
                outputs = generate_fitting(generator, prompts, n=1, temperature=temperature,
                                           max_new_tokens=max_new_tokens, seed=seed + turn, advice=CONTEXT_ADVICE)
                list(pool.map(act, list(zip(running, outputs, strict=True))))
                running = [s for s in running if s.outcome is None]
                turn += 1
        finally:  # an interrupt or a generator failure still closes every sandbox
            for slot in slots:
                if slot.outcome is None:
                    slot.close()
    return [s.outcome for s in slots]
