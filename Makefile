# Everything runs in a local virtualenv so a fresh machine needs only python3 (>= 3.10) and make.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= 2.13.0

.PHONY: install demo test lint bench clean

# torch is pinned to the CPU build first: an unpinned torch pulls a multi-GB CUDA build.
$(BIN)/.installed: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -e '.[dev,train]'
	touch $@

install: $(BIN)/.installed

# The main job on the bundled default data: inspect it, build the step dataset, run SRL-SWE-v0 episodes.
demo: install
	$(BIN)/srl-swe data inspect trajectories
	$(BIN)/srl-swe data build trajectories/swe -o runs/demo/steps --window 2
	$(BIN)/srl-swe env run --policy replay --out runs/demo/replay.jsonl
	$(BIN)/srl-swe env run --policy noisy --out runs/demo/noisy.jsonl
	$(BIN)/srl-swe env run --env SRL-Math-v0 --policy noisy --out runs/demo/math-noisy.jsonl

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
