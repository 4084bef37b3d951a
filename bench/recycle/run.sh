#!/bin/sh
# Frame-buffer recycling through the daemon's path (decode + detect at 5 fps,
# one and four 720p cameras), detect releasing frames vs not, alternating in
# one process. Prints a markdown section for bench/RESULTS.md. Needs ffmpeg,
# the cgo build (libavcodec) and third_party/onnxruntime.
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
	echo "### Frame recycling through the daemon's path — $(date -u +%Y-%m-%d)"
	echo
	echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Debian $(cat /etc/debian_version), $(go version | cut -d' ' -f3), no GPU."
	echo "Load average when started: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
} >"$out"
SRDGD_BENCH=1 SRDGD_BENCH_OUT="$out" go test -count=1 -timeout 20m -v -run TestRecycleDaemonPath ./bench/recycle >&2
echo >>"$out"
echo "Load average when finished: $(cut -d' ' -f1-3 /proc/loadavg)." >>"$out"
cat "$out"
