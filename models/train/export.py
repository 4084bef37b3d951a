"""export: trained checkpoint -> ONNX with the srdgd metadata contract.

    /usr/bin/python3 -m models export --kind score --ckpt models/runs/score_x8 --out score_x8.onnx

--ckpt is a run directory (best.pt, else checkpoint.pt) or a .pt file; the EMA weights are
exported. Score graphs: opset 17, inputs x_t [B,3,128,128], y [B,3,128,128], sigma [B]
(float32, B dynamic) -> score [B,3,128,128]. The file is checked with onnx.checker and the
PyTorch forward of the same weights is run on a test batch (finite output). ORT parity is
checked from Go (cmd/onnxeval).
"""
import argparse
import io
import json
import os

import numpy as np
import torch

from ..data import celeba as datamod, crop
from ..onnxmeta import set_metadata
from . import common
from .common import UserError

OPSET = 17
DATA_TERMS = "CelebA: non-commercial research purposes only; models trained on it inherit these terms"
LICENSE = ("srdgd project-trained weights; because they are trained on CelebA they may be used for "
           "non-commercial research purposes only (CelebA terms)")


class _ScoreGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x_t, y, sigma):
        return self.model(x_t, y, sigma)


def _to_onnx(module, args, input_names, output_names, dynamic):
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buf, opset_version=OPSET, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic, do_constant_folding=True)
    import onnx

    return onnx.load_from_string(buf.getvalue())


def export_score(ckpt, out, name=None, note=""):
    import onnx

    from . import score as score_mod

    model, ck, path = score_mod.load_weights(ckpt)
    model = model.float().eval()
    scale = int(ck["train"]["scale"])
    step = int(ck["step"])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 128, 128, generator=g)
    y = torch.rand(2, 3, 128, 128, generator=g)
    sigma = torch.tensor([0.05, 20.0])
    with torch.no_grad():
        ref = model(x + sigma[:, None, None, None] * torch.randn(x.shape, generator=g), y, sigma)
    if not torch.isfinite(ref).all():
        raise UserError(f"{path}: the PyTorch forward gives non-finite scores; not exporting")
    dyn = {"x_t": {0: "batch"}, "y": {0: "batch"}, "sigma": {0: "batch"}, "score": {0: "batch"}}
    m = _to_onnx(_ScoreGraph(model), (x, y, sigma), ("x_t", "y", "sigma"), ("score",), dyn)
    _fix_output_shape(m, "score", ["batch", 3, 128, 128])
    mc = ck["model_config"]
    tr = ck["train"]
    recipe = (f"EDM-preconditioned residual U-Net (ch {mc['ch']}, mult {mc['ch_mult']}, {mc['blocks']} blocks, "
              f"attn {mc['attn']}, patch {mc['patch']}, sigma_data {mc['sigma_data']}), VE-SDE DSM loss, "
              f"t~U(1e-5,1), Adam {tr['lr']} warm-up {tr['warmup']}, clip {tr['grad_clip']}, EMA {tr['ema']}, "
              f"batch {tr['batch']}, hflip, seed {tr['seed']}")
    val = ck.get("val")
    set_metadata(
        m, "score",
        name=name or f"srdgd-score-x{scale}",
        scale=scale, sigma_min=ck.get("sigma_min", score_mod.SIGMA_MIN), sigma_max=ck.get("sigma_max", score_mod.SIGMA_MAX),
        hr_size=128, lr_size=datamod.lr_size(scale), crop=crop.metadata(), input_range="0,1",
        provenance=f"trained by srdgd models/train/score.py on CelebA aligned subset (4,800 train images), "
                   f"{step} steps, {recipe}" + (f"; {note}" if note else ""),
        weights_source=f"{os.path.basename(os.path.dirname(os.path.abspath(path)))}/{os.path.basename(path)} step {step}",
        license=LICENSE, data_terms=DATA_TERMS,
        architecture={"family": "srdgd-unet-edm-residual", **mc},
        val_dsm=("" if not val else f"{val['dsm']:.6g}"),
        resample="LR: antialiased bilinear; y: antialiased bicubic a=-0.5, float, no clipping (models/data/resample.py)",
    )
    onnx.checker.check_model(m)
    _check_contract(m, ("x_t", "y", "sigma"), ("score",))
    tmp = out + ".tmp"
    onnx.save(m, tmp)
    os.replace(tmp, out)
    return {"out": out, "checkpoint": path, "step": step, "bytes": os.path.getsize(out),
            "torch_score_absmax": float(ref.abs().max())}


def _fix_output_shape(m, name, dims):
    """Reshapes traced with -1 leave symbolic output dims; the contract fixes them."""
    for o in m.graph.output:
        if o.name == name:
            shape = o.type.tensor_type.shape
            del shape.dim[:]
            for d in dims:
                dim = shape.dim.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = d
            return
    raise RuntimeError(f"exported graph has no output {name!r}")


def _check_contract(m, inputs, outputs):
    got_in = [i.name for i in m.graph.input]
    got_out = [o.name for o in m.graph.output]
    if got_in != list(inputs) or got_out != list(outputs):
        raise RuntimeError(f"exported graph has inputs {got_in} outputs {got_out}, want {list(inputs)} -> {list(outputs)}")
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.tensor_type.elem_type != 1:  # FLOAT
            raise RuntimeError(f"{v.name}: element type {v.type.tensor_type.elem_type}, want float32")
        d0 = v.type.tensor_type.shape.dim[0]
        if not d0.dim_param:
            raise RuntimeError(f"{v.name}: batch dimension is not dynamic")


def main(argv):
    p = argparse.ArgumentParser(prog="models export", description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", required=True, choices=("score", "guidance", "lr_attrs"))
    p.add_argument("--ckpt", required=True, help="run directory or .pt file")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--name", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--note", default="", help="score: appended to the provenance (where and how long it trained)")
    args = p.parse_args(argv)
    common.set_threads(args.threads)
    if not os.path.exists(args.ckpt):
        raise UserError(f"checkpoint {args.ckpt} does not exist")
    if args.kind == "score":
        r = export_score(args.ckpt, args.out, args.name, args.note)
    elif args.kind == "guidance":
        from . import classifiers
        r = classifiers.export(args.ckpt, args.out, args.name)
    else:
        from . import lr_attrs
        r = lr_attrs.export(args.ckpt, args.out, args.name)
    print(json.dumps(r))
    return 0
