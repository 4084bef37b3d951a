"""train-score: train an SRDG conditional score model (VE-SDE, DSM) on the CelebA aligned subset.

    /usr/bin/python3 -m models train-score --scale 8 --out models/runs/score_x8 [--ch 48 ...]
    /usr/bin/python3 -m models train-score --out models/runs/score_x8 --resume [--steps N]
    /usr/bin/python3 -m models train-score --out models/runs/score_x8 --eval test

Objective (spec/SRDG.md section 3): sigma = sigma_min (sigma_max/sigma_min)^t, t ~ U(eps, 1),
x_t = x_0 + sigma z, loss = 0.5 ||sigma s + z||^2 (optimised as its per-pixel mean: the sum
over the 3x128x128 pixels divided by 49152, a constant factor). The network is the
EDM-preconditioned U-Net of models/unet.py. Adam (lr 2e-4, linear warm-up), gradient-norm
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
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch

from .. import data as datamod
from .. import unet
from . import common
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
    ck_path = os.path.join(out, "checkpoint.pt")

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

    resume = args.resume and os.path.exists(ck_path)
    if not resume and os.path.exists(ck_path):
        raise UserError(f"{ck_path} exists: pass --resume to continue it or choose another --out")
    if args.resume and not resume:
        print(f"train-score: no checkpoint in {out}, starting a new run", file=sys.stderr)
    os.makedirs(os.path.join(out, "snapshots"), exist_ok=True)
    log = common.JsonlLog(os.path.join(out, "train.jsonl"))

    if resume:
        ck = torch.load(ck_path, map_location="cpu")
        targs = dict(ck["train"])
        if args.steps is not None:
            targs["steps"] = args.steps
        mcfg = ck["model_config"]
    else:
        ck = None
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
    ema = copy.deepcopy(model).eval()
    for p_ in ema.parameters():
        p_.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=targs["lr"])
    step, best, elapsed = 0, math.inf, 0.0
    if resume:
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, best, elapsed = ck["step"], ck["best_val"], ck.get("elapsed", 0.0)
        bp = os.path.join(out, "best.pt")
        if os.path.exists(bp):  # best.pt may be newer than the checkpoint (killed in between)
            best = min(best, torch.load(bp, map_location="cpu").get("val", {}).get("dsm", math.inf))
        common.set_rng_state(ck["rng"], device)
        log.truncate_after(step)
        log.write("resume", step=step, steps=targs["steps"], device=str(device), threads=torch.get_num_threads(),
                  amp=str(amp))
    else:
        cfg = {"model_config": mcfg, "train": targs, "params": unet.param_count(model),
               "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "eps": EPS}
        common.atomic_write_text(os.path.join(out, "config.json"), json.dumps(cfg, indent=1) + "\n")
        x0, y = val.batch(np.arange(len(val)), scale)
        base_psnr = float(np.mean(10 * np.log10(1.0 / np.maximum(((np.clip(y, 0, 1) - x0) ** 2).mean(axis=(1, 2, 3)), 1e-10))))
        log.write("start", step=0, device=str(device), threads=torch.get_num_threads(), amp=str(amp),
                  val_psnr_y=base_psnr, **cfg)
    del ck

    val_idx = np.random.default_rng(12345).permutation(len(val))[:max(1, min(targs["val_n"], len(val)))]
    preload = args.preload == "on" or (args.preload == "auto" and device.type == "cuda")
    on_device = DeviceBatches(train, scale, device) if preload else None

    def save_checkpoint(reason):
        state = {"step": step, "model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                 "rng": common.rng_state(device), "best_val": best, "elapsed": elapsed,
                 "model_config": mcfg, "train": targs, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX}
        common.atomic_torch_save(state, ck_path)
        log.write("ckpt", step=step, reason=reason)

    def validate(idx, tag):
        nonlocal best
        r = evaluate(ema, val, scale, idx, device)
        improved = tag == "val" and r["dsm"] < best
        if improved:
            best = r["dsm"]
            common.atomic_torch_save({"step": step, "ema": ema.state_dict(), "model_config": mcfg, "train": targs,
                                      "val": r, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX},
                                     os.path.join(out, "best.pt"))
        log.write(tag, step=step, best=improved, **r)
        return r

    last_ckpt_time = time.monotonic()
    t_window, n_window, loss_window = time.monotonic(), 0, 0.0
    with common.StopFlag() as stop:
        while step < targs["steps"] and not stop.stop:
            t0 = time.monotonic()
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
            model.train()
            lr = lr_at(step, targs["lr"], targs["warmup"])
            for pg in opt.param_groups:
                pg["lr"] = lr
            with common.autocast(device, amp):
                loss = dsm_loss(model, x0, y, sigma, z).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), targs["grad_clip"])
            opt.step()
            d = ema_decay(step, targs["ema"])
            with torch.no_grad():
                ep, mp = list(ema.parameters()), [q.detach() for q in model.parameters()]
                torch._foreach_mul_(ep, d)
                torch._foreach_add_(ep, mp, alpha=1 - d)
                for be, bm in zip(ema.buffers(), model.buffers()):
                    be.copy_(bm)
            step += 1
            # The loss is read back (a device sync) only at log and checkpoint steps.
            loss_window = loss_window + loss.detach().float()
            elapsed += time.monotonic() - t0
            n_window += 1
            out_of_time = args.max_minutes > 0 and time.monotonic() - started > 60 * args.max_minutes
            ckpt_due = (step % targs["ckpt_steps"] == 0
                        or time.monotonic() - last_ckpt_time > 60 * targs["ckpt_minutes"])
            if step % targs["log_steps"] == 0 or step == targs["steps"] or ckpt_due or out_of_time:
                lv = float(loss_window) / n_window
                if not math.isfinite(lv):
                    log.write("error", step=step, msg="non-finite loss")
                    raise RuntimeError(f"train-score: non-finite loss by step {step}; last checkpoint is intact")
                now = time.monotonic()
                log.write("train", step=step, loss=lv, lr=lr, grad_norm=float(gnorm),
                          sec_per_step=(now - t_window) / n_window, elapsed=round(elapsed, 1))
                t_window, n_window, loss_window = now, 0, 0.0
            if targs["val_steps"] and step % targs["val_steps"] == 0:
                validate(val_idx, "val")
            if targs["snapshot_steps"] and step % targs["snapshot_steps"] == 0:
                common.atomic_torch_save({"step": step, "ema": ema.state_dict(), "model_config": mcfg, "train": targs},
                                         os.path.join(out, "snapshots", f"step_{step:07d}.pt"))
            if ckpt_due:
                save_checkpoint("periodic")
                last_ckpt_time = time.monotonic()
            if out_of_time:
                log.write("time", step=step, max_minutes=args.max_minutes)
                break
        if stop.stop:
            save_checkpoint(f"signal {stop.signum}")
            log.write("stop", step=step, signal=stop.signum)
            print(f"train-score: stopped by signal {stop.signum} at step {step}; resume with --resume", file=sys.stderr)
            return 0
    if not (targs["val_steps"] and step % targs["val_steps"] == 0):
        validate(val_idx, "val")
    save_checkpoint("done")
    log.write("done", step=step, elapsed=round(elapsed, 1), best_val=best)
    return 0
