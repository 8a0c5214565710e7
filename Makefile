# GAD Stream — the commands a user needs:
#   make setup   .venv with everything (CPU torch 2.13.0) + the two demo models (pose ~4 min,
#                render ~2 min on 2 idle cores, up to 8 and 12 loaded; cached, built once)
#   make run     serve the pose demo: http://127.0.0.1:8000 (live page: "Use camera"), WS
#                /v1/streams/ID; `.venv/bin/gad serve --demo render` serves the render demo
#   make test    lint (ruff, import rules, mypy) + the whole test suite on 3 workers (CI)
#   make test-fast  the fast core only (pytest -m "not integration"): under a minute
#   make test-stack the Docker images built and `docker compose up` exercised on a private
#                engine (root; tests/stack/; docs/deploy.md "The stack test")
#   make synth   the training demo: synthetic features → train a GAD classifier → evaluate
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export GAD_CACHE_DIR ?= $(CURDIR)/.cache/gad

.PHONY: setup test test-fast test-stack lint run synth bench audit

setup:
	bash scripts/setup.sh "$(VENV)" "$(PY)"

lint:
	$(BIN)/ruff check gad runtime model training service bench tests scripts
	$(BIN)/ruff format --check gad runtime model training service bench tests scripts
	$(BIN)/lint-imports --no-cache  # the import rules: [tool.importlinter] in pyproject.toml
	$(BIN)/mypy runtime service  # the serving core's types: [tool.mypy] in pyproject.toml

# Three pytest-xdist workers, a test file at a time (tests/conftest.py gives each its share
# of the cores for torch's threads and starts the slow files first): many integration tests
# wait on servers and real time, so three keep two cores busy. docs/testing.md.
TEST_WORKERS ?= 3
test: lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

# No servers, Redis faults, docker/k8s, benchmarks, training runs or real backbones: the
# `integration` marker (tests/conftest.py says what gets it).
test-fast:
	$(BIN)/pytest -q -m "not integration"

# The images built (both builders) and the compose stack run and probed on a private Docker
# engine started as root and removed after (tests/stack/test_stack.py). Skips where no
# engine can run; GAD_STACK_REQUIRED=1 (.ci/run) makes that a failure.
test-stack:
	GAD_STACK=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/stack

# The product: the pose demo model (built by setup; real body keypoints from a camera)
# behind the streaming service.
run:
	$(BIN)/gad serve

# Training end to end on the synthetic benchmark: data → GAD training → evaluation.
synth:
	$(BIN)/gad data synth --out data/synth
	$(BIN)/gad train data/synth --out runs/synth --kind gad --backbone tiny --long 32 --short 16 \
		--epochs 10 --batch-size 16 --lr 1e-3 --lora-rank 16 --lora-alpha 32
	$(BIN)/gad eval runs/synth --data data/synth --save-scores runs/synth/scores.npz

bench:
	$(BIN)/gad bench forward --backbone tiny --backbone smollm2-135m
	$(BIN)/gad bench engine --backbone tiny --backbone smollm2-135m --threads 2
	$(BIN)/gad bench encoder --threads 2
	$(BIN)/gad bench service --redis-url redis://127.0.0.1:6379/0

# Known vulnerabilities in the installed dependencies (needs PyPI's JSON API or osv.dev).
audit:
	$(BIN)/pip-audit --progress-spinner off --skip-editable
