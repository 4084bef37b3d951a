"""import-sdesr: convert an sr-sde (SDE-SR) NCSN++ checkpoint into the srdgd score ONNX.

  /usr/bin/python3 -m models import-sdesr --checkpoint checkpoint_N.pth --out score.onnx [--scale 8]

The checkpoint is what marcelowds/sr-sde's utils.save_checkpoint writes:
torch.save({'optimizer', 'model', 'ema', 'step'}) in the zip format. The trainable
weights come from the EMA (ckpt['ema']['shadow_params'], a list in
model.parameters() order), exactly as sr-sde's evaluation does; the non-trainable
Fourier W comes from ckpt['model']. The architecture (nf, ch_mult, res blocks,
attention resolutions) is inferred from the tensor shapes, and can be overridden.

The exported graph has the srdgd score contract (models/README.md):
x_t [B,3,128,128], y [B,3,128,128], sigma [B] -> score [B,3,128,128].
"""
import argparse
import hashlib
import io
import json
import os
import pickle
import sys
import zipfile

from models.__main__ import UserError

SIGMA_MIN = 0.01
SIGMA_MAX = 348.0
HR_SIZE = 128

# Face framing shared with the guidance classifiers (spec/SRDG.md section 2).
DEFAULT_CROP = {"ref": "celeba_aligned_178x218", "box_xywh": [29, 56, 120, 120], "size": 128, "resize": "bicubic"}

# torch.save's zip format: <root>/data.pkl is a pickle whose tensors are persistent ids
# ('storage', <torch.XStorage>, key, location, numel) pointing at raw little-endian
# <root>/data/<key> entries. sr-sde checkpoints are read with a restricted unpickler that
# knows this format and allow-lists the few globals such a checkpoint references, so no
# code from the file ever runs. (torch.load(weights_only=True) refuses these files because
# of the numpy.float64 lr in the Adam param_groups; weights_only=False would run any
# global the pickle names.) --trust-pickle falls back to torch.load(weights_only=False).
_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
}
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("torch", "Size"),
}


class _Storage:
    def __init__(self, dtype_name):
        self.dtype_name = dtype_name


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    import torch
    return torch.as_strided(storage, tuple(size), tuple(stride), offset)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


class _CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, f, zf, root):
        super().__init__(f, encoding="utf-8")
        self.zf, self.root, self.cache = zf, root, {}

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if (module, name) in _SAFE_GLOBALS or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"checkpoint references {module}.{name}, which an sr-sde checkpoint does not "
                                     "use (use --trust-pickle only for a file from a trusted source)")

    def persistent_load(self, pid):
        import torch
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        key = str(pid[2])
        if key not in self.cache:
            raw = bytearray(self.zf.read(f"{self.root}/data/{key}"))
            self.cache[key] = torch.frombuffer(raw, dtype=getattr(torch, pid[1].dtype_name)) if raw else \
                torch.empty(0, dtype=getattr(torch, pid[1].dtype_name))
        return self.cache[key]


def _safe_load(path, zf):
    pkls = [n for n in zf.namelist() if n.endswith("/data.pkl")]
    root = pkls[0][: -len("/data.pkl")]
    with zf.open(pkls[0]) as f:
        return _CheckpointUnpickler(io.BytesIO(f.read()), zf, root).load()


def read_checkpoint(path, trust_pickle=False):
    """Read an sr-sde checkpoint (torch zip format) after sanity checks; errors become UserError."""
    import struct

    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path}: no such file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK":
        if head[:2] == b"\x80\x02":
            raise UserError(f"checkpoint {path}: a legacy (pre-zip) torch.save file; re-save it with torch>=1.6 "
                            "(torch.save(torch.load(f), out)) and import that")
        raise UserError(f"checkpoint {path}: not a PyTorch checkpoint (no zip header; {size} bytes)")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"checkpoint {path}: damaged or truncated zip archive ({size} bytes): {e}") from None
    with zf:
        names = zf.namelist()
        if not any(n.endswith("/data.pkl") for n in names):
            raise UserError(f"checkpoint {path}: a zip archive but not a torch.save file (no data.pkl)")
        try:
            if trust_pickle:
                import torch
                ckpt = torch.load(path, map_location="cpu", weights_only=False)
            else:
                ckpt = _safe_load(path, zf)
        except pickle.UnpicklingError as e:
            raise UserError(f"checkpoint {path}: refused to unpickle: {e}") from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError,
                struct.error, AttributeError, IndexError) as e:
            raise UserError(f"checkpoint {path}: cannot read ({type(e).__name__}: {e}); is the file complete?") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"checkpoint {path}: holds a {type(ckpt).__name__}, not the sr-sde dict "
                        "{'optimizer','model','ema','step'}")
    return ckpt


