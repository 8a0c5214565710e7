#!/usr/bin/env bash
# The SmolLM2-135M clip comparison (docs/benchmarks/clip.md, issue 29): clip-smollm2.md's
# schedule (1 epoch, batch 8, lr 5e-4, LoRA r=32 a=64, clips of at most 32 rows) with the
# current defaults (the authors' targets; the generative row decodes free, the constrained
# row beside it). One classifier per `gad bench compare` run, each into
# runs/clip-smollm2-$SEED/KIND.md. Re-running this script is how an interrupted run
# resumes: it skips the classifiers whose table exists, and `--resume` continues an
# interrupted classifier from its last checkpoint (saved every 10 steps).
#   SEED=0 scripts/clip_smollm2_compare.sh   (repository root, the venv active; 2 threads)
set -euo pipefail
export GAD_CACHE_DIR=${GAD_CACHE_DIR:-$PWD/.cache/gad} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
read -r -a gad <<<"${GAD:-gad}"
seed=${SEED:-0}
dir=runs/clip-smollm2-$seed
mkdir -p "$dir"
for kind in discriminative gad generative; do
  out=$dir/$kind.md
  if [ -f "$out" ]; then echo "$kind: done ($out)"; continue; fi
  echo "$kind start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
  t0=$(date +%s)
  "${gad[@]}" bench compare --task clip --data data/procedures --backbone smollm2-135m \
    --epochs 1 --batch-size 8 --lr 5e-4 --lora-rank 32 --lora-alpha 64 --clip-frames 32 \
    --seed "$seed" --kinds "$kind" --runs "$dir/runs-$kind" --out "$out.tmp" --no-progress \
    --resume --save-every 10 \
    >"$dir/$kind.log" 2>&1
  mv "$out.tmp" "$out"
  echo "$kind done $(date -u +%FT%TZ) wall $(($(date +%s) - t0)) s load $(cut -d' ' -f1-3 /proc/loadavg)"
done
