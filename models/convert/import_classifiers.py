"""import-srdg-classifiers: the released SRDG attribute classifiers -> the srdgd guidance ONNX.

  /usr/bin/python3 -m models import-srdg-classifiers --dir classifier_ckpt --out guidance.onnx \
      [--attrs male,glasses,no_beard]

DIR holds the Flax msgpack checkpoints of marcelowds/SRDG (classifier_ckpt/ckpt_gender,
ckpt_glasses, ckpt_beard). The exported graph computes, without autograd,
grad = sum_a d/dx log_softmax(C_a(x_t, sigma))[labels[:, a]] with the contract
x_t [B,3,128,128] (NCHW, [0,1]), sigma [B], labels [B,A] -> grad [B,3,128,128]; a label
of -1 leaves that attribute out for that item (srdgd.label_abstain = -1).
"""
import argparse
import hashlib
import io
import os
import sys

from models.__main__ import UserError

SIGMA_MIN = 0.01
SIGMA_MAX = 348.0
HR_SIZE = 128
CROP = {"ref": "celeba_aligned_178x218", "box_xywh": [29, 56, 120, 120], "size": 128, "resize": "bicubic"}
PROVENANCE_REPO = "github.com/marcelowds/SRDG"
LICENSE = ("unknown: the SRDG repository (github.com/marcelowds/SRDG) states no licence; "
           "check upstream before redistribution")
DATA_TERMS = "trained on CelebA: non-commercial research purposes only"


def load_classifiers(directory, attrs, dtype=None):
    """Load the classifiers for attrs (in that order) from directory. Returns (list, {attr: (file, sha256)})."""
    import torch

    from models.nets import srdg_classifiers as sc

    if not os.path.isdir(directory):
        raise UserError(f"--dir {directory}: not a directory")
    out, files = [], {}
    for a in attrs:
        name = sc.CHECKPOINTS[a]
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise UserError(f"{path}: missing (the {a} classifier, classifier_ckpt/{name} in the SRDG repository)")
        try:
            tree = sc.read_flax_checkpoint(path)
            c = sc.DenseNetClassifier(tree, dtype=dtype or torch.float32).eval()
        except sc.FormatError as e:
            raise UserError(f"{path}: not an SRDG classifier checkpoint: {e}") from None
        if c.input_side != HR_SIZE or c.n_classes != 2:
            raise UserError(f"{path}: classifier takes {c.input_side}px input with {c.n_classes} classes, "
                            f"want {HR_SIZE}px and 2")
        with open(path, "rb") as f:
            files[a] = (name, hashlib.sha256(f.read()).hexdigest(), c.n_params)
        out.append(c)
    return out, files


def export_onnx(guidance, n_attrs, opset=17, batch=2):
    import onnx
    import torch

    from models.convert.import_sdesr import set_output_dims

    guidance = guidance.float().eval()
    x = torch.rand(batch, 3, HR_SIZE, HR_SIZE)
    s = torch.full((batch,), 0.5)
    labels = torch.ones(batch, n_attrs)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(guidance, (x, s, labels), buf, opset_version=opset,
                          input_names=["x_t", "sigma", "labels"], output_names=["grad"],
                          dynamic_axes={"x_t": {0: "B"}, "sigma": {0: "B"}, "labels": {0: "B"}, "grad": {0: "B"}},
                          do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    set_output_dims(proto, {"grad": ["B", 3, HR_SIZE, HR_SIZE]})
    return proto


def main(argv):
    try:
        return run(argv)
    except UserError as e:
        # see convert.import_sdesr.main: printed here so no stack trace shows under `python -m models`
        print(f"models import-srdg-classifiers: {e}", file=sys.stderr)
        return 1


def run(argv):
    from models import onnxmeta

    ap = argparse.ArgumentParser(prog="models import-srdg-classifiers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="folder with ckpt_gender, ckpt_glasses, ckpt_beard")
    ap.add_argument("--out", required=True, help="output ONNX file")
    ap.add_argument("--attrs", default=",".join(onnxmeta.ATTRIBUTES),
                    help=f"attribute order of the labels input (default {','.join(onnxmeta.ATTRIBUTES)})")
    ap.add_argument("--name", help="model name (default srdg-guidance-<attrs>)")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args(argv)
    attrs = [s.strip() for s in a.attrs.split(",") if s.strip()]
    unknown = [s for s in attrs if s not in onnxmeta.ATTRIBUTES]
    if unknown or not attrs or len(set(attrs)) != len(attrs):
        raise UserError(f"--attrs {a.attrs!r}: want distinct names from {', '.join(onnxmeta.ATTRIBUTES)}")

    import onnx

    from models.nets import srdg_classifiers as sc

    classifiers, files = load_classifiers(a.dir, attrs)
    proto = export_onnx(sc.Guidance(classifiers), len(attrs), opset=a.opset)
    sums = ", ".join(f"{files[x][0]} sha256:{files[x][1]}" for x in attrs)
    onnxmeta.set_metadata(
        proto, "guidance",
        name=a.name or "srdg-guidance-" + "-".join(attrs),
        input_range="0,1",
        attributes=attrs,
        attribute_labels={x: onnxmeta.ATTRIBUTE_LABELS[x] for x in attrs},
        sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, hr_size=HR_SIZE,
        crop=CROP,
        label_abstain=-1,
        provenance=(f"{PROVENANCE_REPO} released classifier checkpoints (classifier_ckpt/): {sums}; "
                    f"{files[attrs[0]][2]} params each; Flax DenseNet ported to PyTorch by srdgd models "
                    "import-srdg-classifiers; output = sum over attributes of d/dx log_softmax(C_a)[label_a], "
                    "explicit backward pass (SRDG multiplies it by the guidance weight, 500 in the released code)"),
        weights_source=f"{PROVENANCE_REPO} classifier_ckpt/ ({sums})",
        license=LICENSE,
        data_terms=DATA_TERMS,
        architecture={"net": "srdg_densenet", "blocks": [6, 6, 6, 6], "growth": 16, "bn_size": 2,
                      "preprocess": "cifar10 mean/std then per-image standardisation",
                      "sigma_input": "sigma (log taken inside)"},
    )
    onnx.checker.check_model(proto)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString())
    os.replace(tmp, a.out)
    print(f"import-srdg-classifiers: wrote {a.out} ({os.path.getsize(a.out)} bytes), attributes {','.join(attrs)}",
          file=sys.stderr)
    return 0
