#!/bin/sh
# Gallery names sealed (issue 19): name lookup and List over 1,000 people,
# before (BASE, default the commit before names were sealed: clear names,
# SQL lookup and ORDER BY) and after (this tree: HMAC name key lookup; names
# decrypted and sorted in Go). Both trees run match/names_bench_test.go,
# interleaved, COUNT rounds each; prints the medians and the ratio as a
# markdown table. Needs no models. Run under the CPU lock:
#   flock /tmp/srdgd-cpu.lock bench/names/run.sh
set -eu
cd "$(dirname "$0")/../.."
BASE=${BASE:-9510ca4}
COUNT=${COUNT:-5}
base=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$base" "$out"' EXIT
git archive "$BASE" | tar -x -C "$base"
cp match/names_bench_test.go "$base/match/"
for i in $(seq "$COUNT"); do
	(cd "$base" && go test -run '^$' -bench 'BenchmarkNameLookup$|BenchmarkList$' -benchtime 2s -count 1 ./match/) |
		awk '/^Benchmark/ {print "before", $1, $3}' >>"$out"
	go test -run '^$' -bench 'BenchmarkNameLookup$|BenchmarkList$' -benchtime 2s -count 1 ./match/ |
		awk '/^Benchmark/ {print "after", $1, $3}' >>"$out"
done
echo "| benchmark (1,000 people, encrypted) | before ns/op (median of $COUNT) | after ns/op | after / before |"
echo "|---|---|---|---|"
for b in BenchmarkNameLookup BenchmarkList; do
	med() { grep "^$1 $b-" "$out" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
	bf=$(med before)
	af=$(med after)
	echo "| $b | $bf | $af | $(awk -v a="$af" -v b="$bf" 'BEGIN {printf "%.2f", a/b}') |"
done
echo
echo "raw:"
sort "$out" | sed 's/^/    /'
