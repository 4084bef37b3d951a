#!/usr/bin/env bash
# SR engine benchmarks: per-face latency and evaluations per sampler (batch 1
# and 8, sampler overhead outside the networks), and ONNX Runtime vs PyTorch on
# the same score model, same input shape, same thread count, in one run.
# Usage: bench/srdg/run.sh [threads]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
T="${1:-1}"
CKPT="${CKPT:-models/runs/score_x8}"
MODEL="${MODEL:-models/dist/score_x8.onnx}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -c "
import numpy as np
for b in (1, 8):
    np.save('$tmp/x%d.npy' % b, np.random.RandomState(0).rand(b, 3, 128, 128).astype(np.float32))
    np.save('$tmp/s%d.npy' % b, np.ones(b, np.float32))"
go build -o "$tmp/onnxeval" ./cmd/onnxeval
echo "== ORT vs PyTorch, score model, $T thread(s)"
for b in 1 8; do
  ort=$("$tmp/onnxeval" --model "$MODEL" --threads "$T" --in x_t="$tmp/x$b.npy" --in y="$tmp/x$b.npy" \
        --in sigma="$tmp/s$b.npy" --out score="$tmp/o.npy" --time 10 | sed -E 's/median ([0-9.]+) ms.*/\1/')
  if [ -d "$CKPT" ]; then
    pt=$(PYTHONPATH=. /usr/bin/python3 bench/srdg/torch_forward.py --ckpt "$CKPT" --batch "$b" --threads "$T")
    echo "batch $b: ORT $ort ms, PyTorch $pt ms, ORT/PyTorch $(echo "scale=3; $ort / $pt" | bc)"
  else
    echo "batch $b: ORT $ort ms (no checkpoint at $CKPT for the PyTorch side)"
  fi
done
echo "== samplers, unguided (go test -bench)"
SRDGD_BENCH_GUIDANCE=none go test -run '^$' -bench Samplers -benchtime 2x ./srdg | grep -E "Benchmark|ok"
echo "== samplers, guided, batch 1 (go test -bench)"
go test -run '^$' -bench 'Samplers/.*/batch1$' -benchtime 1x ./srdg | grep -E "Benchmark|ok"
