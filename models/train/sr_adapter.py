"""train-sr-adapter: an SR-aware embedding, a small network on the embedder's output.

    /usr/bin/python3 -m models train-sr-adapter --scale 8 \
        --train models/runs/utk-x8/cache.jsonl --eval models/runs/eval-sr-x8/cache.jsonl \
        --labels ../shared/data/celeba-aligned/labels.csv --out models/runs/sr_adapter_x8

It maps the descriptor of a super-resolved face, SR(LR(face)), towards the frozen embedder's
descriptor of the HR face. It runs on restored probes only; the gallery stays HR.

Data: the `cache.jsonl` of `srdgd eval` runs (descriptors of the HR faces, method `hr`, and of the
SR outputs, method `--method`, per probe image). Training: UTKFace faces re-framed to the model crop
(no CelebA person, no identities: each face is its own instance); validation: a hashed 10 % of them.
Evaluation (--eval): a CelebA run's gallery (HR) and SR probes, with and without the adapter in the
same run: AUC, Rank-1/5/10, DIR at FPIR <= 1 % (best threshold of a 0.001 sweep, margin 0, as
eval/bakeoff_test.go). The CelebA split's identities are also the SR models' train identities.

Network: x (L2-normalised) -> x + W2 GELU(W1 x + b1) + b2 -> L2 normalise; W2 starts at zero so the
untrained adapter is the identity. Loss: (1 - cos(f(sr), hr)) + hr_weight * (1 - cos(f(hr), hr))
(HR descriptors stay where they were) + nce_weight * InfoNCE(f(sr) against the batch's HR
descriptors, temperature 0.05). Selection: validation SR -> HR instance Rank-1 (ties: mean cosine).
ONNX: input `embedding` [B,D] -> output `adapted` [B,D], unit length.
"""
import argparse
import copy
import csv
import hashlib
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

from . import common, loop
from .common import UserError

TRAIN_KEYS = ("scale", "method", "steps", "batch", "lr", "weight_decay", "hidden", "hr_weight", "nce_weight",
              "seed", "val_steps", "log_steps", "ckpt_steps")
LICENSE = "weights: trained by srdgd (project licence); inherits the terms of its data"
DATA_TERMS = ("UTKFace (non-commercial research only; images stay with their owners), as descriptors of the "
              "face embedder named in srdgd.embedder_model")


class Adapter(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        d, h = cfg["dim"], cfg["hidden"]
        self.up = nn.Linear(d, h)
        self.down = nn.Linear(h, d)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, x):
        x = Fn.normalize(x, dim=1)
        return Fn.normalize(x + self.down(Fn.gelu(self.up(x))), dim=1)


def read_cache(path, method, scale):
    """{image: hr vector}, {image: restored vector}, {image: gallery vector}, embedder model id."""
    hr, sr, gal, models = {}, {}, {}, set()
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("embedding") is None:
                continue
            models.add(r.get("model", ""))
            v = np.asarray(r["embedding"], dtype=np.float32)
            if r["kind"] == "gallery":
                gal[r["image"]] = v
            elif r.get("scale") == scale and r["method"] == "hr":
                hr[r["image"]] = v
            elif r.get("scale") == scale and r["method"] == method:
                sr[r["image"]] = v
    if len(models) != 1:
        raise UserError(f"{path}: descriptors of {len(models)} embedder models {sorted(models)}, want one")
    return hr, sr, gal, models.pop()


