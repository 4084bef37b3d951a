#!/bin/sh
# Camera faults against the real camera and daemon (bench/RESULTS.md):
# - "Camera reconnect cycles": the RTSP server and its ffmpeg publisher are
#   restarted SRDGD_BENCH_CYCLES times (default 100), 640x360@15; after each
#   cycle the camera's reconnects, goroutines, RSS and Go heap are recorded.
# - "Camera auth failures" (needs a binary): a camera whose server answers 401
#   (no credentials configured; password changed after a healthy session)
#   next to a healthy one. SRDGD_BENCH_AUTH_RETRY (default 3s) sets
#   reconnect.auth_retry so that the recovery is measured; set it empty for a
#   build older than that key.
#   bench/reconnect/run.sh [path/to/srdgd]
# Without a binary only the in-process camera + decoder runs; with one, the
# daemon runs too. SRDGD_BENCH_ONLY=cycles or auth runs one part. CSV files,
# summary.md and summary-auth.md go to $SRDGD_BENCH_OUT (default a temporary
# folder, printed). Each run stays under 5 minutes.
set -eu
cd "$(dirname "$0")/../.."
out=${SRDGD_BENCH_OUT:-$(mktemp -d)}
only=${SRDGD_BENCH_ONLY:-}
export SRDGD_BENCH=1 SRDGD_BENCH_OUT="$out"
go test -c -o "$out/reconnect.test" ./bench/reconnect
run() { (cd bench/reconnect && timeout 300 "$@" -test.v -test.timeout 6m) >&2; }
if [ "$only" != auth ]; then
	run "$out/reconnect.test" -test.run 'TestReconnectCyclesCamera$'
	SRDGD_BENCH_TRIM=1 run "$out/reconnect.test" -test.run 'TestReconnectCyclesCamera$'
	MALLOC_ARENA_MAX=2 run "$out/reconnect.test" -test.run 'TestReconnectCyclesCamera$'
fi
if [ $# -gt 0 ]; then
	bin=$(realpath "$1")
	if [ "$only" != auth ]; then
		SRDGD_BENCH_BIN=$bin run "$out/reconnect.test" -test.run 'TestReconnectCyclesDaemon$'
		SRDGD_BENCH_BIN=$bin MALLOC_ARENA_MAX=2 run "$out/reconnect.test" -test.run 'TestReconnectCyclesDaemon$'
	fi
	if [ "$only" != cycles ]; then
		SRDGD_BENCH_BIN=$bin SRDGD_BENCH_AUTH_RETRY=${SRDGD_BENCH_AUTH_RETRY-3s} \
			run "$out/reconnect.test" -test.run 'TestAuthRejectedDaemon$'
	fi
fi
echo "results in $out" >&2
[ ! -f "$out/summary.md" ] || cat "$out/summary.md"
[ ! -f "$out/summary-auth.md" ] || cat "$out/summary-auth.md"
