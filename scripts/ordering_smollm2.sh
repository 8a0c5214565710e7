#!/usr/bin/env bash
# The real-LLM ordering (issue 29, part 4): SmolLM2-135M as discriminative, GAD (λ = 1, the
# paper's; λ = 0.5, what the tiny sweep favours) and generative classifier, seeds 0-2, on
# the synthetic benchmark and the pose motion-capture dataset, each trained until its
# validation loss is flat (held-out videos, never the test split) or its step cap.
#
# One (dataset, seed, classifier) per `gad bench compare` run; its table goes to
# docs/benchmarks/ordering-smollm2/DATASET-sSEED-ROW.md, which is how the script knows a row
# is done: re-run it (any session) and it goes on with the next missing row. A row stopped
# half-way resumes from its best checkpoint (`--resume`) while runs/ survives; a fresh
# checkout starts that row again. `MAX_ROWS=N` stops after N rows; `ONLY=synth` one dataset;
# `ROWS="discriminative gad"` those classifiers only (the generative row is the longest: its
# evaluation decodes every test frame, twice; start it with a session's time ahead).
# `EXTRA="--device cuda"` passes more arguments to every row (a GPU: the same rows).
#   scripts/ordering_smollm2.sh   (repository root, after `make setup`; 2 threads)
set -euo pipefail
export GAD_CACHE_DIR=${GAD_CACHE_DIR:-$PWD/.cache/gad} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
gad=${GAD:-.venv/bin/gad}
out=docs/benchmarks/ordering-smollm2
mkdir -p "$out" runs/ordering data
max_rows=${MAX_ROWS:-1000}
done_rows=0

# The data: synth with 6 val videos beside its 24 train / 8 test (the train and test videos
# are the bytes `gad data synth` always writes); mocap with a second, seed-1 dataset of the
# training kind (its train split: the test split holds motions kept out of training).
[ -f data/synth-val/data_info.json ] || "$gad" data synth --out data/synth-val --val-videos 6
[ -f data/mocap/data_info.json ] || "$gad" data mocap --out data/mocap --seed 0 --no-progress
[ -f data/mocap-val/data_info.json ] \
  || "$gad" data mocap --out data/mocap-val --train-videos 24 --test-videos 0 --seed 1 --no-progress

# SmolLM2's schedule as compare-smollm2.md (batch 8, lr 5e-4, LoRA r=32 a=64), validated
# every 25 steps on 256 windows, patience 8 (200 steps without a 0.5 % gain). synth: window
# 8 + 8, float32, capped at 1,500 steps (18 epochs). mocap: window 16 + 8 and bf16 autocast
# (this CPU has AVX-512 BF16: 1.4x faster per step than float32, the loss alike), capped at
# 1,000 steps (1.2 epochs): at 32 + 8 in float32 a step took 3.4 s here, 85 min a row
# before validation (measured 2026-12-06, window 8 + 8 / 16 + 8 / 32 + 8: 2.2 / 2.5 / 3.4 s).
common=(--backbone smollm2-135m --batch-size 8 --lr 5e-4 --lora-rank 32 --lora-alpha 64
  --warmup 0.05 --val-every 25 --val-windows 256 --patience 8 --no-progress)
declare -A args=(
  [synth]="--data data/synth-val --long 8 --short 8 --max-steps 1500 --val-data data/synth-val --limit-test-videos 4"
  [mocap]="--data data/mocap --long 16 --short 8 --bf16 --max-steps 1000 --val-data data/mocap-val --val-split train --limit-test-videos 6"
)
declare -A rows=(
  [discriminative]="--kinds discriminative"
  [gad]="--kinds gad --lm-weight 1.0"
  [gad-lm0.5]="--kinds gad --lm-weight 0.5"
  [generative]="--kinds generative"
)
for seed in 0 1 2; do
  for dataset in synth mocap; do
    [ -n "${ONLY:-}" ] && [ "$ONLY" != "$dataset" ] && continue
    for row in ${ROWS:-discriminative gad gad-lm0.5 generative}; do
      table=$out/$dataset-s$seed-$row.md
      [ -f "$table" ] && continue
      [ "$done_rows" -ge "$max_rows" ] && exit 0
      runs=runs/ordering/$dataset-s$seed-$row
      echo "$table: start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
      t0=$(date +%s)
      # --resume: a row stopped half-way goes on from its checkpoint; one never started
      # starts from scratch (gad bench compare decides by the checkpoint's state file).
      # shellcheck disable=SC2086
      "$gad" bench compare ${args[$dataset]} ${rows[$row]} "${common[@]}" --seed "$seed" \
        --runs "$runs" --out "$table.tmp" --resume ${EXTRA:-} >"$runs.log" 2>&1
      mv "$table.tmp" "$table"
      echo "$table: done, $(($(date +%s) - t0)) s"
      done_rows=$((done_rows + 1))
    done
  done
done
