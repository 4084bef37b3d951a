"""train-score: train an SRDG conditional score model (VE-SDE, DSM) on the CelebA aligned subset.

    /usr/bin/python3 -m models train-score --scale 8 --out models/runs/score_x8 [--ch 48 ...]
    /usr/bin/python3 -m models train-score --out models/runs/score_x8 --resume [--steps N]
    /usr/bin/python3 -m models train-score --out models/runs/score_x8 --eval test

Objective (spec/SRDG.md section 3): sigma = sigma_min (sigma_max/sigma_min)^t, t ~ U(eps, 1),
x_t = x_0 + sigma z, loss = 0.5 ||sigma s + z||^2 (optimised as its per-pixel mean: the sum
over the 3x128x128 pixels divided by 49152, a constant factor). The network is the
EDM-preconditioned U-Net of models/nets/unet.py. Adam (lr 2e-4, linear warm-up), gradient-norm
clip 1, EMA of the weights (decay min(0.999, (1+step)/(10+step))), horizontal flips of x_0
and y together. Train on train, select on val (EMA weights, DSM at fixed sigmas), report on test.

Files in --out (models/runs/ is gitignored):
  checkpoint.pt   latest full state (model, EMA, optimizer, step, RNG), written atomically
                  every --ckpt-steps steps, every --ckpt-minutes minutes, at the end, and on
                  SIGTERM/SIGINT. A kill at any moment leaves the previous checkpoint intact.
  best.pt         EMA weights + config of the best validation DSM so far
  snapshots/      EMA weights every --snapshot-steps steps
  train.jsonl     one JSON object per line: start/resume, train (loss, lr, grad norm, s/step),
                  val (per-sigma DSM and denoised PSNR), ckpt, stop, done
  config.json     the run's configuration
Randomness is a pure function of (seed, step): the batch order is a per-epoch permutation
from (seed, epoch), and noise, sigmas and flips come from a generator seeded by (seed, step),
so a resumed run continues exactly as an uninterrupted one.
"""
import argparse
import json
import os
import time

import numpy as np
import torch

from ..data import celeba as datamod
from ..nets import unet
from . import common, loop
from .common import UserError

SIGMA_MIN, SIGMA_MAX, EPS = 0.01, 348.0, 1e-5
VAL_SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 348.0)
PIXELS = 3 * 128 * 128


def build_parser():
    p = argparse.ArgumentParser(prog="models train-score", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, choices=(8, 16), help="8: 16x16 -> 128, 16: 8x8 -> 128")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    p.add_argument("--eval", metavar="SPLIT", choices=("val", "test"),
                   help="evaluate best.pt (or checkpoint EMA) on the whole split and exit")
    p.add_argument("--ckpt", default=None, help="with --eval: a .pt file instead of --out's best.pt")
    p.add_argument("--eval-n", type=int, default=0, help="with --eval: only the first N images (0: all)")
    p.add_argument("--sample-n", type=int, default=0,
                   help="with --eval: also super-resolve this many images with a deterministic Heun "
                        "probability-flow sampler and report PSNR against HR (a sanity check, not the "
                        "SRDG reference sampler)")
    p.add_argument("--sample-steps", type=int, default=32)
    p.add_argument("--sample-png", default=None, help="write HR | y | SR rows of the sampled images here")
    g = p.add_argument_group("architecture (ignored on --resume)")
    g.add_argument("--ch", "--width", dest="ch", type=int, default=48)
    g.add_argument("--ch-mult", default="1,2,2,2")
    g.add_argument("--blocks", type=int, default=1)
    g.add_argument("--no-attn", action="store_true")
    g.add_argument("--patch", type=int, default=2, choices=(1, 2))
    g.add_argument("--emb", type=int, default=128)
    g.add_argument("--fourier-scale", type=float, default=1.0)
    g.add_argument("--dropout", type=float, default=0.0)
    g.add_argument("--sigma-data", type=float, default=None, help="default: measured on train")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=int, default=None, help="total steps (default 100000; may be raised on --resume)")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--warmup", type=int, default=1000)
    t.add_argument("--ema", type=float, default=0.999)
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    t.add_argument("--preload", default="auto", choices=("auto", "on", "off"),
                   help="hold the whole split (HR and bicubic-upsampled LR) on the device and draw the noise "
                        "there: auto = on for CUDA (the host would otherwise be the bottleneck)")
    t.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop after this many minutes of this invocation (validate, checkpoint, exit 0); 0: no limit")
    t.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                   help="mixed precision for the training forward/backward (weights, loss, EMA stay float32); "
                        "auto: bfloat16 on CPUs with AMX/AVX512-BF16 and on CUDA GPUs that support it")
    t.add_argument("--log-steps", type=int, default=25)
    t.add_argument("--ckpt-steps", type=int, default=500)
    t.add_argument("--ckpt-minutes", type=float, default=10.0)
    t.add_argument("--snapshot-steps", type=int, default=5000)
    t.add_argument("--val-steps", type=int, default=2000, help="0: validate only at the end")
    t.add_argument("--val-n", type=int, default=64, help="val images per periodic validation")
    t.add_argument("--cache", default=datamod.DEFAULT_CACHE)
    t.add_argument("--data", default=datamod.DEFAULT_DATA)
    return p


