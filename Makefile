# GAD Stream — the two commands a user needs:
#   make setup   create .venv and install everything the default needs (CPU torch 2.13.0)
#   make test    lint + the whole test suite (what CI runs)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export GAD_CACHE_DIR ?= $(CURDIR)/.cache/gad

.PHONY: setup test lint run bench

setup:
	bash scripts/setup.sh "$(VENV)" "$(PY)"

lint:
	$(BIN)/ruff check gad model training service tests
	$(BIN)/ruff format --check gad model training service tests

test: lint
	$(BIN)/pytest -q

run:
	$(BIN)/gad bench forward --backbone tiny --backbone smollm2-135m

bench: run
