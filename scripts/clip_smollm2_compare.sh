#!/usr/bin/env bash
# The SmolLM2-135M clip comparison (docs/benchmarks/clip-smollm2.md, issue 29): the current
# defaults (the authors' targets; the generative row decodes free, the constrained row
# beside it), seeds 0-2 (SEEDS="0" for one; KINDS="generative" picks classifiers), each
# classifier trained until its validation loss is flat on held-out procedure videos
# (coin.json's validation subset, never the test videos) or its step cap. One epoch was
# not enough: at one epoch the same discriminative run gave step top-1 28.2 or 60.9 from
# two initialisations of its heads.
#
# One classifier per `gad bench compare` run, each into
# docs/benchmarks/clip-smollm2-runs/sSEED-KIND.md: committed, they are how a later session
# knows what is done. Re-running this script skips the classifiers whose table exists, and
# `--resume` continues an interrupted classifier (stop it with a plain `kill`: it saves and
# exits 130; stop this script first, or it starts the next classifier) while runs/
# survives. `scripts/summarise_seeds.py clip > docs/benchmarks/clip-smollm2.md` sums up (with
# NOISE: `clip docs/benchmarks/clip-smollm2-noise1.5-runs > ...clip-smollm2-noise1.5.md`).
#   scripts/clip_smollm2_compare.sh   (repository root, after `make setup`; 2 threads)
#   EXTRA="--device cuda --bf16" scripts/clip_smollm2_compare.sh   (a GPU: the same rows)
#   NOISE=1.5 EXTRA=--bf16 scripts/clip_smollm2_compare.sh   (the same videos with noisier
#     features, into clip-smollm2-noise1.5-runs/: at the default 0.35 every classifier is at
#     the ceiling; bf16 autocast, as the mocap ordering runs: ~1.4x faster a step on this CPU)
set -euo pipefail
# shellcheck disable=SC2086  # EXTRA is split into arguments on purpose
export GAD_CACHE_DIR=${GAD_CACHE_DIR:-$PWD/.cache/gad} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
read -r -a gad <<<"${GAD:-.venv/bin/gad}"
# The default procedures (120 train / 36 test videos, the same bytes as `gad data synth
# --procedures`) with 24 validation videos written after them. NOISE sets the features'
# noise std (default 0.35): the same videos, steps and step lengths (the generator draws the
# same random numbers whatever the scale), only noisier features.
variant=${NOISE:+-noise$NOISE}
tables=docs/benchmarks/clip-smollm2$variant-runs
mkdir -p "$tables"
data=data/procedures$variant-val
[ -f "$data/data_info.json" ] \
  || "${gad[@]}" data synth --procedures --out "$data" --val-videos 24 ${NOISE:+--noise "$NOISE"}
# SmolLM2's schedule (batch 8, lr 5e-4 cosine over a 1,500-step cap = 11.5 epochs, 5 %
# warm-up, LoRA r=32 a=64, clips of at most 32 rows); validation every 50 steps on 256
# held-out clips, patience 6 (300 steps without a 0.5 % gain).
for seed in ${SEEDS:-0 1 2}; do
  dir=runs/clip-smollm2$variant-$seed
  mkdir -p "$dir"
  for kind in ${KINDS:-discriminative gad generative}; do
    out=$tables/s$seed-$kind.md
    if [ -f "$out" ]; then echo "$kind: done ($out)"; continue; fi
    echo "$out start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    t0=$(date +%s)
    "${gad[@]}" bench compare --task clip --data "$data" --backbone smollm2-135m \
      --max-steps 1500 --warmup 0.05 --batch-size 8 --lr 5e-4 --lora-rank 32 --lora-alpha 64 \
      --clip-frames 32 --val-data "$data" --val-every 50 --val-windows 256 --patience 6 \
      --seed "$seed" --kinds "$kind" --runs "$dir/runs-$kind" --out "$out.tmp" --no-progress \
      --resume ${EXTRA:-} >"$dir/$kind.log" 2>&1
    mv "$out.tmp" "$out"
    echo "$out done $(date -u +%FT%TZ) wall $(($(date +%s) - t0)) s"
  done
done
