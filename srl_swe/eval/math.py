"""Math evaluation with the SRL paper's protocol.

Each problem is asked once greedily (temperature 0) and ``k`` times by sampling (temperature 1.0, top_p 1.0,
k = 32 by default). The answer is the content of the completion's last ``\\boxed{}`` (or ``\\fbox{}``); it is
checked against the reference with ``math_verify.verify``. Per benchmark: **greedy** accuracy, and **avg@k**,
the mean over problems of the fraction of the k samples that are correct. The table follows the paper's Table 1:
one row per model, greedy and avg@k per benchmark, and an average over every cell shown.

The prompt is Qwen2.5-Math's chain-of-thought prompt (system: reason step by step, answer in ``\\boxed{}``;
user: the problem), the one the Qwen2.5 family is evaluated with.

A problem whose prompt and ``max_new_tokens`` do not fit the model's context (:mod:`srl_swe.models.context`) is not
generated for: it stays in the denominator graded wrong (so accuracies stay comparable with the paper's), its
records carry the error saying by how much, and ``context_exceeded`` counts such problems per benchmark.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srl_swe.errors import TrajectoryFormatError
from srl_swe.models.context import fit_errors
from srl_swe.models.generation import Generator
from srl_swe.paths import shared_data_dir

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
MATH_VERIFY_TIMEOUT = 5  # seconds per parse / comparison (math-verify's own default)


@dataclass(frozen=True)
class MathProblem:
    id: str
    problem: str
    answer: str  # LaTeX, without \boxed{}


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str  # the column name in the table
    path: str  # relative to the shared data folder
    problem: str  # field holding the problem text
    answer: str  # "field:NAME", "boxed:NAME" (last \boxed{} of that field) or "gsm8k" (after ####)
    id_field: str | None = None  # None: the line number


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("amc23", "AMC23", "math/eval/amc23.jsonl", "problem", "field:answer", "id"),
        Benchmark("aime24", "AIME24", "math/eval/aime24.jsonl", "problem", "field:answer", "id"),
        Benchmark("aime25", "AIME25", "math/eval/aime25.jsonl", "problem", "field:answer"),
        Benchmark("minerva_math", "Minerva Math", "math/eval/minerva_math.jsonl", "problem", "boxed:solution", "idx"),
        Benchmark("math500", "MATH500", "math/eval/math500.jsonl", "problem", "field:answer", "unique_id"),
        Benchmark("gsm8k", "GSM8K", "math/gsm8k/test.jsonl", "question", "gsm8k"),
    )
}
DEFAULT_BENCHMARKS = ("amc23", "aime24", "aime25", "minerva_math", "math500", "gsm8k")


def _reference_answer(bench: Benchmark, row: dict[str, Any]) -> Any:
    kind, _, field = bench.answer.partition(":")
    if kind == "gsm8k":
        # "2,125" is GSM8K's way of writing 2125; the thousands separator would read as a tuple in LaTeX.
        return row["answer"].rpartition("####")[2].strip().replace(",", "")
    value = row.get(field)
    if kind == "boxed":
        return extract_boxed(value) if isinstance(value, str) else None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # AMC23 stores 27.0; the answer is the integer 27
    return value


def load_benchmark(name: str, data_dir: Path | None = None, limit: int | None = None) -> list[MathProblem]:
    """The first ``limit`` problems (all when None) of a benchmark, as ``(id, problem, answer)``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown math benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    bench = BENCHMARKS[name]
    path = Path(data_dir if data_dir is not None else shared_data_dir()) / bench.path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {name} data not found (set SRL_SWE_DATA or pass data_dir)")
    problems: list[MathProblem] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if limit is not None and len(problems) >= limit:
                break
            if not line.strip():
                continue
            row = json.loads(line)
            problem, answer = row.get(bench.problem), _reference_answer(bench, row)
            if not isinstance(problem, str) or answer is None:
                raise TrajectoryFormatError(str(path), f"{bench.problem!r} text and a reference answer", lineno)
            rid = row.get(bench.id_field) if bench.id_field else None
            problems.append(MathProblem(str(lineno - 1 if rid is None else rid), problem, str(answer).strip()))
    return problems


