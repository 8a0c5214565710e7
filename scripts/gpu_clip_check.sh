#!/usr/bin/env bash
# The GPU checks of a session that is lent one, in one run (see docs/benchmarks/gpu.md):
#   0. the paper's speed claim at the paper's shapes (docs/benchmarks/paper-speed.md): the
#      GAD head vs free decoding, OAD window 128 + 32 and COIN 1,200 frames x 10 tokens,
#      llama3.2-1b-random in bf16, LoRA merged on both sides
#   1. the engine benchmark on a Llama-3.2-1B-shaped backbone in bf16, both LoRA states
#   2. the clip benchmark: one-pass heads vs generative decoding per answer (LoRA as
#      adapters and merged, on both sides), then the batched three-question pass apart
#   3. bf16 training steps at 1B scale on CUDA, per-frame and clip tasks (gad train --bf16)
# Runs from the repository root with a CUDA build of torch on the path; `GAD` is the
# command (default: python3 -m gad). Results under ${OUT:-runs/gpu}.
set -uo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
read -r -a gad <<<"${GAD:-python3 -m gad}"
export GAD_CACHE_DIR=${GAD_CACHE_DIR:-.cache/gad} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
step() { echo "=== $* ($(date +%T))"; }

step paper speed
timeout 300 "${gad[@]}" bench paper-speed --device cuda --repeats 20 \
  --out "$OUT/paper-speed-gpu.md" 2>&1 | grep -v "^Loading"

step clip benchmark
timeout 200 "${gad[@]}" bench clip --backbone llama3.2-1b-random --device cuda \
  --dtype bfloat16 --repeats 20 --out "$OUT/clip-gpu.md" 2>&1 | grep -v "^Loading"

step engine benchmark
timeout 260 "${gad[@]}" bench engine --backbone llama3.2-1b-random --device cuda \
  --dtype bfloat16 --latency-batch 1 --latency-batch 32 --batch 1 --batch 16 --batch 64 \
  --no-onnx --repeats 10 --out "$OUT/engine-gpu.md" 2>&1 | grep -v "^Loading"

step bf16 training at 1B scale
data=$(mktemp -d)
"${gad[@]}" data synth --procedures --feature-dim 2048 --train-videos 24 --test-videos 6 \
  --out "$data/procedures"
for task in frame clip; do
  timeout 120 "${gad[@]}" train "$data/procedures" --task "$task" --out "$data/$task" \
    --backbone llama3.2-1b-random --bf16 --device cuda --batch-size 16 --max-steps 40 \
    --long 128 --short 32 --clip-frames 32 --save-every 1000000 --no-progress 2>&1 \
    | grep -v "^Loading" | tail -3
  cp "$data/$task/log.jsonl" "$OUT/train-$task.jsonl" 2>/dev/null
done
nvidia-smi --query-gpu=memory.used --format=csv,noheader
step done
