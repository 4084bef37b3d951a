#!/usr/bin/env bash
# End-to-end latency: face first in the RTSP stream -> MQTT hit at a subscriber,
# on the real daemon with the default models (see cmd/srdgd/e2e_bench_test.go).
#   bench/e2e/run.sh [duration] [sampler] [policy]   e.g. bench/e2e/run.sh 5m fast predict
set -euo pipefail
cd "$(dirname "$0")/../.."
dur="${1:-4m}"
sampler="${2:-fast}"
policy="${3:-predict}"
out="bench/e2e/results-${sampler}-${policy}.json"
SRDGD_BENCH_E2E=1 SRDGD_BENCH_E2E_POLICY="$policy" SRDGD_BENCH_E2E_DURATION="$dur" SRDGD_BENCH_E2E_SAMPLER="$sampler" SRDGD_BENCH_E2E_OUT="$PWD/$out" \
  go test -count=1 -timeout 60m -run TestEndToEndLatency -v ./cmd/srdgd 2>&1 | grep -E "^(=== |--- |e2e:|    e2e_bench_test.go.*hit )" || true
echo "results: $out"