def _strip(k):
    return k[len("module."):] if k.startswith("module.") else k


def state_dict_from_checkpoint(ckpt, use_ema=True, where="checkpoint"):
    """Build the NCSNpp state dict (no 'module.' prefix) from an sr-sde checkpoint dict.

    The EMA shadow_params list maps, in order, onto the model's trainable tensors, i.e. the
    ckpt['model'] entries minus the buffer 'sigmas' and the non-trainable Fourier 'all_modules.0.W'.
    Returns (state_dict, info).
    """
    import torch

    for key in ("model",) + (("ema",) if use_ema else ()):
        if key not in ckpt:
            raise UserError(f"{where}: no {key!r} entry (keys: {', '.join(map(str, ckpt))}); not an sr-sde checkpoint")
    model = ckpt["model"]
    if not hasattr(model, "items"):
        raise UserError(f"{where}: ckpt['model'] is a {type(model).__name__}, not a state dict")
    sd = {}
    for k, v in model.items():
        if not isinstance(v, torch.Tensor):
            raise UserError(f"{where}: ckpt['model'][{k!r}] is not a tensor")
        sd[_strip(k)] = v
    sd.pop("sigmas", None)
    if "all_modules.0.W" not in sd:
        raise UserError(f"{where}: no all_modules.0.W in ckpt['model']: not an NCSN++ with Fourier embedding")
    trainable = [k for k in sd if k != "all_modules.0.W"]
    info = {"n_model_entries": len(model), "step": ckpt.get("step")}
    if use_ema:
        ema = ckpt["ema"]
        shadow = ema.get("shadow_params") if isinstance(ema, dict) else None
        if not isinstance(shadow, (list, tuple)):
            raise UserError(f"{where}: ckpt['ema'] has no shadow_params list")
        if len(shadow) != len(trainable):
            raise UserError(f"{where}: ckpt['ema'] has {len(shadow)} shadow params but the model has "
                            f"{len(trainable)} trainable tensors")
        for k, t in zip(trainable, shadow):
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(sd[k].shape):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise UserError(f"{where}: EMA tensor for {k} has shape {shape}, model has {tuple(sd[k].shape)}")
            sd[k] = t
        info["ema_decay"] = ema.get("decay")
        info["ema_num_updates"] = ema.get("num_updates")
    return sd, info


def build_model(sd, overrides=None, dtype=None):
    """Infer the config (overridable), build NCSNpp and load sd strictly. Returns (net, cfg)."""
    import torch
    from models.nets import ncsnpp

    try:
        cfg = ncsnpp.infer_config(sd)
    except (ValueError, KeyError, IndexError) as e:
        raise UserError(f"cannot infer the NCSN++ configuration from the weights: {e}") from None
    for k, v in (overrides or {}).items():
        if v is not None:
            setattr(cfg, k, v)
    net = ncsnpp.NCSNpp(cfg)
    want = net.state_dict()
    missing = [k for k in want if k not in sd]
    extra = [k for k in sd if k not in want]
    bad = [f"{k} {tuple(sd[k].shape)} != {tuple(want[k].shape)}" for k in want
           if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or extra or bad:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"unexpected {len(extra)} (e.g. {', '.join(extra[:3])})")
        if bad:
            parts.append(f"shape mismatch {len(bad)} (e.g. {'; '.join(bad[:3])})")
        raise UserError(f"weights do not fit NCSN++ {json.dumps(cfg.as_dict())}: " + "; ".join(parts))
    net.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()}, strict=True)
    net.eval()
    if dtype is not None:
        net.to(dtype)
    return net, cfg


def load_score_model(path, use_ema=True, overrides=None, dtype=None, trust_pickle=False):
    from models.nets import ncsnpp

    ckpt = read_checkpoint(path, trust_pickle=trust_pickle)
    sd, info = state_dict_from_checkpoint(ckpt, use_ema=use_ema, where=f"checkpoint {path}")
    net, cfg = build_model(sd, overrides, dtype)
    return ncsnpp.ScoreModel(net).eval(), cfg, info


def export_onnx(model, out, opset=17, batch=1):
    """Trace the ScoreModel (float32) to ONNX with a dynamic batch dimension; returns onnx.ModelProto."""
    import onnx
    import torch

    model = model.float().eval()
    x = torch.rand(batch, 3, HR_SIZE, HR_SIZE)
    y = torch.rand(batch, 3, HR_SIZE, HR_SIZE)
    s = torch.full((batch,), 0.5)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (x, y, s), buf, opset_version=opset, input_names=["x_t", "y", "sigma"],
                          output_names=["score"], dynamic_axes={"x_t": {0: "B"}, "y": {0: "B"}, "sigma": {0: "B"},
                                                                "score": {0: "B"}},
                          do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    set_output_dims(proto, {"score": ["B", 3, HR_SIZE, HR_SIZE]})
    return proto


