"""train-lr-attrs: predict the guidance attributes from the LR face (16x16 for 8x, 8x8 for 16x).

    /usr/bin/python3 -m models train-lr-attrs --scale 8 --out models/runs/lr_attrs_x8
    /usr/bin/python3 -m models export --kind lr_attrs --ckpt models/runs/lr_attrs_x8 --out lr_attrs_x8.onnx

Input: the SRDG LR image (models/data/resample.py downscale of the models/data/crop.py 128x128 face),
float32 [B,3,n,n] in [0,1]. Network: (lr - 0.5) * 4 -> conv3x3 32 SiLU -> conv3x3 64 SiLU ->
conv3x3 stride 2 64 SiLU -> conv3x3 64 SiLU -> flatten -> dropout -> Linear(3): one logit per
attribute (male, glasses, no_beard; label 1 meanings in models/onnxmeta.py). Training: BCE,
AdamW, horizontal flips, HR shifts of up to +-4 px before downscaling (crop jitter),
brightness/contrast jitter and a little Gaussian noise; selection by validation BCE.
Calibration: one temperature per attribute fitted on val (minimum NLL); accuracy, balanced
accuracy and ECE (15 equal-width bins) reported on test before and after calibration.
ONNX: input `lr` [B,3,n,n] -> output `probs` [B,3] = sigmoid(logit / T), calibrated.
"""
import argparse
import copy
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

from ..data import crop as cropmod
from ..data import celeba as datamod
from ..data import resample
from ..onnxmeta import ATTRIBUTES
from . import common, loop
from .common import UserError
from .score import batch_indices, step_generator

ECE_BINS = 15


class LRAttrNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        n, w = cfg["lr_size"], cfg["width"]
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.SiLU(),
        )
        self.drop = nn.Dropout(cfg["dropout"])
        self.head = nn.Linear(2 * w * (n // 2) ** 2, len(cfg["attributes"]))

    def forward(self, lr):
        return self.head(self.drop(self.body((lr - 0.5) * 4.0).flatten(1)))


class Calibrated(nn.Module):
    def __init__(self, net, temps):
        super().__init__()
        self.net = net
        self.register_buffer("inv_t", 1.0 / torch.as_tensor(temps, dtype=torch.float32))

    def forward(self, lr):
        return torch.sigmoid(self.net(lr) * self.inv_t)


def shifted_lr(u8, shifts, lr_size):
    """Downscale HR crops after integer shifts (edge-replicated) -> float32 [B,3,n,n]."""
    x = cropmod.to_float(u8)
    out = np.empty_like(x)
    for i, (dy, dx) in enumerate(shifts):
        p = np.pad(x[i], ((0, 0), (4, 4), (4, 4)), mode="edge")
        out[i] = p[:, 4 + dy:4 + dy + 128, 4 + dx:4 + dx + 128]
    return resample.downscale(out, lr_size, np.float32)


def ece(probs, labels, bins=ECE_BINS):
    """Expected calibration error of binary probabilities (confidence of the predicted class)."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels)
    conf = np.where(probs >= 0.5, probs, 1 - probs)
    correct = ((probs >= 0.5).astype(int) == labels).astype(np.float64)
    edges = np.linspace(0.5, 1.0, bins + 1)
    e = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf >= lo) & ((conf < hi) if hi < 1.0 else (conf <= hi))
        if m.any():
            e += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(e)


def fit_temperature(logits, labels):
    """Temperature T > 0 minimising the binary NLL of sigmoid(logits / T) (grid + refinement)."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)

    def nll(log_t):
        return float(Fn.binary_cross_entropy_with_logits(z / math.exp(log_t), y))

    grid = np.linspace(-3, 3, 121)
    best = min(grid, key=nll)
    lo, hi = best - 0.05, best + 0.05
    for _ in range(60):  # golden-section search
        a, b = hi - (hi - lo) / 1.618, lo + (hi - lo) / 1.618
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


def metrics(probs, labels, attrs):
    out = {}
    for i, a in enumerate(attrs):
        p, y = probs[:, i], labels[:, i]
        pred = (p >= 0.5).astype(int)
        tpr = (pred[y == 1] == 1).mean() if (y == 1).any() else float("nan")
        tnr = (pred[y == 0] == 0).mean() if (y == 0).any() else float("nan")
        out[a] = {"acc": float((pred == y).mean()), "balanced_acc": float((tpr + tnr) / 2), "ece": ece(p, y),
                  "nll": float(Fn.binary_cross_entropy(torch.as_tensor(p).clamp(1e-7, 1 - 1e-7),
                                                       torch.as_tensor(y, dtype=torch.float64))),
                  "positives": int(y.sum()), "n": int(len(y))}
    return out


@torch.no_grad()
def logits_of(net, lr, device, batch=200):
    net.eval()
    return torch.cat([net(torch.from_numpy(lr[i:i + batch]).to(device)).cpu() for i in range(0, len(lr), batch)]).double().numpy()


def build_parser():
    p = argparse.ArgumentParser(prog="models train-lr-attrs", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, choices=(8, 16))
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--steps", type=int, default=None, help="default 4000")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--log-steps", type=int, default=50)
    p.add_argument("--val-steps", type=int, default=250)
    p.add_argument("--ckpt-steps", type=int, default=250)
    p.add_argument("--cache", default=datamod.DEFAULT_CACHE)
    p.add_argument("--data", default=datamod.DEFAULT_DATA)
    return p


TRAIN_KEYS = ("scale", "steps", "batch", "lr", "weight_decay", "seed", "log_steps", "val_steps", "ckpt_steps")


def load_weights(path):
    if os.path.isdir(path):
        path = os.path.join(path, "final.pt")
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist (train-lr-attrs writes final.pt when it finishes)")
    ck = torch.load(path, map_location="cpu")
    if ck.get("kind") != "lr_attrs":
        raise UserError(f"{path} is not an LR attribute checkpoint")
    net = LRAttrNet(ck["model_config"])
    net.load_state_dict(ck["weights"])
    return net.eval(), ck, path


def main(argv):
    args = build_parser().parse_args(argv)
    common.set_threads(args.threads)
    device = common.pick_device(args.device)
    out = args.out
    ck, log = loop.open_run("train-lr-attrs", out, args.resume)
    if ck is not None:
        targs, mcfg = loop.resumed_train_args(ck, args.steps), ck["model_config"]
    else:
        if args.scale is None:
            raise UserError("--scale is required for a new run")
        targs = {k: getattr(args, k) for k in TRAIN_KEYS}
        targs["steps"] = targs["steps"] or 4000
        mcfg = {"lr_size": datamod.lr_size(args.scale), "width": args.width, "dropout": args.dropout,
                "attributes": list(ATTRIBUTES)}
    scale, n = targs["scale"], mcfg["lr_size"]
    splits = {s: datamod.load_split(s, scales=(scale,), data_dir=args.data, cache_dir=args.cache) for s in datamod.SPLITS}
    train = splits["train"]
    torch.manual_seed(targs["seed"])
    net = LRAttrNet(mcfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=targs["lr"], weight_decay=targs["weight_decay"])
    # no EMA: the best-on-val weights are kept (in memory and in each checkpoint) instead
    best = {"state": None}
    run = loop.Loop("train-lr-attrs", out, log, device, net, opt, targs, mcfg,
                    extra_state=lambda: {"kind": "lr_attrs_run", "best_state": best["state"]})
    if ck is not None:
        run.restore(ck)
        best["state"] = ck["best_state"]
    else:
        log.write("start", step=0, model_config=mcfg, train=targs, params=sum(p.numel() for p in net.parameters()))
    del ck

    val = splits["val"]
    val_y = val.labels.astype(np.float64)

    def train_step(step):
        g = step_generator(targs["seed"] + 31, step)
        torch.manual_seed(targs["seed"] * 7 + step)
        idx = batch_indices(targs["seed"] + 31, step, len(train), targs["batch"])
        b = len(idx)
        shifts = torch.randint(-4, 5, (b, 2), generator=g).numpy()
        lr = shifted_lr(train.u8[idx], shifts, n)
        flip = (torch.rand(b, generator=g) < 0.5).numpy()
        lr[flip] = lr[flip][..., ::-1]
        lr = torch.from_numpy(np.ascontiguousarray(lr))
        contrast = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=g)
        bright = 0.1 * (2 * torch.rand(b, 1, 1, 1, generator=g) - 1)
        noise = 0.02 * torch.rand(b, 1, 1, 1, generator=g) * torch.randn(lr.shape, generator=g)
        mean = lr.mean(dim=(1, 2, 3), keepdim=True)
        lr = (lr - mean) * contrast + mean + bright + noise
        y = torch.from_numpy(train.labels[idx]).float()
        lr, y = lr.to(device), y.to(device)
        loss = Fn.binary_cross_entropy_with_logits(net(lr), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, {}

    def validate(model):
        z = logits_of(model, val.lr[scale], device)
        vl = float(Fn.binary_cross_entropy_with_logits(torch.from_numpy(z), torch.from_numpy(val_y)))
        acc = ((z > 0).astype(int) == val.labels).mean(0)
        return vl, {"bce": vl, "acc": dict(zip(mcfg["attributes"], acc.tolist()))}

    def on_best(step, r):
        best["state"] = copy.deepcopy({k: v.cpu() for k, v in net.state_dict().items()})

    if not run.run(train_step, validate, on_best):
        return 0
    step, best_state = run.step, best["state"]
    # calibration on val, report on test, with the best-on-val weights
    net.load_state_dict(best_state)
    zv = logits_of(net, val.lr[scale], device)
    temps = [fit_temperature(zv[:, i], val_y[:, i]) for i in range(zv.shape[1])]
    test = splits["test"]
    zt = logits_of(net, test.lr[scale], device)
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    report = {
        "temperatures": dict(zip(mcfg["attributes"], temps)),
        "val_calibrated": metrics(sig(zv / np.array(temps)), val.labels, mcfg["attributes"]),
        "test_uncalibrated": metrics(sig(zt), test.labels, mcfg["attributes"]),
        "test_calibrated": metrics(sig(zt / np.array(temps)), test.labels, mcfg["attributes"]),
        "test_majority_acc": {a: float(max(test.labels[:, i].mean(), 1 - test.labels[:, i].mean()))
                              for i, a in enumerate(mcfg["attributes"])},
    }
    common.atomic_torch_save({"kind": "lr_attrs", "step": step, "weights": best_state, "temperatures": temps,
                              "model_config": mcfg, "train": targs, "report": report}, os.path.join(out, "final.pt"))
    common.atomic_write_text(os.path.join(out, "report.json"), json.dumps(report, indent=1) + "\n")
    log.write("report", step=step, **report)
    print(json.dumps(report, indent=1))
    return 0


def export(ckpt, out, name=None):
    """LR attribute ONNX: lr [B,3,n,n] -> probs [B,3] (calibrated)."""
    import onnx

    from ..onnxmeta import ATTRIBUTE_LABELS, set_metadata
    from .export import DATA_TERMS, LICENSE, _check_contract, _to_onnx

    net, ck, path = load_weights(ckpt)
    model = Calibrated(net, ck["temperatures"]).eval()
    n = ck["model_config"]["lr_size"]
    x = torch.rand(2, 3, n, n, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)
    if not torch.isfinite(ref).all():
        raise UserError(f"{path}: non-finite probabilities")
    m = _to_onnx(model, (x,), ("lr",), ("probs",), {"lr": {0: "batch"}, "probs": {0: "batch"}})
    attrs = ck["model_config"]["attributes"]
    rep = ck["report"]
    scale = ck["train"]["scale"]
    set_metadata(
        m, "lr_attrs", name=name or f"srdgd-lr-attrs-x{scale}",
        attributes=list(attrs), attribute_labels={k: ATTRIBUTE_LABELS[k] for k in attrs},
        scale=scale, lr_size=n, crop=cropmod.metadata(), input_range="0,1",
        provenance=(f"trained by srdgd models/train/lr_attrs.py on CelebA aligned subset (4,800 train images), "
                    f"{ck['step']} steps, temperature-scaled on val (600 images)"),
        weights_source=f"{os.path.basename(os.path.dirname(os.path.abspath(path)))}/{os.path.basename(path)}",
        license=LICENSE, data_terms=DATA_TERMS,
        temperatures=rep["temperatures"],
        test_accuracy={a: round(v["acc"], 4) for a, v in rep["test_calibrated"].items()},
        test_ece={a: round(v["ece"], 4) for a, v in rep["test_calibrated"].items()},
        resample="LR: antialiased bilinear downscale of the 128x128 crop (models/data/resample.py)",
        output="probs[b, a] = calibrated probability that attribute a has label 1",
    )
    onnx.checker.check_model(m)
    _check_contract(m, ("lr",), ("probs",))
    tmp = out + ".tmp"
    onnx.save(m, tmp)
    os.replace(tmp, out)
    return {"out": out, "checkpoint": path, "bytes": os.path.getsize(out)}
