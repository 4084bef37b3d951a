#!/bin/sh
# The feedback study (README "Feedback", bench/RESULTS.md): SR descriptors of
# CelebA val probes (the sightings an operator confirms or rejects) and of
# CelebA test probes (the faces searched), 16x16 (x8), sampler fast,
# unguided; then eval's TestTemplateStudyCelebA scores every rule on them.
# Usage: bench/templates/run.sh [OUT] [VAL_PROBES] [TEST_PROBES]  (about 20 min each split on 2 cores)
set -eu
cd "$(dirname "$0")/../.."
out=${1:-/tmp/srdgd-templates}
nval=${2:-360}
ntest=${3:-300}
celeba=${SRDGD_CELEBA:-../shared/data/celeba-aligned}
export PATH="$PATH:/usr/local/go/bin"
go build -o "$out/srdgd" ./cmd/srdgd
for split in val test; do
  n=$nval
  [ "$split" = test ] && n=$ntest
  "$out/srdgd" eval --celeba "$celeba" --split "$split" --limit "$n" --scale 8 --sampler fast \
    --guided=false --out "$out/$split"
done
SRDGD_TEMPLATES="$out" go test -count=1 -run TestTemplateStudyCelebA -v ./eval