def set_output_dims(proto, dims):
    """Write the contract's output shapes (the tracer leaves some dims symbolic), e.g. {"score": ["B",3,128,128]}."""
    for o in proto.graph.output:
        if o.name not in dims:
            continue
        shape = o.type.tensor_type.shape
        del shape.dim[:]
        for d in dims[o.name]:
            dim = shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            else:
                dim.dim_value = d


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ints(s):
    return tuple(int(v) for v in s.split(",") if v.strip())


def main(argv):
    try:
        return run(argv)
    except UserError as e:
        # the dispatcher prints UserError too, but under `python -m models` it is another class object
        # (models/__main__.py runs as __main__), so print it here to be sure no stack trace shows.
        print(f"models import-sdesr: {e}", file=sys.stderr)
        return 1


def run(argv):
    ap = argparse.ArgumentParser(prog="models import-sdesr", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="sr-sde checkpoint (.pth, torch zip format)")
    ap.add_argument("--out", required=True, help="output ONNX file")
    ap.add_argument("--scale", type=int, default=8, choices=(4, 8, 16), help="SR factor the checkpoint was trained for")
    ap.add_argument("--nf", type=int, help="base channels (default: inferred from the weights)")
    ap.add_argument("--ch-mult", type=_ints, help="channel multipliers, e.g. 1,1,2,2,2,2,2 (default: inferred)")
    ap.add_argument("--num-res-blocks", type=int, help="res blocks per level (default: inferred)")
    ap.add_argument("--attn-resolutions", type=_ints, help="e.g. 16 (default: inferred)")
    ap.add_argument("--name", help="model name (default sdesr-ncsnpp-nf<nf>-x<scale>)")
    ap.add_argument("--crop", default=json.dumps(DEFAULT_CROP), help="face framing of the training data (JSON)")
    ap.add_argument("--weights-source", help="where the checkpoint came from (default: file name and sha256)")
    ap.add_argument("--license", default="unknown: check upstream before redistribution",
                    help="licence of the weights")
    ap.add_argument("--data-terms", default="unknown: depends on the checkpoint's training data (sr-sde trains on "
                    "FFHQ/CelebA-HQ, both non-commercial research terms)", help="terms of the training data")
    ap.add_argument("--model-weights", action="store_true",
                    help="use ckpt['model'] instead of the EMA weights (not what sr-sde samples with)")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="read the checkpoint with torch.load(weights_only=False): runs any code the file names; "
                    "only for files from a trusted source that the restricted reader refuses")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args(argv)
    try:
        crop = json.loads(a.crop)
    except json.JSONDecodeError as e:
        raise UserError(f"--crop is not JSON: {e}") from None
    import onnx
    import torch

    from models import onnxmeta

    overrides = {"nf": a.nf, "ch_mult": a.ch_mult, "num_res_blocks": a.num_res_blocks,
                 "attn_resolutions": a.attn_resolutions}
    model, cfg, info = load_score_model(a.checkpoint, use_ema=not a.model_weights, overrides=overrides,
                                         trust_pickle=a.trust_pickle)
    digest = sha256_file(a.checkpoint)
    n_params = sum(p.numel() for p in model.parameters())
    proto = export_onnx(model, a.out, opset=a.opset)
    base = os.path.basename(a.checkpoint)
    weights = "EMA (ckpt['ema']['shadow_params'])" if not a.model_weights else "ckpt['model'] (NOT the EMA)"
    onnxmeta.set_metadata(
        proto, "score",
        name=a.name or f"sdesr-ncsnpp-nf{cfg.nf}-x{a.scale}",
        input_range="0,1",
        scale=a.scale, hr_size=HR_SIZE, lr_size=HR_SIZE // a.scale,
        sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX,
        crop=crop,
        provenance=(f"marcelowds/sr-sde NCSN++ checkpoint {base} (step {info.get('step')}), {weights}, "
                    f"{n_params} params, imported by srdgd models import-sdesr"),
        weights_source=a.weights_source or f"{base} sha256:{digest}",
        license=a.license,
        data_terms=a.data_terms,
        architecture={"net": "ncsnpp", **cfg.as_dict()},
    )
    onnx.checker.check_model(proto)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString())
    os.replace(tmp, a.out)
    print(f"import-sdesr: wrote {a.out} ({os.path.getsize(a.out)} bytes): NCSN++ {json.dumps(cfg.as_dict())}, "
          f"{n_params} params, {'model' if a.model_weights else 'EMA'} weights, x{a.scale}", file=sys.stderr)
    return 0
