#!/usr/bin/env bash
# Regenerate the images' hash-pinned dependency sets from pyproject.toml:
#   bash docker/lock.sh            (needs uv: `pip install uv`)
# serve-gpu.txt  docker/Dockerfile        service + onnxruntime-gpu (no torch)
# serve-cpu.txt  docker/Dockerfile.cpu    service + onnxruntime
# train.txt      docker/Dockerfile.train  train + serve extras, torch as train-overrides.txt
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
OUT=docker/requirements
COMMON=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
  --upgrade --quiet --custom-compile-command "docker/lock.sh")
"$UV" pip compile pyproject.toml --extra serve-gpu "${COMMON[@]}" -o "$OUT/serve-gpu.txt"
"$UV" pip compile pyproject.toml --extra serve "${COMMON[@]}" -o "$OUT/serve-cpu.txt"
"$UV" pip compile pyproject.toml --extra train --extra serve \
  --override "$OUT/train-overrides.txt" "${COMMON[@]}" -o "$OUT/train.txt"
echo "locked: $(ls "$OUT"/*.txt | tr '\n' ' ')"
