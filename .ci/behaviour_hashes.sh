#!/usr/bin/env bash
# Hashes what a training epoch, noise-maps --samples 20000 and fgsm write for one seed, so a
# refactor can show it changed no bits: run it before and after and diff the two listings.
# Usage: .ci/behaviour_hashes.sh OUT_DIR > hashes.txt   (about 10 minutes on 2 cores)
set -euo pipefail
out=${1:?usage: .ci/behaviour_hashes.sh OUT_DIR}
rm -rf "$out" && mkdir -p "$out"
deno task train --model smaller --epochs 1 --limit 10000 --seed 0 --out "$out/train" >&2
deno task noise-maps --checkpoint "$out/train/model.safetensors" --samples 20000 \
  --raw-samples 20000 --eval-images 500 --seed 0 --out "$out/noise-maps" >&2
deno task fgsm --checkpoint "$out/train/model.safetensors" --test-images 500 --seed 0 \
  --out "$out/fgsm" >&2
# Arrays, weights and tables only: reports and logs carry timings and dates.
cd "$out" && find . -type f \( -name '*.npy' -o -name '*.npz' -o -name '*.safetensors' \
  -o -name '*.csv' \) -print0 | sort -z | xargs -0 sha256sum
