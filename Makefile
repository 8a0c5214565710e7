# GAD Stream — the two commands a user needs:
#   make setup   create .venv and install everything the default needs (CPU torch 2.13.0)
#   make run     synthetic data → train a GAD classifier → evaluate (about a minute on 2 cores)
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

# The main job, end to end on the synthetic benchmark: data → GAD training → evaluation.
run:
	$(BIN)/gad data synth --out data/synth
	$(BIN)/gad train data/synth --out runs/demo --kind gad --backbone tiny --long 32 --short 16 \
		--epochs 10 --batch-size 16 --lr 1e-3 --lora-rank 16 --lora-alpha 32
	$(BIN)/gad eval runs/demo --data data/synth --save-scores runs/demo/scores.npz

bench:
	$(BIN)/gad bench forward --backbone tiny --backbone smollm2-135m
