"""train-classifiers: noise-conditioned attribute classifiers for SRDG guidance, and their
guidance gradient as an explicit forward graph.

    /usr/bin/python3 -m models train-classifiers --out models/runs/cls [--steps N --resume]
    /usr/bin/python3 -m models train-classifiers --out models/runs/cls --eval test
    /usr/bin/python3 -m models export --kind guidance --ckpt models/runs/cls --out guidance.onnx

Network (one trunk, one 2-class head per attribute, attributes male, glasses, no_beard):
    h = (x_t - 0.5) / sqrt(sigma^2 + 0.3^2)
    temb = MLP(Fourier(log sigma))                       (SiLU)
    per level l (widths, default 32, 64, 96, 128; 128 -> 64 -> 32 -> 16 -> 8):
        h = SiLU(GN(conv3x3_stride2(h) + Linear_l(temb)))
        h = SiLU(GN(conv3x3(h)))
    logits[a] = Linear(flatten(h))[a]                    (no global pooling: position-aware)
Guidance (spec/SRDG.md section 4): grad = d/dx sum_a log_softmax(logits_a)[label_a], computed
by Guidance.forward with a hand-written backward pass (softmax-CE, linear, SiLU, GroupNorm,
transposed convolutions, the input scaling) so that the ONNX graph contains only forward ops.
Labels are floats: the log-probability is l * log p1 + (1 - l) * log p0, equal to
log_softmax[label] for 0/1 labels; its logit gradient is written as l sigmoid(-d) -
(1 - l) sigmoid(d), d = z1 - z0, so confident classifiers keep their tiny gradients in float32. tests/test_train_classifiers.py checks it against
torch.autograd.grad.

Training: x_t = x_0 + sigma z with sigma = 0.01 (348/0.01)^t, t ~ U(0, 1), horizontal flips,
cross-entropy summed over the three heads, AdamW, EMA; validation accuracy per attribute at
fixed sigmas (EMA weights); best.pt by mean validation cross-entropy over those sigmas.
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
from ..onnxmeta import ATTRIBUTES
from ..nets.unet import GroupNorm32
from . import common, loop
from .common import UserError
from .score import batch_indices, step_generator

SIGMA_MIN, SIGMA_MAX = 0.01, 348.0
IN_SCALE = 0.3
VAL_SIGMAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
GN_EPS = 1e-5

DEFAULTS = {"widths": [32, 64, 96, 128], "emb": 128, "fourier_scale": 1.0, "groups": 8, "attributes": list(ATTRIBUTES)}


def make_config(**kw):
    cfg = copy.deepcopy(DEFAULTS)
    for k, v in kw.items():
        if k not in DEFAULTS:
            raise ValueError(f"unknown classifier option {k!r}")
        if v is not None:
            cfg[k] = v
    return cfg


class _Fourier(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        g = torch.Generator().manual_seed(4321)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, x):
        a = x[:, None] * (2 * math.pi) * self.freqs[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


def _groups(ch, g):
    g = min(g, ch)
    while ch % g:
        g -= 1
    return g


class Classifier(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = make_config(**cfg)
        w, e = self.cfg["widths"], self.cfg["emb"]
        self.fourier = _Fourier(e, self.cfg["fourier_scale"])
        self.emb1, self.emb2 = nn.Linear(e, e), nn.Linear(e, e)
        self.down, self.conv, self.temb = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.gn_a, self.gn_b = nn.ModuleList(), nn.ModuleList()
        cin = 3
        for c in w:
            self.down.append(nn.Conv2d(cin, c, 3, stride=2, padding=1))
            self.temb.append(nn.Linear(e, c))
            self.gn_a.append(GroupNorm32(_groups(c, self.cfg["groups"]), c, eps=GN_EPS))
            self.conv.append(nn.Conv2d(c, c, 3, padding=1))
            self.gn_b.append(GroupNorm32(_groups(c, self.cfg["groups"]), c, eps=GN_EPS))
            cin = c
        self.side = 128 >> len(w)
        self.head = nn.Linear(cin * self.side * self.side, 2 * len(self.cfg["attributes"]))

    def embed(self, sigma):
        return self.emb2(Fn.silu(self.emb1(self.fourier(torch.log(sigma)))))

    def forward(self, x, sigma):
        """logits [B, A, 2]."""
        h = (x - 0.5) / torch.sqrt(sigma * sigma + IN_SCALE ** 2).reshape(-1, 1, 1, 1)
        temb = self.embed(sigma)
        for l in range(len(self.down)):
            h = Fn.silu(self.gn_a[l](self.down[l](h) + self.temb[l](temb)[:, :, None, None]))
            h = Fn.silu(self.gn_b[l](self.conv[l](h)))
        return self.head(h.flatten(1)).reshape(-1, len(self.cfg["attributes"]), 2)


def _gn_forward(u, gn):
    """GroupNorm with the normalised values and inverse std kept for the backward pass."""
    b, c, hh, ww = u.shape
    g = gn.num_groups
    ug = u.reshape(-1, g, (c // g) * hh * ww)
    mean = ug.mean(dim=2, keepdim=True)
    var = ((ug - mean) ** 2).mean(dim=2, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + gn.eps)
    xhat = ((ug - mean) * rstd).reshape(-1, c, hh, ww)
    return xhat * gn.weight[None, :, None, None] + gn.bias[None, :, None, None], xhat, rstd


def _gn_backward(gv, xhat, rstd, gn):
    b, c, hh, ww = gv.shape
    g = gn.num_groups
    gx = (gv * gn.weight[None, :, None, None]).reshape(-1, g, (c // g) * hh * ww)
    xh = xhat.reshape(-1, g, (c // g) * hh * ww)
    gu = rstd * (gx - gx.mean(dim=2, keepdim=True) - xh * (gx * xh).mean(dim=2, keepdim=True))
    return gu.reshape(-1, c, hh, ww)


def _silu_grad(v):
    s = torch.sigmoid(v)
    return s * (1.0 + v * (1.0 - s))


def _conv_backward(gu, conv, in_hw):
    """d/d(input) of conv(input) given d/d(output), as a transposed convolution.

    in_hw is the static input side (the graph is for 128x128 inputs), so the output padding
    is a constant, not a traced shape computation."""
    stride, pad, k = conv.stride[0], conv.padding[0], conv.kernel_size[0]
    out_hw = (in_hw + 2 * pad - k) // stride + 1
    op = in_hw - ((out_hw - 1) * stride - 2 * pad + k)
    return Fn.conv_transpose2d(gu, conv.weight, stride=stride, padding=pad, output_padding=op)


class Guidance(nn.Module):
    """forward(x_t, sigma, labels [B, A]) -> grad [B, 3, 128, 128], no autograd."""

    def __init__(self, classifier):
        super().__init__()
        self.c = classifier

    def forward(self, x_t, sigma, labels):
        c = self.c
        if x_t.shape[-1] != 128 or x_t.shape[-2] != 128:
            raise ValueError(f"guidance needs 128x128 inputs, got {tuple(x_t.shape)}")
        cin = (1.0 / torch.sqrt(sigma * sigma + IN_SCALE ** 2)).reshape(-1, 1, 1, 1)
        h = (x_t - 0.5) * cin
        temb = c.embed(sigma)
        saved = []
        for l in range(len(c.down)):
            hw_in = 128 >> l
            u = c.down[l](h) + c.temb[l](temb)[:, :, None, None]
            v, xa, ra = _gn_forward(u, c.gn_a[l])
            h = v * torch.sigmoid(v)
            u2 = c.conv[l](h)
            v2, xb, rb = _gn_forward(u2, c.gn_b[l])
            saved.append((hw_in, v, xa, ra, v2, xb, rb))
            h = v2 * torch.sigmoid(v2)
        a = len(c.cfg["attributes"])
        logits = c.head(h.flatten(1)).reshape(-1, a, 2)
        # d/dz of l log p1 + (1 - l) log p0 for two classes, with d = z1 - z0:
        # dz1 = l sigmoid(-d) - (1 - l) sigmoid(d), dz0 = -dz1 (no 1 - p cancellation in float32)
        d = logits[:, :, 1] - logits[:, :, 0]
        g1 = labels * torch.sigmoid(-d) - (1.0 - labels) * torch.sigmoid(d)
        g_logits = torch.stack([-g1, g1], dim=2)
        side = 128 >> len(c.down)
        g = torch.matmul(g_logits.reshape(-1, 2 * a), c.head.weight).reshape(-1, c.cfg["widths"][-1], side, side)
        for l in reversed(range(len(c.down))):
            hw_in, v, xa, ra, v2, xb, rb = saved[l]
            g = _gn_backward(g * _silu_grad(v2), xb, rb, c.gn_b[l])
            g = _conv_backward(g, c.conv[l], hw_in // 2)
            g = _gn_backward(g * _silu_grad(v), xa, ra, c.gn_a[l])
            g = _conv_backward(g, c.down[l], hw_in)
        return g * cin


def autograd_guidance(classifier, x_t, sigma, labels):
    """The same gradient through torch.autograd (for tests)."""
    x = x_t.detach().clone().requires_grad_(True)
    lp = torch.log_softmax(classifier(x, sigma), dim=2)
    onehot = torch.stack([1.0 - labels, labels], dim=2)
    (g,) = torch.autograd.grad((lp * onehot).sum(), x)
    return g


def build_parser():
    p = argparse.ArgumentParser(prog="models train-classifiers", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--eval", choices=("val", "test"))
    p.add_argument("--widths", default="32,64,96,128")
    p.add_argument("--emb", type=int, default=128)
    p.add_argument("--steps", type=int, default=None, help="default 20000")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                   help="bfloat16 autocast for the training forward/backward (see train-score --help)")
    p.add_argument("--log-steps", type=int, default=25)
    p.add_argument("--ckpt-steps", type=int, default=500)
    p.add_argument("--ckpt-minutes", type=float, default=10.0)
    p.add_argument("--val-steps", type=int, default=1000)
    p.add_argument("--val-n", type=int, default=600)
    p.add_argument("--cache", default=datamod.DEFAULT_CACHE)
    p.add_argument("--data", default=datamod.DEFAULT_DATA)
    return p


TRAIN_KEYS = ("steps", "batch", "lr", "weight_decay", "warmup", "ema", "grad_clip", "seed", "log_steps",
              "ckpt_steps", "ckpt_minutes", "val_steps", "val_n")


@torch.no_grad()
def evaluate(model, split, idx, device, sigmas=VAL_SIGMAS, batch=50, seed=77):
    model.eval()
    out = {}
    labels_all = torch.from_numpy(split.labels[idx]).to(device)
    for si, sig in enumerate(sigmas):
        logits = []
        for b in range(0, len(idx), batch):
            bi = idx[b:b + batch]
            x0 = torch.from_numpy(np.ascontiguousarray(cropmod.to_float(split.u8[bi]))).to(device)
            z = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed + 1000 * si + b)).to(device)
            logits.append(model(x0 + sig * z, torch.full((len(bi),), sig, device=device)))
        lg = torch.cat(logits)
        ce = Fn.cross_entropy(lg.reshape(-1, 2), labels_all.reshape(-1), reduction="none").reshape(-1, lg.shape[1])
        acc = (lg.argmax(2) == labels_all).float()
        # balanced accuracy: the mean of the two classes' recalls (Eyeglasses is rare)
        bal = {}
        for i, a in enumerate(model.cfg["attributes"]):
            rec = [float(acc[labels_all[:, i] == c, i].mean()) for c in (0, 1) if bool((labels_all[:, i] == c).any())]
            bal[a] = float(np.mean(rec))
        out[f"{sig:g}"] = {"ce": float(ce.mean()),
                           "acc": {a: float(acc[:, i].mean()) for i, a in enumerate(model.cfg["attributes"])},
                           "bal_acc": bal}
    return {"ce": float(np.mean([v["ce"] for v in out.values()])), "per_sigma": out}


def load_weights(path, map_location="cpu"):
    ck, path = common.load_checkpoint(path, "classifier", map_location)
    if ck.get("kind") != "classifier":
        raise UserError(f"{path} is not a classifier checkpoint (kind {ck.get('kind')!r})")
    m = Classifier(ck["model_config"])
    m.load_state_dict(ck["ema"])
    return m.eval(), ck, path


def main(argv):
    args = build_parser().parse_args(argv)
    common.set_threads(args.threads)
    device = common.pick_device(args.device)
    amp = common.amp_dtype(args.amp, device)
    out = args.out
    if args.eval:
        model, ck, path = load_weights(out)
        split = datamod.load_split(args.eval, scales=(), data_dir=args.data, cache_dir=args.cache)
        r = evaluate(model.to(device), split, np.arange(len(split)), device)
        r.update(split=args.eval, checkpoint=path, step=ck["step"], n=len(split))
        print(json.dumps(r, indent=1))
        return 0
    ck, log = loop.open_run("train-classifiers", out, args.resume)
    if ck is not None:
        targs, mcfg = loop.resumed_train_args(ck, args.steps), ck["model_config"]
    else:
        targs = {k: getattr(args, k) for k in TRAIN_KEYS}
        targs["steps"] = targs["steps"] or 20000
        mcfg = make_config(widths=[int(w) for w in args.widths.split(",")], emb=args.emb)
    train = datamod.load_split("train", scales=(), data_dir=args.data, cache_dir=args.cache)
    val = datamod.load_split("val", scales=(), data_dir=args.data, cache_dir=args.cache)
    torch.manual_seed(targs["seed"])
    model = Classifier(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=targs["lr"], weight_decay=targs["weight_decay"])
    run = loop.Loop("train-classifiers", out, log, device, model, opt, targs, mcfg, ema=targs["ema"],
                    extra_state=lambda: {"kind": "classifier"})
    if ck is not None:
        run.restore(ck, best_metric="ce", amp=str(amp))
    else:
        nparams = sum(p.numel() for p in model.parameters())
        cfg = {"model_config": mcfg, "train": targs, "params": nparams}
        common.atomic_write_text(os.path.join(out, "config.json"), json.dumps(cfg, indent=1) + "\n")
        log.write("start", step=0, device=str(device), threads=torch.get_num_threads(), amp=str(amp), **cfg)
    del ck
    val_idx = np.random.default_rng(12345).permutation(len(val))[:max(1, min(targs["val_n"], len(val)))]

    def train_step(step):
        g = step_generator(targs["seed"] + 17, step)
        torch.manual_seed(targs["seed"] * 7 + step)
        idx = batch_indices(targs["seed"] + 17, step, len(train), targs["batch"])
        flip = torch.rand(len(idx), generator=g).numpy() < 0.5
        x0 = cropmod.to_float(train.u8[idx])
        x0[flip] = x0[flip][..., ::-1]
        x0 = torch.from_numpy(np.ascontiguousarray(x0))
        t = torch.rand(len(idx), generator=g, dtype=torch.float64)
        sigma = (SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** t).float()
        z = torch.randn(x0.shape, generator=g)
        labels = torch.from_numpy(train.labels[idx])
        x0, sigma, z, labels = x0.to(device), sigma.to(device), z.to(device), labels.to(device)
        lr = targs["lr"] * min(1.0, (step + 1) / max(1, targs["warmup"]))
        for pg in opt.param_groups:
            pg["lr"] = lr
        with common.autocast(device, amp):
            logits = model(x0 + sigma[:, None, None, None] * z, sigma).float()
        loss = Fn.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1)) * logits.shape[1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), targs["grad_clip"])
        opt.step()
        return loss, {"lr": lr, "grad_norm": gn}

    def validate(ema):
        r = evaluate(ema, val, val_idx, device)
        return r["ce"], r

    def on_best(step, r):
        common.atomic_torch_save({"kind": "classifier", "step": step, "ema": run.ema.state_dict(), "model_config": mcfg,
                                  "train": targs, "val": r}, os.path.join(out, "best.pt"))

    run.run(train_step, validate, on_best)
    return 0


def export(ckpt, out, name=None):
    """Guidance ONNX: (x_t [B,3,128,128], sigma [B], labels [B,A]) -> grad [B,3,128,128]."""
    import onnx

    from ..data import crop
    from ..onnxmeta import ATTRIBUTE_LABELS, set_metadata
    from .export import DATA_TERMS, LICENSE, _check_contract, _fix_output_shape, _to_onnx

    model, ck, path = load_weights(ckpt)
    guide = Guidance(model).eval()
    a = len(model.cfg["attributes"])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 128, 128, generator=g)
    sigma = torch.tensor([0.05, 2.0])
    labels = torch.tensor([[1.0] * a, [0.0] * a])
    with torch.no_grad():
        ref = guide(x, sigma, labels)
    auto = autograd_guidance(model, x, sigma, labels)
    rel = float((ref - auto).norm() / auto.norm().clamp_min(1e-12))
    if not (torch.isfinite(ref).all() and rel < 1e-4):
        raise RuntimeError(f"{path}: hand-written guidance gradient differs from autograd (relative {rel:.3g})")
    dyn = {"x_t": {0: "batch"}, "sigma": {0: "batch"}, "labels": {0: "batch"}, "grad": {0: "batch"}}
    m = _to_onnx(guide, (x, sigma, labels), ("x_t", "sigma", "labels"), ("grad",), dyn)
    _fix_output_shape(m, "grad", ["batch", 3, 128, 128])
    attrs = model.cfg["attributes"]
    val = ck.get("val", {})
    acc = {k: v["acc"] for k, v in val.get("per_sigma", {}).items()}
    set_metadata(
        m, "guidance", name=name or "srdgd-guidance-celeba",
        attributes=list(attrs), attribute_labels={k: ATTRIBUTE_LABELS[k] for k in attrs},
        sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, hr_size=128, crop=crop.metadata(), input_range="0,1",
        provenance=(f"trained by srdgd models/train/classifiers.py on CelebA aligned subset (4,800 train images), "
                    f"{ck['step']} steps; noise-conditioned CNN {model.cfg['widths']} with GroupNorm+SiLU, one 2-class "
                    f"head per attribute; grad = sum_a d log_softmax(C_a)[label_a]/dx as a hand-written backward graph"),
        weights_source=f"{os.path.basename(os.path.dirname(os.path.abspath(path)))}/{os.path.basename(path)} step {ck['step']}",
        license=LICENSE, data_terms=DATA_TERMS, architecture={"family": "srdgd-noisy-classifier", **model.cfg},
        val_accuracy=acc, autograd_rel_error=f"{rel:.3g}",
    )
    onnx.checker.check_model(m)
    _check_contract(m, ("x_t", "sigma", "labels"), ("grad",))
    tmp = out + ".tmp"
    onnx.save(m, tmp)
    os.replace(tmp, out)
    return {"out": out, "checkpoint": path, "step": ck["step"], "bytes": os.path.getsize(out), "autograd_rel_error": rel}