def is_val(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 10 == 0


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def identification(probe, probe_id, gallery, gallery_id):
    """AUC, Rank-1/5/10 and DIR at FPIR <= 1 % (margin 0) of unit probe and gallery descriptors."""
    sim = probe @ gallery.T
    gid = np.asarray(gallery_id)
    same = np.asarray(probe_id)[:, None] == gid[None, :]
    gen, imp = sim[same], sim[~same]
    order = np.argsort(np.concatenate([gen, imp]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    auc = (ranks[:len(gen)].sum() - len(gen) * (len(gen) + 1) / 2) / (len(gen) * len(imp))
    own = np.where(same, sim, -np.inf).max(1)
    rank = (sim > own[:, None]).sum(1) + 1
    top = sim.max(1)
    correct = sim.argmax(1) == np.argmax(same, 1)
    unknown = np.where(same, -np.inf, sim).max(1)
    best = (0.0, float("nan"), 0.0)
    for t in np.arange(-1.0, 1.0, 0.001):
        fpir = float((unknown >= t).mean())
        dirv = float(((top >= t) & correct).mean())
        if fpir <= 0.01 and dirv > best[0]:
            best = (dirv, float(t), fpir)
    return {"auc": float(auc), "rank1": float((rank <= 1).mean()), "rank5": float((rank <= 5).mean()),
            "rank10": float((rank <= 10).mean()), "dir": best[0], "threshold": best[1], "fpir": best[2]}


def celeba_eval(path, labels, method, scale):
    hr, sr, gal, model = read_cache(path, method, scale)
    ident = {}
    with open(labels) as f:
        for row in csv.DictReader(f):
            ident[row["image"]] = row["celeba_identity"]
    g_names = sorted(gal)
    p_names = sorted(sr)
    if not p_names:
        raise UserError(f"{path}: no {method} x{scale} descriptors")
    return (unit(np.stack([sr[n] for n in p_names])), [ident[n] for n in p_names],
            unit(np.stack([gal[n] for n in g_names])), [ident[n] for n in g_names], model)


def adapt(model, x, device):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x).to(device)).cpu().numpy()


def build_parser():
    p = argparse.ArgumentParser(prog="train-sr-adapter", description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=int, choices=(8, 16), required=True)
    p.add_argument("--train", action="append", required=True, help="cache.jsonl of srdgd eval runs on UTKFace (repeatable)")
    p.add_argument("--eval", help="cache.jsonl of a srdgd eval run on CelebA (gallery + SR probes)")
    p.add_argument("--labels", help="CelebA labels.csv (identities of --eval)")
    p.add_argument("--method", default="sr-fast-unguided", help="the restored probes' method in the caches")
    p.add_argument("--out", required=True)
    p.add_argument("--onnx", help="write the best adapter here (ONNX with srdgd metadata)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--hr-weight", type=float, default=0.5)
    p.add_argument("--nce-weight", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--val-steps", type=int, default=100)
    p.add_argument("--log-steps", type=int, default=100)
    p.add_argument("--ckpt-steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    return p


def load_pairs(paths, method, scale):
    hrs, srs, names, models = [], [], [], set()
    for path in paths:
        hr, sr, _, model = read_cache(path, method, scale)
        models.add(model)
        for n in sorted(set(hr) & set(sr)):
            hrs.append(hr[n])
            srs.append(sr[n])
            names.append(n)
    if len(models) != 1:
        raise UserError(f"--train caches hold descriptors of {sorted(models)}: want one embedder")
    if len(names) < 50:
        raise UserError(f"{len(names)} HR/{method} x{scale} pairs in --train, want at least 50")
    return unit(np.stack(hrs)), unit(np.stack(srs)), names, models.pop()


def main(argv):
    args = build_parser().parse_args(argv)
    common.set_threads(args.threads)
    device = common.pick_device(args.device)
    ck, log = loop.open_run("train-sr-adapter", args.out, args.resume)
    if ck is not None:
        targs, mcfg = loop.resumed_train_args(ck, args.steps), ck["model_config"]
    else:
        targs = {k: getattr(args, k) for k in TRAIN_KEYS}
        mcfg = None
    hr, sr, names, embedder = load_pairs(args.train, targs["method"], targs["scale"])
    val = np.array([is_val(n) for n in names])
    mcfg = mcfg or {"dim": int(hr.shape[1]), "hidden": targs["hidden"], "embedder_model": embedder}
    if mcfg["embedder_model"] != embedder or mcfg["dim"] != hr.shape[1]:
        raise UserError(f"--train descriptors are of {embedder} ({hr.shape[1]}-d), the run's of {mcfg['embedder_model']}")
    tr_hr, tr_sr = torch.from_numpy(hr[~val]).to(device), torch.from_numpy(sr[~val]).to(device)
    va_hr, va_sr = hr[val], sr[val]
    torch.manual_seed(targs["seed"])
    net = Adapter(mcfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=targs["lr"], weight_decay=targs["weight_decay"])
    best = {"state": None, "rec": None}
    run = loop.Loop("train-sr-adapter", args.out, log, device, net, opt, targs, mcfg,
                    extra_state=lambda: {"kind": "sr_adapter_run", "best_state": best["state"], "best_rec": best["rec"]})
    if ck is not None:
        run.restore(ck)
        best["state"], best["rec"] = ck["best_state"], ck["best_rec"]
    else:
        log.write("start", step=0, model_config=mcfg, train=targs, pairs=int((~val).sum()), val_pairs=int(val.sum()))
    del ck

    def train_step(step):
        g = torch.Generator().manual_seed(targs["seed"] * 100003 + step)
        idx = torch.randint(0, len(tr_hr), (min(targs["batch"], len(tr_hr)),), generator=g).to(device)
        h, s = tr_hr[idx], tr_sr[idx]
        fs, fh = net(s), net(h)
        distill = (1 - (fs * h).sum(1)).mean()
        keep = (1 - (fh * h).sum(1)).mean()
        nce = Fn.cross_entropy(fs @ h.T / 0.05, torch.arange(len(idx), device=device))
        loss = distill + targs["hr_weight"] * keep + targs["nce_weight"] * nce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, {"distill": distill.detach(), "keep": keep.detach(), "nce": nce.detach()}

    def validate(model):
        a = adapt(model, va_sr, device)
        sim = a @ va_hr.T
        r1 = float((sim.argmax(1) == np.arange(len(a))).mean())
        cos = float(np.diag(sim).mean())
        keep = float((adapt(model, va_hr, device) * va_hr).sum(1).mean())
        return -(r1 + 1e-3 * cos), {"val_rank1": r1, "val_cos": cos, "val_hr_keep": keep}

    def on_best(step, rec):
        best["state"] = copy.deepcopy({k: v.cpu() for k, v in net.state_dict().items()})
        best["rec"] = dict(rec, step=step)

    base = {"val_rank1": float(((va_sr @ va_hr.T).argmax(1) == np.arange(len(va_sr))).mean()),
            "val_cos": float((va_sr * va_hr).sum(1).mean())}
    if not run.run(train_step, validate, on_best):
        return 0
    net.load_state_dict(best["state"])
    report = {"embedder_model": embedder, "scale": targs["scale"], "method": targs["method"],
              "train_pairs": int((~val).sum()), "val_pairs": int(val.sum()),
              "val_without": base, "val_with": best["rec"]}
    if args.eval:
        if not args.labels:
            raise UserError("--eval needs --labels")
        p, pid, gal, gid, model = celeba_eval(args.eval, args.labels, targs["method"], targs["scale"])
        if model != embedder:
            raise UserError(f"--eval descriptors are of {model}, the adapter's of {embedder}")
        report["celeba_probes"], report["celeba_gallery"] = len(pid), len(gid)
        report["celeba_without"] = identification(p, pid, gal, gid)
        report["celeba_with"] = identification(adapt(net, p, device), pid, gal, gid)
    common.atomic_write_text(os.path.join(args.out, "report.json"), json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if args.onnx:
        export_onnx(net, mcfg, targs, report, args.onnx)
    return 0


def export_onnx(net, mcfg, targs, report, path):
    rec = report["val_with"]
    to_onnx(net, mcfg["dim"], path, name=f"srdgd-sr-adapter-x{targs['scale']}", scale=targs["scale"],
            embedder_model=mcfg["embedder_model"], dim=mcfg["dim"], input_range="unit-length descriptor",
            provenance=(f"trained by srdgd models/train/sr_adapter.py on {report['train_pairs']} UTKFace faces "
                        f"(re-framed to the model crop; HR and {targs['method']} x{targs['scale']} descriptors), "
                        f"step {rec['step']} of {targs['steps']}, val SR->HR instance Rank-1 {rec['val_rank1']:.3f}"),
            weights_source=f"{os.path.basename(os.path.dirname(os.path.abspath(path)))}/{os.path.basename(path)}",
            license=LICENSE, data_terms=DATA_TERMS, restored_method=targs["method"])


def to_onnx(net, size, path, check=True, **meta):
    """Export an Adapter: input `embedding` [B,size] -> output `adapted` [B,size], srdgd metadata
    (check=False: without the contract check, for test fixtures that leave a key out)."""
    import onnx

    from ..onnxmeta import set_metadata

    net = net.cpu().eval()
    tmp = path + ".tmp"
    torch.onnx.export(net, torch.zeros(1, size), tmp, input_names=["embedding"], output_names=["adapted"],
                      dynamic_axes={"embedding": {0: "batch"}, "adapted": {0: "batch"}}, opset_version=13)
    m = onnx.load(tmp)
    os.remove(tmp)
    if check:
        set_metadata(m, "sr_adapter", **meta)
    else:
        for k, v in sorted(dict(kind="sr_adapter", contract="1", **meta).items()):
            p = m.metadata_props.add()
            p.key, p.value = "srdgd." + k, str(v)
    onnx.save(m, path)