def sigma_of_t(t):
    return SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** t


def dsm_loss(model, x0, y, sigma, z):
    """Per-sample SRDG DSM loss 0.5 ||sigma s + z||^2, as a mean over pixels: [B]."""
    s = model(x0 + sigma[:, None, None, None] * z, y, sigma).float()
    return 0.5 * ((sigma[:, None, None, None] * s + z) ** 2).mean(dim=(1, 2, 3))


def step_generator(seed, step, device="cpu"):
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + step) % (2 ** 63))


def batch_indices(seed, step, n, batch):
    per_epoch = max(1, n // batch)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    if n < batch:
        perm = np.resize(perm, batch)
    return perm[k * batch:(k + 1) * batch]


class DeviceBatches:
    """A split held on the device: x0 and y = bicubic-upsampled LR, float32 NCHW. A batch is a
    gather plus a mirror there; the result equals Split.batch (the upsampling commutes with the
    mirror: the bicubic kernel is symmetric)."""

    def __init__(self, split, scale, device, chunk=256):
        xs, ys = [], []
        for i in range(0, len(split), chunk):
            x0, y = split.batch(np.arange(i, min(i + chunk, len(split))), scale)
            xs.append(torch.from_numpy(x0).to(device))
            ys.append(torch.from_numpy(y).to(device))
        self.x0, self.y, self.device = torch.cat(xs), torch.cat(ys), device

    def batch(self, idx, flip):
        i = torch.as_tensor(np.asarray(idx), device=self.device)
        x0, y = self.x0[i], self.y[i]
        f = torch.as_tensor(np.asarray(flip, bool), device=self.device)[:, None, None, None]
        return torch.where(f, x0.flip(-1), x0), torch.where(f, y.flip(-1), y)


def measure_sigma_data(split, scale, n=512):
    idx = np.arange(min(n, len(split)))
    x0, y = split.batch(idx, scale)
    return float(np.std(x0 - y))


@torch.no_grad()
def evaluate(model, split, scale, idx, device, batch=16, sigmas=VAL_SIGMAS, seed=999):
    """DSM loss (per-pixel mean) and denoised PSNR per sigma on split[idx], fixed noise."""
    model.eval()
    res = {}
    for si, sig in enumerate(sigmas):
        tot, psnr, cnt = 0.0, 0.0, 0
        for b in range(0, len(idx), batch):
            bi = idx[b:b + batch]
            x0, y = split.batch(bi, scale)
            g = torch.Generator().manual_seed(seed * 7919 + si * 104729 + b)
            z = torch.randn(x0.shape, generator=g)
            x0, y, z = torch.from_numpy(x0).to(device), torch.from_numpy(y).to(device), z.to(device)
            sigma = torch.full((len(bi),), sig, device=device)
            x_t = x0 + sig * z
            s = model(x_t, y, sigma)
            tot += float((0.5 * ((sig * s + z) ** 2).mean(dim=(1, 2, 3))).sum())
            d = model.denoise(x_t, y, sigma).clamp(0, 1)
            mse = ((d - x0) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
            psnr += float((10 * torch.log10(1.0 / mse)).sum())
            cnt += len(bi)
        res[f"{sig:g}"] = {"dsm": tot / cnt, "psnr": psnr / cnt}
    dsm = float(np.mean([v["dsm"] for v in res.values()]))
    return {"dsm": dsm, "per_sigma": res}


def psnr(a, b):
    mse = np.maximum(((np.asarray(a, np.float64) - b) ** 2).mean(axis=(1, 2, 3)), 1e-12)
    return 10 * np.log10(1.0 / mse)


@torch.no_grad()
def heun_sample(model, y, steps, seed=0, rho=7.0):
    """Deterministic probability-flow ODE (VE: dx/dsigma = (x - D)/sigma), Heun steps on the
    EDM rho-schedule from sigma_max to sigma_min, then one last denoise. x_T ~ N(0, sigma_max^2)."""
    g = torch.Generator().manual_seed(seed)
    b = y.shape[0]
    i = torch.arange(steps, dtype=torch.float64)
    sig = (SIGMA_MAX ** (1 / rho) + i / max(1, steps - 1) * (SIGMA_MIN ** (1 / rho) - SIGMA_MAX ** (1 / rho))) ** rho
    x = y + SIGMA_MAX * torch.randn(y.shape, generator=g).to(y.device)
    for k in range(steps - 1):
        s0, s1 = float(sig[k]), float(sig[k + 1])
        d0 = (x - model.denoise(x, y, torch.full((b,), s0, device=y.device))) / s0
        x1 = x + (s1 - s0) * d0
        d1 = (x1 - model.denoise(x1, y, torch.full((b,), s1, device=y.device))) / s1
        x = x + (s1 - s0) * 0.5 * (d0 + d1)
    return model.denoise(x, y, torch.full((b,), SIGMA_MIN, device=y.device)).clamp(0, 1)


def sample_eval(model, split, scale, idx, device, steps, png=None):
    model.eval()
    x0, y = split.batch(idx, scale)
    sr = torch.cat([heun_sample(model, torch.from_numpy(y[i:i + 8]).to(device), steps, seed=i).cpu()
                    for i in range(0, len(idx), 8)]).numpy()
    if png:
        from PIL import Image

        rows = [np.concatenate(list(np.moveaxis(a, 1, -1)), axis=1) for a in (x0, np.clip(y, 0, 1), sr)]
        Image.fromarray((np.concatenate(rows, axis=0) * 255 + 0.5).astype(np.uint8)).save(png)
    return {"n": len(idx), "steps": steps, "evaluations_per_image": 2 * (steps - 1) + 1,
            "psnr_sr": float(psnr(sr, x0).mean()), "psnr_y": float(psnr(np.clip(y, 0, 1), x0).mean())}


def lr_at(step, base, warmup):
    return base * min(1.0, (step + 1) / max(1, warmup))


def ema_decay(step, ema):
    return min(ema, (1.0 + step) / (10.0 + step))


def _model_config(args, sigma_data):
    return unet.make_config(ch=args.ch, ch_mult=[int(m) for m in args.ch_mult.split(",")], blocks=args.blocks,
                            attn=not args.no_attn, patch=args.patch, emb=args.emb,
                            fourier_scale=args.fourier_scale, dropout=args.dropout, sigma_data=sigma_data)


TRAIN_KEYS = ("scale", "steps", "batch", "lr", "warmup", "ema", "grad_clip", "seed", "val_steps", "val_n",
              "ckpt_steps", "ckpt_minutes", "snapshot_steps", "log_steps")


def load_weights(path, map_location="cpu"):
    """(ScoreModel with EMA weights, checkpoint dict) from checkpoint.pt / best.pt / a run dir."""
    ck, path = common.load_checkpoint(path, "score", map_location)
    model = unet.ScoreModel(ck["model_config"])
    model.load_state_dict(ck["ema"])
    model.eval()
    return model, ck, path


def main(argv):
    args = build_parser().parse_args(argv)
    common.set_threads(args.threads)
    device = common.pick_device(args.device)
    amp = common.amp_dtype(args.amp, device)
    started = time.monotonic()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out = args.out

    if args.eval:
        model, ck, path = load_weights(args.ckpt or out)
        model.to(device)
        scale = ck["train"]["scale"]
        split = datamod.load_split(args.eval, scales=(scale,), data_dir=args.data, cache_dir=args.cache)
        n = min(args.eval_n or len(split), len(split))
        r = evaluate(model, split, scale, np.arange(n), device)
        r.update(split=args.eval, checkpoint=path, step=ck["step"], n=n)
        if args.sample_n:
            r["sample"] = sample_eval(model, split, scale, np.arange(min(args.sample_n, len(split))), device,
                                      args.sample_steps, args.sample_png)
        print(json.dumps(r, indent=1))
        return 0

    ck, log = loop.open_run("train-score", out, args.resume)
    if ck is not None:
        targs, mcfg = loop.resumed_train_args(ck, args.steps), ck["model_config"]
    else:
        if args.scale is None:
            raise UserError("--scale is required for a new run")
        targs = {k: getattr(args, k) for k in TRAIN_KEYS}
        if targs["steps"] is None:
            targs["steps"] = 100000
        mcfg = None
    scale = targs["scale"]
    train = datamod.load_split("train", scales=(scale,), data_dir=args.data, cache_dir=args.cache)
    val = datamod.load_split("val", scales=(scale,), data_dir=args.data, cache_dir=args.cache)
    if mcfg is None:
        sd = args.sigma_data if args.sigma_data is not None else measure_sigma_data(train, scale)
        mcfg = _model_config(args, round(sd, 4))

    torch.manual_seed(targs["seed"])
    model = unet.ScoreModel(mcfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=targs["lr"])
    consts = {"sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX}
    run = loop.Loop("train-score", out, log, device, model, opt, targs, mcfg, ema=targs["ema"], ema_decay=ema_decay,
                    extra_state=lambda: dict(consts))
    if ck is not None:
        run.restore(ck, best_metric="dsm", device=str(device), threads=torch.get_num_threads(), amp=str(amp))
    else:
        cfg = {"model_config": mcfg, "train": targs, "params": unet.param_count(model), **consts, "eps": EPS}
        common.atomic_write_text(os.path.join(out, "config.json"), json.dumps(cfg, indent=1) + "\n")
        x0, y = val.batch(np.arange(len(val)), scale)
        base_psnr = float(np.mean(10 * np.log10(1.0 / np.maximum(((np.clip(y, 0, 1) - x0) ** 2).mean(axis=(1, 2, 3)), 1e-10))))
        log.write("start", step=0, device=str(device), threads=torch.get_num_threads(), amp=str(amp),
                  val_psnr_y=base_psnr, **cfg)
    del ck

    val_idx = np.random.default_rng(12345).permutation(len(val))[:max(1, min(targs["val_n"], len(val)))]
    preload = args.preload == "on" or (args.preload == "auto" and device.type == "cuda")
    on_device = DeviceBatches(train, scale, device) if preload else None

    def train_step(step):
        g = step_generator(targs["seed"], step)
        torch.manual_seed(targs["seed"] * 7 + step)  # dropout and any other global-RNG use
        idx = batch_indices(targs["seed"], step, len(train), targs["batch"])
        flip = torch.rand(len(idx), generator=g).numpy() < 0.5
        t = EPS + (1 - EPS) * torch.rand(len(idx), generator=g, dtype=torch.float64)
        sigma = sigma_of_t(t).float().to(device)
        if on_device is not None:
            x0, y = on_device.batch(idx, flip)
            z = torch.randn(x0.shape, generator=step_generator(targs["seed"], step, device), device=device)
        else:
            x0, y = train.batch(idx, scale, flip)
            z = torch.randn(x0.shape, generator=g)
            x0, y, z = torch.from_numpy(x0).to(device), torch.from_numpy(y).to(device), z.to(device)
        lr = lr_at(step, targs["lr"], targs["warmup"])
        for pg in opt.param_groups:
            pg["lr"] = lr
        with common.autocast(device, amp):
            loss = dsm_loss(model, x0, y, sigma, z).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), targs["grad_clip"])
        opt.step()
        return loss, {"lr": lr, "grad_norm": gnorm}

    def validate(ema):
        r = evaluate(ema, val, scale, val_idx, device)
        return r["dsm"], r

    def on_best(step, r):
        common.atomic_torch_save({"step": step, "ema": run.ema.state_dict(), "model_config": mcfg, "train": targs,
                                  "val": r, **consts}, os.path.join(out, "best.pt"))

    run.run(train_step, validate, on_best, max_minutes=args.max_minutes, started=started)
    return 0