def build_messages(problem: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": problem}]


_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (braces balanced, ``\\{`` ``\\}`` not counted).

    None when there is no box, it is empty, or the last one is never closed (a truncated generation has not
    given its final answer, so an earlier box is not taken instead)."""
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    start = i = matches[-1].end()
    depth = 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i].strip() or None
        i += 1
    return None


def _timeout() -> int | None:
    # math-verify times out with signal.alarm, which only the main thread may arm (elsewhere it raises
    # ValueError). Off the main thread we run without a timeout rather than fail every check.
    return MATH_VERIFY_TIMEOUT if threading.current_thread() is threading.main_thread() else None


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a math-verify function; any error or timeout means "no result" (graded wrong), never a crash."""
    from math_verify.errors import TimeoutException  # a BaseException: `except Exception` misses it

    try:
        return fn(*args, **kwargs)
    except (Exception, TimeoutException) as e:
        log.debug("math-verify %s failed: %r", getattr(fn, "__name__", fn), e)
        return None


def parse_answer(latex: str) -> list:
    """math-verify's parse of a bare answer, given to it as ``\\boxed{latex}`` (what it extracts best)."""
    from math_verify import parse

    return _guarded(parse, "\\boxed{" + latex + "}", parsing_timeout=_timeout()) or []


def is_correct(gold: list, predicted: str | None) -> bool:
    """``predicted`` (a box's content, or None) against a parsed reference answer."""
    from math_verify import verify

    if predicted is None or not gold:
        return False
    pred = parse_answer(predicted)
    return bool(pred) and bool(_guarded(verify, gold, pred, timeout_seconds=_timeout()))


def evaluate_benchmark(generator: Generator, problems: list[MathProblem], *, k: int, temperature: float,
                       max_new_tokens: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Greedy (n=1, temperature 0) and k samples per problem; metrics and one record per completion."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    prompts = [build_messages(p.problem) for p in problems]
    errors = fit_errors(generator, prompts, max_new_tokens, names=[f"problem {p.id}" for p in problems],
                        advice="graded wrong (lower max_new_tokens, or use a model with a longer context)")
    fit = [i for i, e in enumerate(errors) if e is None]
    modes = {"greedy": (1, 0.0), **({"sample": (k, temperature)} if k > 0 else {})}
    runs: dict[str, list[Any]] = {}
    for mode, (n, temp) in modes.items():
        got = (generator.generate([prompts[i] for i in fit], n=n, temperature=temp, max_new_tokens=max_new_tokens,
                                  seed=seed) if fit else [])
        runs[mode] = [None] * len(problems)
        for i, completions in zip(fit, got, strict=True):
            runs[mode][i] = completions
    t1 = time.perf_counter()
    records: list[dict[str, Any]] = []
    correct: dict[str, list[int]] = {mode: [] for mode in runs}
    boxed = dict.fromkeys(runs, 0)
    for i, p in enumerate(tqdm(problems, desc="grade", unit="problem")):
        if errors[i] is not None:  # not generated for: graded wrong, with the reason
            log.warning("%s", errors[i])
            for mode in runs:
                correct[mode].append(0)
                records.append({"id": p.id, "mode": mode, "sample": None, "answer": p.answer, "extracted": None,
                                "correct": False, "completion": None, "error": str(errors[i])})
            continue
        gold = parse_answer(p.answer)
        if not gold:  # every shipped reference parses (tested); a new data file might not
            log.warning("%s: math-verify cannot parse the reference answer %r; graded wrong", p.id, p.answer)
        for mode, completions in runs.items():
            if len(completions[i]) != (1 if mode == "greedy" else k):
                raise ValueError(f"generator returned {len(completions[i])} {mode} completions for problem {p.id}")
            hits = 0
            for j, text in enumerate(completions[i]):
                extracted = extract_boxed(text)
                ok = is_correct(gold, extracted)
                hits += ok
                boxed[mode] += extracted is not None
                records.append({"id": p.id, "mode": mode, "sample": j, "answer": p.answer, "extracted": extracted,
                                "correct": ok, "completion": text})
            correct[mode].append(hits)
    n = len(problems)
    metrics: dict[str, Any] = {
        "n_problems": n,
        "greedy": sum(correct["greedy"]) / n if n else 0.0,
        "greedy_correct": sum(correct["greedy"]),
        "greedy_boxed": boxed["greedy"],
        "avg_at_k": None,
        "k": k,
        "context_exceeded": len(problems) - len(fit),
    }
    if k > 0:
        metrics.update(avg_at_k=sum(c / k for c in correct["sample"]) / n if n else 0.0,
                       sample_correct=sum(correct["sample"]), sample_boxed=boxed["sample"])
    metrics.update(generate_seconds=round(t1 - t0, 3), grade_seconds=round(time.perf_counter() - t1, 3))
    return metrics, records


def run_math_eval(generator: Generator, benchmarks: list[str], *, k: int, temperature: float, max_new_tokens: int,
                  limit: int | None, out_dir: Path, seed: int, data_dir: Path | None,
                  model: str | None = None) -> dict:
    """Evaluate on each benchmark; write results.json, samples.jsonl and results.md to ``out_dir``.

    ``k = 0`` skips sampling (greedy only). Returns what results.json holds."""
    if k < 0 or temperature <= 0 < k:
        raise ValueError(f"avg@k needs k >= 0 and a sampling temperature > 0 (k={k}, temperature={temperature})")
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown or not benchmarks:
        raise ValueError(f"unknown math benchmarks {unknown}; known: {', '.join(BENCHMARKS)}")
    loaded = {b: load_benchmark(b, data_dir, limit) for b in benchmarks}  # fail on missing data before generating
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "model": model or getattr(generator, "name", type(generator).__name__),
        "settings": {"benchmarks": list(benchmarks), "k": k, "temperature": temperature, "top_p": 1.0,
                     "max_new_tokens": max_new_tokens, "limit": limit, "seed": seed, "system_prompt": SYSTEM_PROMPT,
                     "data_dir": str(data_dir if data_dir is not None else shared_data_dir())},
        "benchmarks": {},
    }
    with (out_dir / "samples.jsonl").open("w", encoding="utf-8") as f:
        for name, problems in loaded.items():
            log.info("%s: %d problems", name, len(problems))
            metrics, records = evaluate_benchmark(generator, problems, k=k, temperature=temperature,
                                                  max_new_tokens=max_new_tokens, seed=seed)
            results["benchmarks"][name] = metrics
            for r in records:
                f.write(json.dumps({"benchmark": name, **r}, ensure_ascii=False) + "\n")
    results["average"] = _average(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out_dir / "results.md").write_text(results_table([results]), encoding="utf-8")
    return results


def _average(results: dict) -> float | None:
    cells = [v for m in results["benchmarks"].values() for v in (m["greedy"], m["avg_at_k"]) if v is not None]
    return sum(cells) / len(cells) if cells else None


def results_table(results: list[dict]) -> str:
    """Markdown table in the paper's layout (percentages): one row per results.json, columns of the first."""
    first = results[0]
    names, k = first["settings"]["benchmarks"], first["settings"]["k"]
    header = ["Model"]
    for name in names:
        header += [f"{BENCHMARKS[name].title} greedy"] + ([f"{BENCHMARKS[name].title} avg@{k}"] if k else [])
    lines = ["| " + " | ".join([*header, "Average"]) + " |", "|" + "---|" + "---:|" * (len(header))]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    for res in results:
        row = [res["model"]]
        for name in names:
            m = res["benchmarks"].get(name, {})
            row += [pct(m.get("greedy"))] + ([pct(m.get("avg_at_k"))] if k else [])
        lines.append("| " + " | ".join([*row, pct(res.get("average"))]) + " |")
    return "\n".join(lines) + "\n"


def default_out_dir(model: str) -> Path:
    """``runs/eval/math/MODEL``, the model spec made a safe folder name."""
    return Path("runs/eval/math") / re.sub(r"[^\w.-]+", "_", model.strip("/"))
