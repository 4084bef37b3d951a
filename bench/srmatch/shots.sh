#!/bin/bash
# Multi-shot SR match (issue 15 item 6): K = 4 LR observations per probe as a
# walking person gives them (sub-pixel shifts, a few percent of scale, sensor
# noise), super-resolved one by one (sampler $SAMPLER, unguided) and fused;
# single-shot rows (<method>-shots1) of the same run beside the fused ones.
#
#   bench/srmatch/shots.sh test 8 [N] [STEP]   # Rank-1 / DIR at FPIR 1 %: fused vs single
#   bench/srmatch/shots.sh val 16 [N] [STEP]   # also the calibration (--calibrate $CALIB)
#
# The val runs merge their entries into $CALIB (default $OUT/fused.json;
# the one shipped is match/calib/fused.json: run val 16 and val 8, copy it
# there).
#
# N probes (default 600 = all), run in chunks of STEP probes (default 120),
# each chunk a separate command under the shared CPU lock; the SR outputs and
# descriptors are cached in $OUT/<split>_x<scale>/ (sr/, cache.jsonl), so a
# chunk resumes where the last one stopped and a change of embedder or fusion
# rule reruns no SR. Gallery: one train photo of each of the 200 CelebA
# identities (val and test share identities with train).
set -euo pipefail
cd "$(dirname "$0")/../.."
SPLIT=${1:?split: test or val}
SCALE=${2:?scale: 8 or 16}
N=${3:-600}
STEP=${4:-120}
OUT=${OUT:-/tmp/srmatch-shots}
CELEBA=${CELEBA:-../shared/data/celeba-aligned}
MODELS=${MODELS:-models/dist}
THREADS=${THREADS:-2}
SAMPLER=${SAMPLER:-fast}
SHOTS=${SHOTS:-4}
LOCK=${LOCK:-/tmp/srdgd-cpu.lock}
EXTRA=${EXTRA:-}
CALIB=${CALIB:-$OUT/fused.json}
go build -o bin/srdgd ./cmd/srdgd
dir="$OUT/${SPLIT}_x$SCALE"
mkdir -p "$dir"
calib=()
for ((n = STEP; ; n += STEP)); do
  ((n > N)) && n=$N
  if ((n == N)) && [[ $SPLIT == val ]]; then calib=(--calibrate "$CALIB"); fi
  flock "$LOCK" bin/srdgd eval --celeba "$CELEBA" --split "$SPLIT" --limit "$n" --scale "$SCALE" \
    --sampler "$SAMPLER" --guided=false --hr=false --single=false --shots "$SHOTS" \
    --models "$MODELS" --threads "$THREADS" --out "$dir" "${calib[@]}" $EXTRA >"$dir/stdout.md"
  ((n == N)) && break
done
cat "$dir/stdout.md"
