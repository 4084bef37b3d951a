#!/bin/bash
# Enrolment photo cost (bench/RESULTS.md, "Hostile image inputs: enrolment
# photo cost"; issue 19 finding 3): blank RGBA PNGs of 2000², 4000² and 6320²
# pixels (19 / 70 / 171 KB, bench/enrol/blank.go) enrolled with
# `srdgd gallery add` (wall time and max RSS from /usr/bin/time) and through
# a running daemon's `POST /api/v1/gallery` (wall time per request, RSS from
# /proc, Go heap from /metrics' go_memstats_heap_inuse_bytes), then
# SRDGD_BENCH_PARALLEL (default 20) parallel uploads of SRDGD_BENCH_PARALLEL_SIDE
# (default 6320) with the peak RSS sampled every 0.2 s, and RSS and heap again
# 30 s later. No photo has a face, so every enrolment is refused (exit 1 /
# 422) after the full decode and face search: the cost measured is that of an
# allowed photo.
#   bench/enrol/run.sh path/to/srdgd
# The binary must find its models and ONNX Runtime (beside it, /usr, or run
# it from a source tree: internal/locate). Output goes to $SRDGD_BENCH_OUT
# (default a temporary folder, printed); the table lines go to stdout.
# SRDGD_BENCH_PARTS="cli", "api" or "cli api" (default) picks the parts.
set -eu
bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
out=${SRDGD_BENCH_OUT:-$(mktemp -d)}
par=${SRDGD_BENCH_PARALLEL:-20}
parside=${SRDGD_BENCH_PARALLEL_SIDE:-6320}
mkdir -p "$out/state"
(cd "$here/../.." && go run bench/enrol/blank.go "$out" 2000 4000 6320 "$parside")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ENROL_BENCH_TOKEN=enrol-bench-token-0123456789abcdef
cat >"$out/srdgd.yaml" <<YAML
version: 1
storage:
  state_dir: $out/state
match:
  key_file: $out/state/gallery.key
publish:
  mqtt:
    enabled: false
  webrtc:
    enabled: false
  http:
    listen: 127.0.0.1:$port
    token_env: ENROL_BENCH_TOKEN
    max_body_bytes: 67108864
YAML
"$bin" gallery --config "$out/srdgd.yaml" keygen >&2
echo "# $(basename "$bin"): $(uname -srm), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
parts=${SRDGD_BENCH_PARTS:-cli api}
for s in 2000 4000 6320; do
	case " $parts " in *" cli "*) ;; *) break ;; esac
	/usr/bin/time -f "%e %M" -o "$out/time" "$bin" gallery --config "$out/srdgd.yaml" add --name "blank$s" "$out/blank$s.png" >"$out/add$s.log" 2>&1 || true
	read -r wall rss < <(tail -1 "$out/time")
	echo "cli gallery add blank$s.png ($(stat -c %s "$out/blank$s.png") bytes): ${wall} s, max RSS $((rss / 1024)) MB; $(tail -1 "$out/add$s.log" | cut -c1-160)"
done

case " $parts " in *" api "*) ;; *) exit 0 ;; esac
"$bin" run --config "$out/srdgd.yaml" >"$out/daemon.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
api=http://127.0.0.1:$port
auth="Authorization: Bearer $ENROL_BENCH_TOKEN"
for i in $(seq 600); do
	curl -sf -H "$auth" "$api/metrics" >/dev/null && break
	kill -0 $pid || { cat "$out/daemon.log" >&2; exit 1; }
	sleep 0.5
done
rss() { echo $(($(awk '/^VmRSS/ {print $2}' /proc/$pid/status) / 1024)); }
heap() { curl -sf -H "$auth" "$api/metrics" | awk '/^go_memstats_heap_inuse_bytes/ {printf "%d", $2 / 1048576}'; }
now() { date +%s.%N; }
echo "api idle: RSS $(rss) MB, heap $(heap) MB"
for s in 2000 4000 6320; do
	t0=$(now)
	code=$(curl -s -o "$out/post$s.json" -w '%{http_code}' -H "$auth" -F "name=blank$s" -F "photo=@$out/blank$s.png" "$api/api/v1/gallery")
	t1=$(now)
	echo "api POST blank$s.png: HTTP $code in $(echo "$t1 - $t0" | bc | xargs printf '%.1f') s; RSS $(rss) MB, heap $(heap) MB; $(cut -c1-160 "$out/post$s.json")"
done
peak=0
t0=$(now)
for i in $(seq "$par"); do
	curl -s -o "$out/par$i.json" -w '%{http_code}\n' -H "$auth" -F "name=par$i" -F "photo=@$out/blank$parside.png" "$api/api/v1/gallery" >"$out/par$i.code" &
done
while [ "$(jobs -r | wc -l)" -gt 1 ]; do
	r=$(rss)
	[ "$r" -gt "$peak" ] && peak=$r
	sleep 0.2
done
wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null || true
t1=$(now)
echo "api $par parallel POST blank$parside.png: $(sort "$out"/par*.code | uniq -c | xargs) in $(echo "$t1 - $t0" | bc | xargs printf '%.1f') s; peak RSS $peak MB; after: RSS $(rss) MB, heap $(heap) MB"
sleep 30
echo "api 30 s later: RSS $(rss) MB, heap $(heap) MB"
echo "output in $out" >&2
