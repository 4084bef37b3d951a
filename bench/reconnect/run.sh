#!/bin/sh
# Memory over camera reconnect cycles (bench/RESULTS.md, "Camera reconnect
# cycles"): the RTSP server and its ffmpeg publisher are restarted
# SRDGD_BENCH_CYCLES times (default 100), 640x360@15; after each cycle the
# camera's reconnects, goroutines, RSS and Go heap are recorded.
#   bench/reconnect/run.sh [path/to/srdgd]
# Without a binary only the in-process camera + decoder runs; with one, the
# daemon runs too. CSV files and summary.md go to $SRDGD_BENCH_OUT (default a
# temporary folder, printed).
set -eu
cd "$(dirname "$0")/../.."
out=${SRDGD_BENCH_OUT:-$(mktemp -d)}
export SRDGD_BENCH=1 SRDGD_BENCH_OUT="$out"
go test -c -o "$out/reconnect.test" ./bench/reconnect
run() { (cd bench/reconnect && timeout 300 "$@" -test.v -test.timeout 6m) >&2; }
run "$out/reconnect.test" -test.run 'TestReconnectCyclesCamera$'
SRDGD_BENCH_TRIM=1 run "$out/reconnect.test" -test.run 'TestReconnectCyclesCamera$'
MALLOC_ARENA_MAX=2 run "$out/reconnect.test" -test.run 'TestReconnectCyclesCamera$'
if [ $# -gt 0 ]; then
	SRDGD_BENCH_BIN=$(realpath "$1") run "$out/reconnect.test" -test.run 'TestReconnectCyclesDaemon$'
	SRDGD_BENCH_BIN=$(realpath "$1") MALLOC_ARENA_MAX=2 run "$out/reconnect.test" -test.run 'TestReconnectCyclesDaemon$'
fi
echo "results in $out" >&2
cat "$out/summary.md"
