#!/usr/bin/env bash
# The SmolLM2-135M clip comparison (docs/benchmarks/clip.md, issue 29): clip-smollm2.md's
# schedule (1 epoch, batch 8, lr 5e-4, LoRA r=32 a=64, clips of at most 32 rows) with the
# current defaults (the authors' targets; the generative row decodes free, the constrained
# row beside it), seeds 0-2 (SEEDS="0" for one). One classifier per `gad bench compare`
# run, each into docs/benchmarks/clip-smollm2-runs/sSEED-KIND.md: committed, they are how a
# later session knows what is done. Re-running this script skips the classifiers whose
# table exists, and `--resume` continues an interrupted classifier from its last
# checkpoint (saved every 10 steps) while runs/ survives.
#   scripts/clip_smollm2_compare.sh   (repository root, after `make setup`; 2 threads)
set -euo pipefail
export GAD_CACHE_DIR=${GAD_CACHE_DIR:-$PWD/.cache/gad} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
read -r -a gad <<<"${GAD:-.venv/bin/gad}"
tables=docs/benchmarks/clip-smollm2-runs
mkdir -p "$tables"
[ -f data/procedures/data_info.json ] || "${gad[@]}" data synth --procedures --out data/procedures
for seed in ${SEEDS:-0 1 2}; do
  dir=runs/clip-smollm2-$seed
  mkdir -p "$dir"
  for kind in discriminative gad generative; do
    out=$tables/s$seed-$kind.md
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
done
