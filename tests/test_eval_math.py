"""`srl_swe.eval.math`: answer extraction, math-verify grading on the real benchmark answers, the metrics of
the paper's protocol (greedy, avg@k) with a scripted generator, the output files, and a tiny real model."""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import pytest

from srl_swe.cli import build_parser
from srl_swe.cli.evaluate import cmd_eval_math
from srl_swe.eval import math as ev
from srl_swe.eval.math import BENCHMARKS, extract_boxed
from srl_swe.models import GENERATORS, make_generator
from srl_swe.models import generation as gen

SIZES = {"amc23": 40, "aime24": 30, "aime25": 30, "minerva_math": 272, "math500": 500, "gsm8k": 1319}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{\\sqrt{\\frac{a}{b^{2}}}}", "\\sqrt{\\frac{a}{b^{2}}}"),  # nested braces
        ("first \\boxed{1}, then \\boxed{2}", "2"),  # the last box is the answer
        ("\\boxed{1} and finally \\fbox{7}", "7"),
        ("\\boxed {42}", "42"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are not grouping
        ("\\boxed{\\left\\{ x \\right.}", "\\left\\{ x \\right."),  # an unbalanced escaped brace
        ("\\boxed{\\boxed{3}}", "3"),
        ("the answer is 5", None),  # no box
        ("\\boxed{}", None),  # empty
        ("\\boxed{4} ... \\boxed{\\frac{1}{", None),  # truncated last box: no final answer
        ("", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.shared_data
def test_load_benchmarks(shared_data: Path):
    for name, size in SIZES.items():
        problems = ev.load_benchmark(name, shared_data)
        assert len(problems) == size and len({p.id for p in problems}) == size, name
        assert all(p.problem.strip() and p.answer for p in problems), name
    assert ev.load_benchmark("amc23", shared_data, limit=1)[0].answer == "27"  # stored as the float 27.0
    assert [p.answer for p in ev.load_benchmark("gsm8k", shared_data, limit=2)] == ["18", "3"]
    assert ev.load_benchmark("minerva_math", shared_data, limit=1)[0].answer == "1.6"  # from the solution's box
    assert len(ev.load_benchmark("math500", shared_data, limit=7)) == 7
    with pytest.raises(ValueError, match="unknown math benchmark"):
        ev.load_benchmark("nope", shared_data)
    with pytest.raises(FileNotFoundError, match="SRL_SWE_DATA"):
        ev.load_benchmark("gsm8k", shared_data / "missing")


@pytest.mark.shared_data
def test_every_reference_answer_verifies_against_itself(shared_data: Path):
    """All 2,191 problems of the six benchmarks: the reference answer, boxed in a completion, is graded correct.

    math-verify cannot turn 5 Minerva answers into sympy (e.g. ``np.arcsin(10/13)``); those still match
    themselves through its string comparison, so only a verbatim answer is accepted for them."""
    pytest.importorskip("math_verify")
    start, string_only = time.perf_counter(), []
    for name in SIZES:
        for p in ev.load_benchmark(name, shared_data):
            gold = ev.parse_answer(p.answer)
            assert gold, f"{name} {p.id}: math-verify cannot parse {p.answer!r}"
            if all(isinstance(g, str) for g in gold):
                string_only.append((name, p.answer))
            completion = f"Step 1 ... so the result follows.\n\nThe final answer is $\\boxed{{{p.answer}}}$."
            assert ev.is_correct(gold, extract_boxed(completion)), f"{name} {p.id}: {p.answer!r}"
    assert {name for name, _ in string_only} <= {"minerva_math"} and len(string_only) <= 5, string_only
    # Real solutions as completions: MATH500's reference solutions box the same answer in other words.
    for p, row in zip(ev.load_benchmark("math500", shared_data), _rows(shared_data / BENCHMARKS["math500"].path),
                      strict=True):
        assert ev.is_correct(ev.parse_answer(p.answer), extract_boxed(row["solution"])), p.id
    assert time.perf_counter() - start < 60  # about 6 s on 2 CPU cores


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.shared_data
def test_wrong_answers_rejected_equivalent_forms_accepted(shared_data: Path):
    pytest.importorskip("math_verify")
    for name in ("amc23", "aime24", "aime25", "gsm8k"):  # integer answers: off by one is wrong
        for p in ev.load_benchmark(name, shared_data, limit=5):
            gold = ev.parse_answer(p.answer)
            assert not ev.is_correct(gold, str(int(p.answer) + 1)), (name, p.id)
            assert ev.is_correct(gold, f"{p.answer}.0") and ev.is_correct(gold, f"\\frac{{{2 * int(p.answer)}}}{{2}}")
    polar = ev.parse_answer(ev.load_benchmark("math500", shared_data, limit=1)[0].answer)
    assert ev.is_correct(polar, "(3, \\pi/2)") and not ev.is_correct(polar, "\\left( 3, \\frac{\\pi}{3} \\right)")
    assert not ev.is_correct(polar, None) and not ev.is_correct([], "3")
    minerva = ev.parse_answer(ev.load_benchmark("minerva_math", shared_data, limit=1)[0].answer)  # 1.6
    assert ev.is_correct(minerva, "\\frac{8}{5}") and not ev.is_correct(minerva, "1.7")


def test_grading_errors_and_timeouts_count_as_wrong(monkeypatch):
    math_verify = pytest.importorskip("math_verify")
    from math_verify.errors import TimeoutException

    gold = ev.parse_answer("18")
    # A real timeout: math-verify's own signal alarm interrupts a comparison that hangs (main thread).
    monkeypatch.setattr(ev, "MATH_VERIFY_TIMEOUT", 1)
    monkeypatch.setattr(math_verify.grader, "sympy_expr_eq", lambda *a, **k: time.sleep(5))
    start = time.perf_counter()
    # 36/2 equals 18 only symbolically (its string differs), so once the comparison times out it is wrong.
    assert ev.is_correct(gold, "\\frac{36}{2}") is False
    assert time.perf_counter() - start < 3
    monkeypatch.undo()
    for exc in (RuntimeError("boom"), TimeoutException("slow"), RecursionError()):
        def raiser(*a, exc=exc, **k):
            raise exc
        with monkeypatch.context() as m:
            m.setattr(math_verify, "verify", raiser)
            assert ev.is_correct(gold, "18") is False
        with monkeypatch.context() as m:
            m.setattr(math_verify, "parse", raiser)
            assert ev.parse_answer("18") == [] and ev.is_correct(gold, "18") is False
    assert ev.is_correct(gold, "18") is True


def test_grading_off_the_main_thread():
    """signal.alarm only works on the main thread; elsewhere grading runs without a timeout instead of failing."""
    pytest.importorskip("math_verify")
    out: list[bool] = []
    worker = threading.Thread(target=lambda: out.extend([ev.is_correct(ev.parse_answer("\\frac{1}{2}"), "0.5"),
                                                         ev.is_correct(ev.parse_answer("2"), "3")]))
    worker.start()
    worker.join(60)
    assert out == [True, False]


class OraclePolicy:
    """A deterministic Generator: problem i answers correctly greedily iff i is even, and in samples j < i % (k+1).

    Correct answers are written in another form (2a/2) so math-verify, not string equality, accepts them; wrong
    ones alternate between an off-by-one box and no box at all."""

    name = "oracle"

    def __init__(self, problems: list[ev.MathProblem]):
        self.index = {p.problem: (i, p.answer) for i, p in enumerate(problems)}
        self.calls: list[tuple[int, float]] = []

    def generate(self, prompts, *, n, temperature, max_new_tokens, seed):
        gen.check_decoding(n, temperature)
        self.calls.append((n, temperature))
        out = []
        for messages in prompts:
            assert messages[0] == {"role": "system", "content": ev.SYSTEM_PROMPT} and messages[1]["role"] == "user"
            i, answer = self.index[messages[1]["content"]]
            right = [i % 2 == 0] if temperature == 0 else [j < i % (n + 1) for j in range(n)]
            out.append([f"Reasoning.\n\\boxed{{\\frac{{{2 * int(answer)}}}{{2}}}}" if ok
                        else (f"So \\boxed{{{int(answer) + 1}}}" if j % 2 else "I am not sure.")
                        for j, ok in enumerate(right)])
        return out


@pytest.mark.shared_data
def test_metrics_and_outputs_with_an_oracle_policy(shared_data: Path, tmp_path: Path):
    pytest.importorskip("math_verify")
    k, limit, names = 4, 7, ["aime24", "gsm8k"]
    problems = [p for b in names for p in ev.load_benchmark(b, shared_data, limit)]
    policy = OraclePolicy(problems)
    assert isinstance(policy, gen.Generator)
    res = ev.run_math_eval(policy, names, k=k, temperature=1.0, max_new_tokens=64, limit=limit,
                           out_dir=tmp_path / "out", seed=3, data_dir=shared_data)
    assert policy.calls == [(1, 0.0), (k, 1.0)] * 2
    offset = {"aime24": 0, "gsm8k": limit}  # the oracle numbers problems across both benchmarks
    for name in names:
        idx = range(offset[name], offset[name] + limit)
        m = res["benchmarks"][name]
        assert m["greedy"] == pytest.approx(sum(i % 2 == 0 for i in idx) / limit)
        assert m["avg_at_k"] == pytest.approx(sum((i % (k + 1)) / k for i in idx) / limit)
        assert m["greedy_correct"] == sum(i % 2 == 0 for i in idx) and m["n_problems"] == limit and m["k"] == k
    assert res["benchmarks"]["aime24"]["greedy"] == pytest.approx(4 / 7)
    assert res["benchmarks"]["aime24"]["avg_at_k"] == pytest.approx((0 + 1 + 2 + 3 + 4 + 0 + 1) / 4 / 7)
    cells = [res["benchmarks"][b][key] for b in names for key in ("greedy", "avg_at_k")]
    assert res["average"] == pytest.approx(sum(cells) / 4)

    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text()) == res
    assert res["model"] == "oracle" and res["settings"]["k"] == k and res["settings"]["seed"] == 3
    samples = _rows(out / "samples.jsonl")
    assert len(samples) == len(names) * limit * (1 + k)
    assert sum(s["correct"] for s in samples) == sum(
        m["greedy_correct"] + m["sample_correct"] for m in res["benchmarks"].values())
    assert {s["mode"] for s in samples} == {"greedy", "sample"}
    assert all(s["correct"] == (s["extracted"] is not None and s["extracted"].startswith("\\frac")) for s in samples)
    md = (out / "results.md").read_text().splitlines()
    assert md[0] == "| Model | AIME24 greedy | AIME24 avg@4 | GSM8K greedy | GSM8K avg@4 | Average |"
    assert md[2].startswith("| oracle | 57.1 | 39.3 |")


@pytest.mark.shared_data
def test_greedy_only_table_and_bad_settings(shared_data: Path, tmp_path: Path):
    pytest.importorskip("math_verify")
    problems = ev.load_benchmark("amc23", shared_data, 3)
    res = ev.run_math_eval(OraclePolicy(problems), ["amc23"], k=0, temperature=1.0, max_new_tokens=8, limit=3,
                           out_dir=tmp_path, seed=0, data_dir=shared_data, model="m1")
    assert res["benchmarks"]["amc23"]["avg_at_k"] is None and res["average"] == pytest.approx(2 / 3)
    other = {**res, "model": "m2", "benchmarks": {"amc23": {"greedy": 0.25, "avg_at_k": None}}, "average": 0.25}
    assert ev.results_table([res, other]).splitlines() == [
        "| Model | AMC23 greedy | Average |", "|---|---:|---:|", "| m1 | 66.7 | 66.7 |", "| m2 | 25.0 | 25.0 |"]
    for kwargs, match in [({"benchmarks": ["amc23", "nope"]}, "unknown"), ({"temperature": 0.0}, "temperature")]:
        args = {"benchmarks": ["amc23"], "k": 2, "temperature": 1.0, **kwargs}
        with pytest.raises(ValueError, match=match):
            ev.run_math_eval(OraclePolicy(problems), **args, max_new_tokens=8, limit=1, out_dir=tmp_path, seed=0,
                             data_dir=shared_data)
    with pytest.raises(ValueError, match="greedy"):
        gen.check_decoding(2, 0.0)


class ScriptedBackend(OraclePolicy):
    """A backend outside the registry, named on the command line by its dotted path."""

    problems: tuple[ev.MathProblem, ...] = ()

    @classmethod
    def from_spec(cls, spec, **kwargs):
        return cls(cls.problems)


@pytest.mark.shared_data
def test_cli_helpers(shared_data: Path, tmp_path: Path, monkeypatch, capsys):
    pytest.importorskip("math_verify")
    problems = (*ev.load_benchmark("gsm8k", shared_data, 2), *ev.load_benchmark("aime25", shared_data, 2))
    monkeypatch.setattr(ScriptedBackend, "problems", problems)
    def parse(argv: list[str]) -> argparse.Namespace:
        return build_parser().parse_args(["eval", "math", *argv])

    defaults = parse(["--model", "m"])
    assert defaults.benchmarks == list(ev.DEFAULT_BENCHMARKS) and defaults.k == 32 and defaults.temperature == 1.0
    with pytest.raises(SystemExit):
        parse(["--model", "m", "--benchmarks", "gsm8k,nope"])
    with pytest.raises(SystemExit):
        parse(["--model", "m", "--backend", "vlm"])  # not registered, not a dotted path
    assert "unknown generation backend 'vlm' (did you mean 'vllm'?)" in capsys.readouterr().err
    args = parse(["--model", "org/tiny", "--benchmarks", "gsm8k,aime25", "--k", "2", "--limit", "2",
                  "--backend", f"{__name__}.ScriptedBackend", "--data-dir", str(shared_data), "--out", str(tmp_path)])
    assert cmd_eval_math(args) == 0
    assert "| org/tiny | 50.0 | 25.0 | 50.0 | 50.0 | 43.8 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["model"] == "org/tiny"
    with pytest.raises(ValueError, match="unknown generation backend"):
        make_generator("nope", "m")
    assert GENERATORS.names() == ["transformers", "vllm"]  # what --backend lists
    assert GENERATORS.get("transformers") is gen.TransformersGenerator


@pytest.mark.shared_data
@pytest.mark.slow
def test_end_to_end_with_a_tiny_real_model(shared_data: Path, tmp_path: Path):
    pytest.importorskip("torch")
    pytest.importorskip("math_verify")
    tiny = pytest.importorskip("srl_swe.models.tiny", reason="srl_swe.models.tiny (make_tiny_qwen2) not written yet")
    problems = ev.load_benchmark("gsm8k", shared_data, 3)
    # A tokenizer trained on these few texts only: the default corpus takes seconds and adds nothing here.
    path = tiny.make_tiny_qwen2(tmp_path / "model", texts=[ev.SYSTEM_PROMPT, *(p.problem for p in problems)])
    generator = gen.TransformersGenerator.from_spec(str(path), batch_size=4, progress=False)  # via models.loading
    assert isinstance(generator, gen.Generator)
    prompts = [ev.build_messages(p.problem) for p in problems[:2]]
    first = generator.generate(prompts, n=3, temperature=1.0, max_new_tokens=8, seed=0)
    assert first == generator.generate(prompts, n=3, temperature=1.0, max_new_tokens=8, seed=0)  # seeded
    assert [len(c) for c in first] == [3, 3] and all(isinstance(t, str) for c in first for t in c)
    greedy = generator.generate(prompts, n=1, temperature=0.0, max_new_tokens=8, seed=0)
    alone = [generator.generate([p], n=1, temperature=0.0, max_new_tokens=8, seed=1)[0] for p in prompts]
    assert greedy == alone  # left padding does not change greedy outputs
    res = ev.run_math_eval(generator, ["gsm8k"], k=2, temperature=1.0, max_new_tokens=16, limit=3,
                           out_dir=tmp_path / "eval", seed=0, data_dir=shared_data)
    m = res["benchmarks"]["gsm8k"]
    assert m["n_problems"] == 3 and 0 <= m["greedy"] <= 1 and 0 <= m["avg_at_k"] <= 1
    assert {f.name for f in (tmp_path / "eval").iterdir()} == {"results.json", "results.md", "samples.jsonl"}
    assert len(_rows(tmp_path / "eval" / "samples.jsonl")) == 3 * (1 + 2)
