#!/usr/bin/env bash
# The engine benchmark on a GPU host: a Llama-3.2-1B-shaped backbone (random weights, the
# published architecture) in bf16 on CUDA — one-pass [CLS] head vs generative decoding with
# a KV cache, batch 1 and 32, both sides with LoRA as adapters and both sides with LoRA
# merged (every ratio like with like). Needs a CUDA build of torch in the environment
# (install it before `make setup`, which keeps it). Writes the table to ${OUT:-docs/benchmarks}.
#   bash scripts/gpu_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/benchmarks}
GAD=${GAD:-.venv/bin/gad}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$GAD" bench engine --backbone llama3.2-1b-random --backbone smollm2-135m \
  --device cuda --dtype bfloat16 --latency-batch 1 --latency-batch 32 --no-onnx \
  --repeats 10 --out "$OUT/engine-gpu.md"
# Streaming attention (docs/streaming.md): one step per frame against the K/V rings vs the
# full window, same model, LoRA merged on both sides, bf16, batch 1 / 16 / 64, the paper's
# window (128 + 32 = 160) and the demo's (40).
.venv/bin/python -m bench.streaming --backbone llama3.2-1b-random --runner pytorch \
  --device cuda --dtype bfloat16 --merged --window 160 --window 40 \
  --batch 1 --batch 16 --batch 64 --repeats 10 | tee "$OUT/streaming-gpu.md"
