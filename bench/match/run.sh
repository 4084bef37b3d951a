#!/bin/sh
# Match benchmark: embeds the 6,000 CelebA aligned faces (face-api landmarks +
# dlib alignment + embedder on ONNX Runtime CPU), measures the verification ROC
# on train pairs, checks the chosen thresholds on val+test, an open-set 1:N
# search with margins and a closed-set CMC. Prints a markdown section for
# bench/RESULTS.md and writes bench/match/roc.png and cmc.png. Needs the ORT
# library (scripts/fetch-ort.sh) and the CelebA subset (SRDGD_TEST_CELEBA or
# ../shared/data/celeba-aligned). About 2-4 minutes on 2 busy cores.
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
	echo "### Match — $(date -u +%Y-%m-%d)"
	echo
	echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), ONNX Runtime $(cat third_party/onnxruntime/lib/VERSION 2>/dev/null || echo '?') CPU."
	echo "Load average when started: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)."
	echo
} >"$out"
SRDGD_BENCH=1 SRDGD_BENCH_OUT="$out" SRDGD_BENCH_PLOTS="$(pwd)/bench/match" \
	go test -count=1 -timeout 30m -v -run 'TestMatchROC' ./bench/match >&2
cat "$out"
