#!/bin/sh
# Ingest benchmarks: decode throughput per core vs the ffmpeg CLI, and latency
# from the in-process RTSP server to decoded BGR24 frames with 1 and 4 cameras.
# Prints a markdown section for bench/RESULTS.md. Needs ffmpeg, libavcodec-dev,
# libswscale-dev, libavutil-dev, pkg-config and a C compiler (cgo).
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
	echo "### Ingest — $(date -u +%Y-%m-%d)"
	echo
	echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Debian $(cat /etc/debian_version), $(go version | cut -d' ' -f3), $(ffmpeg -version | head -1 | cut -d' ' -f1-3), no GPU."
	echo "Load average when started: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; wall-clock numbers suffer from it, CPU-time numbers less)."
} >"$out"
SRDGD_BENCH=1 SRDGD_BENCH_OUT="$out" go test -count=1 -timeout 15m -v -run 'TestDecodeThroughput|TestLatency' ./bench/ingest >&2
echo >>"$out"
echo "Load average when finished: $(cut -d' ' -f1-3 /proc/loadavg)." >>"$out"
cat "$out"
