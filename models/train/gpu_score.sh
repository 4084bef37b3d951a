#!/bin/bash
# Train the 8x and 16x score models at the same time on one CUDA GPU for a fixed wall time,
# then pack their EMA weights (best on validation, and last) as .npz into OUT_DIR.
#
#   models/train/gpu_score.sh DATA_DIR OUT_DIR [MINUTES]
#
# DATA_DIR holds labels.csv and img_align_celeba/ (the train and val images are enough).
# Environment: PYTHON (default python3: on a GPU box that is the one with CUDA PyTorch), DEVICE (cuda),
# RUNS (run directories, default /tmp/srdgd-runs), BATCH (128), LR (2e-4), CH (48).
# Same code and loss as the CPU runs (models/train/score.py); on CUDA the split lives on
# the GPU (--preload auto) and the forward/backward runs in bfloat16 (--amp auto).
# Back on the toolchain box: python3 -m models.train.weights_npz unpack OUT/x8_best.npz
# models/runs/score_x8_gpu/best.pt, then `models export --kind score`.
set -u -o pipefail
DATA=${1:?usage: gpu_score.sh DATA_DIR OUT_DIR [MINUTES]}
OUT=${2:?usage: gpu_score.sh DATA_DIR OUT_DIR [MINUTES]}
MIN=${3:-6}
PY=${PYTHON:-python3}
RUNS=${RUNS:-/tmp/srdgd-runs}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUNS"
cd "$(dirname "$0")/../.." || exit 1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__, "cuda", torch.cuda.is_available())' || exit 1

t0=$(date +%s)
pids=()
for split in train val; do
  "$PY" -c "from models import data; data.load_split('$split', scales=(8, 16), data_dir='$DATA', cache_dir='$RUNS/cache')" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { echo "gpu_score: building the data cache failed" >&2; exit 1; }; done
echo "gpu_score: cache built in $(( $(date +%s) - t0 )) s"

pids=()
for scale in 8 16; do
  "$PY" -m models train-score --scale "$scale" --out "$RUNS/score_x$scale" --data "$DATA" --cache "$RUNS/cache" \
    --device "${DEVICE:-cuda}" --batch "${BATCH:-128}" --lr "${LR:-2e-4}" --ch "${CH:-48}" --warmup 500 \
    --val-steps 1000 --val-n 256 --ckpt-steps 2000 --snapshot-steps 0 --log-steps 100 \
    --max-minutes "$MIN" --threads 4 >"$RUNS/x$scale.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
for scale in 8 16; do
  echo "== x$scale: $(tail -c 600 "$RUNS/x$scale.log")"
  grep '"event":"val"' "$RUNS/score_x$scale/train.jsonl" | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print("x'"$scale"' val step", r["step"], "dsm %.4f" % r["dsm"], "best" if r.get("best") else "")'
  grep '"event":"train"' "$RUNS/score_x$scale/train.jsonl" | tail -1
  cp "$RUNS/score_x$scale/train.jsonl" "$OUT/x${scale}_train.jsonl" 2>/dev/null
  "$PY" -m models.train.weights_npz pack "$RUNS/score_x$scale" "$OUT/x$scale" || rc=1
done
ls -l "$OUT"
exit $rc
