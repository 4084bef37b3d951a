"""Times the PyTorch forward of a trained score checkpoint (EMA weights), for the
ORT-vs-PyTorch ratio in bench/srdg/run.sh. Prints the median ms per call.

/usr/bin/python3 bench/srdg/torch_forward.py --ckpt models/runs/score_x8 --batch 1 --threads 1
"""
import argparse
import statistics
import time

import torch

from models.train import score as score_mod


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ckpt", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _, _ = score_mod.load_weights(a.ckpt)
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, 3, 128, 128, generator=g)
    y = torch.rand(a.batch, 3, 128, 128, generator=g)
    s = torch.ones(a.batch)
    times = []
    with torch.no_grad():
        model(x, y, s)  # warm-up
        for _ in range(a.runs):
            t0 = time.perf_counter()
            model(x, y, s)
            times.append((time.perf_counter() - t0) * 1000)
    print(f"{statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
