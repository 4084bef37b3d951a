"""convert-face-embedder: build the face embedder (and 68-point landmark) ONNX from face-api's npm package.

  npm pack @vladmandic/face-api@1.7.15        # -> vladmandic-face-api-1.7.15.tgz
  /usr/bin/python3 -m models convert-face-embedder --tgz vladmandic-face-api-1.7.15.tgz \
      --out models/dist/face_embedder.onnx [--landmarks-out models/dist/face_landmarks68.onnx]

(--dir PACKAGE_DIR reads an unpacked package instead of the tarball.)

face_embedder.onnx: `image` [B,3,150,150] float32 RGB in [0,1] (NCHW) -> `embedding` [B,128],
face-api's FaceRecognitionNet descriptor exactly as computeFaceDescriptor returns it (NOT
L2-normalised; face-api compares descriptors by Euclidean distance, threshold 0.6). The
package's input normalisation ((255*x - mean RGB) / 255) is inside the graph.

face_landmarks68.onnx: `image` [B,3,112,112] float32 RGB in [0,1] -> `landmarks` [B,68,2],
(x, y) relative to the input square (0..1), face-api's FaceLandmark68Net.

Architecture notes: models/faceapi/torch_net.py. Parity: models/tests/test_faceapi.py.
"""
import argparse
import hashlib
import io
import os
import sys

from models.__main__ import UserError

# face-api's dlib-style alignment (src/classes/FaceLandmarks.ts alignDlib, used by
# withFaceDescriptor(s)): the crop the embedder expects.
ALIGNMENT = {
    "method": "face-api dlib alignment (FaceLandmarks.align(null, {useDlibAlignment: true}))",
    "landmarks": "68-point (srdgd.kind=face_landmarks model); eye_a = mean of points 36-41, eye_b = mean of 42-47, mouth = mean of 48-67",
    "size": "floor(((|mouth - eye_a| + |mouth - eye_b|) / 2) / 0.45)",
    "box": "x = floor(max(0, c.x - 0.5*size)), y = floor(max(0, c.y - 0.43*size)), width = height = size, c = (eye_a + eye_b + mouth) / 3; "
           "axis-aligned, no rotation; clipped at the image borders",
    "rel_x": 0.5, "rel_y": 0.43, "rel_scale": 0.45,
    "to_input": "crop the box; if clipping made it non-square, pad the short side with black, centred; resize to 150x150 (bilinear)",
}

LANDMARK_CROP = {
    "box": "the face detector's box (face-api: detection box floored and clipped at the image borders)",
    "to_input": "crop the box, pad the short side with black (centred) to a square, resize to 112x112 (bilinear)",
    "output": "landmarks[b, i] = (x, y) relative to the padded square input (0..1); "
              "image x = box.x - pad_x + x * side, y = box.y - pad_y + y * side, side = max(box w, box h)",
}
LANDMARK_LAYOUT = {"jaw": [0, 16], "brow_image_left": [17, 21], "brow_image_right": [22, 26], "nose": [27, 35],
                   "eye_image_left": [36, 41], "eye_image_right": [42, 47], "mouth": [48, 67]}

EMBEDDER_LICENSE = ("MIT (npm @vladmandic/face-api, which ships the weights in model/ and states no separate terms for them); "
                    "upstream: face-api.js (justadudewhohacks, MIT) ported the weights of dlib's "
                    "dlib_face_recognition_resnet_model_v1, which Davis King released into the public domain (dlib-models README)")
EMBEDDER_DATA = ("dlib's model was trained by Davis King on about 3 million faces of 7485 identities (FaceScrub, VGG Face and "
                 "images scraped from the internet; no LFW identities) per the dlib-models README; those sources carry their "
                 "own terms. srdgd used no training data to build this file (a format conversion).")
LANDMARK_LICENSE = ("MIT (npm @vladmandic/face-api, which ships the weights in model/ and states no separate terms for them); "
                    "the net and weights come from face-api.js (justadudewhohacks, MIT)")
LANDMARK_DATA = ("not stated by the package: face-api.js trained this net itself on 68-point annotated face images; "
                 "check upstream before commercial use. srdgd used no training data to build this file (a format conversion).")


def main(argv):
    try:
        return run(argv)
    except UserError as e:
        # under `python -m models` the dispatcher's UserError is another class object
        # (models/__main__.py runs as __main__), so print it here to be sure no stack trace shows.
        print(f"models convert-face-embedder: {e}", file=sys.stderr)
        return 1


def run(argv):
    ap = argparse.ArgumentParser(prog="models convert-face-embedder", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tgz", help="the npm tarball (npm pack @vladmandic/face-api@VERSION)")
    src.add_argument("--dir", help="an unpacked package directory (the tarball's package/)")
    ap.add_argument("--out", default="models/dist/face_embedder.onnx", help="embedder ONNX to write")
    ap.add_argument("--landmarks-out", help="also write the 68-point landmark ONNX here")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args(argv)

    import torch

    from models.faceapi import tfjs as faceapi_tfjs

    torch.set_num_threads(1)
    pkg = faceapi_tfjs.Package.open(tgz=a.tgz, directory=a.dir)
    if pkg.name != faceapi_tfjs.NPM_NAME:
        raise UserError(f"{pkg.source}: package.json names {pkg.name!r}, want {faceapi_tfjs.NPM_NAME!r}")
    tgz_digest = sha256_file(a.tgz) if a.tgz else None

    jobs = [("face_recognition_model", a.out)]
    if a.landmarks_out:
        jobs.append(("face_landmark_68_model", a.landmarks_out))
    protos = []
    for model_name, out in jobs:
        quantised = {}
        weights = pkg.load_weights(model_name, quantised)
        shard_digests = {p: hashlib.sha256(pkg.read("model/" + p)).hexdigest()
                         for g in pkg.read_json(f"model/{model_name}-weights_manifest.json") for p in g["paths"]}
        source = f"npm {faceapi_tfjs.NPM_NAME}@{pkg.version} model/{model_name}-weights_manifest.json + " + ", ".join(
            f"model/{p} sha256:{d}" for p, d in shard_digests.items())
        if tgz_digest:
            source += f" (tarball {os.path.basename(a.tgz)} sha256:{tgz_digest})"
        if model_name == "face_recognition_model":
            proto = build_embedder(weights, pkg.version, source, a.opset, quantised)
        else:
            proto = build_landmarks(weights, pkg.version, source, a.opset, quantised)
        protos.append((proto, out))
    for proto, out in protos:
        write_atomic(proto, out)
        print(f"convert-face-embedder: wrote {out} ({os.path.getsize(out)} bytes) from {pkg.name}@{pkg.version}", file=sys.stderr)
    return 0


def build_embedder(weights, version, weights_source, opset=17, quantised=None):
    """Dequantised face_recognition_model weights -> checked onnx.ModelProto with srdgd metadata.

    quantised ({TF.js name: Quantised}, optional) keeps those weights quantised in the file.
    """
    import onnx

    from models import onnxmeta
    from models.faceapi import tfjs as faceapi_tfjs, torch_net as faceapi_torch

    faceapi_tfjs.check_shapes(weights, faceapi_torch.recognition_shapes(), "face_recognition_model")
    model = faceapi_torch.FaceRecognitionNet(weights)
    n = faceapi_torch.EMBED_SIZE
    proto = export(model, (1, 3, n, n), "embedding", ["B", faceapi_torch.EMBED_DIM], opset)
    if quantised:
        store_quantised(proto, faceapi_torch.tfjs_sources(model), quantised)
    onnxmeta.set_metadata(
        proto, "face_embedder",
        name="face-api face_recognition_model",
        input_range="0,1",
        input_layout="NCHW RGB",
        input_size=n,
        embedding_dim=faceapi_torch.EMBED_DIM,
        normalised="false",
        distance="face-api: Euclidean distance between raw descriptors, match below 0.6 (FaceMatcher default); "
                 "L2-normalise before using cosine similarity",
        alignment=ALIGNMENT,
        preprocessing={"mean_rgb_0_255": list(faceapi_torch.MEAN_RGB), "graph": "(255*image - mean_rgb) / 255"},
        provenance=(f"npm {faceapi_tfjs.NPM_NAME} {version} model/face_recognition_model (dlib ResNet-34 face descriptor "
                    f"lineage: 29 conv layers, 150x150 RGB -> 128-d); converted by srdgd models convert-face-embedder"),
        weights_source=weights_source,
        license=EMBEDDER_LICENSE,
        data_terms=EMBEDDER_DATA,
    )
    onnx.checker.check_model(proto)
    return proto


def build_landmarks(weights, version, weights_source, opset=17, quantised=None):
    """Dequantised face_landmark_68_model weights -> checked onnx.ModelProto with srdgd metadata.

    quantised ({TF.js name: Quantised}, optional) keeps those weights quantised in the file.
    """
    import onnx

    from models import onnxmeta
    from models.faceapi import tfjs as faceapi_tfjs, torch_net as faceapi_torch

    faceapi_tfjs.check_shapes(weights, faceapi_torch.landmark_shapes(), "face_landmark_68_model")
    model = faceapi_torch.FaceLandmark68Net(weights)
    n = faceapi_torch.LANDMARK_SIZE
    proto = export(model, (1, 3, n, n), "landmarks", ["B", 68, 2], opset)
    if quantised:
        store_quantised(proto, faceapi_torch.tfjs_sources(model), quantised)
    onnxmeta.set_metadata(
        proto, "face_landmarks",
        name="face-api face_landmark_68_model",
        input_range="0,1",
        input_layout="NCHW RGB",
        input_size=n,
        num_landmarks=68,
        landmark_layout=LANDMARK_LAYOUT,
        crop=LANDMARK_CROP,
        preprocessing={"mean_rgb_0_255": list(faceapi_torch.MEAN_RGB), "graph": "(255*image - mean_rgb) / 255"},
        provenance=(f"npm {faceapi_tfjs.NPM_NAME} {version} model/face_landmark_68_model (face-api.js 68-point landmark "
                    f"net: 4 dense blocks of separable convs, 112x112 RGB -> 68 (x, y)); converted by srdgd models "
                    f"convert-face-embedder"),
        weights_source=weights_source,
        license=LANDMARK_LICENSE,
        data_terms=LANDMARK_DATA,
    )
    onnx.checker.check_model(proto)
    return proto


def export(model, shape, out_name, out_dims, opset):
    import onnx
    import torch

    model = model.float().eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.rand(*shape),), buf, opset_version=opset, input_names=["image"],
                          output_names=[out_name], dynamic_axes={"image": {0: "B"}, out_name: {0: "B"}},
                          do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    for o in proto.graph.output:
        if o.name == out_name:
            dims = o.type.tensor_type.shape
            del dims.dim[:]
            for d in out_dims:
                dim = dims.dim.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = d
    proto.producer_name = "srdgd models convert-face-embedder"
    return proto


def store_quantised(proto, sources, quantised):
    """Keep uint8/uint16-quantised weights quantised in the ONNX file (about 4x smaller).

    sources: faceapi_torch.tfjs_sources(model); quantised: {TF.js name: faceapi_tfjs.Quantised}.
    Each such float initializer W becomes W.q (uint8/uint16, same layout) with nodes
    W = Cast<float>(Cast<double>(W.q) * scale + min), the dequantisation TF.js does (in double,
    rounded to float32), so the weights ONNX Runtime sees are bit-identical to face-api's. The
    nodes depend on initializers only: ONNX Runtime folds them when it loads the model.
    Returns the number of initializers replaced.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    nodes, replaced = [], 0
    for key, (tf_name, perm) in sorted(sources.items()):
        if tf_name not in quantised:
            continue
        init = inits.get(key)
        if init is None:
            raise RuntimeError(f"exported graph has no initializer {key!r} for {tf_name!r}")
        cur = numpy_helper.to_array(init)
        q = quantised[tf_name]
        qa = np.ascontiguousarray(q.q.transpose(perm) if perm else q.q).reshape(cur.shape)
        if not np.array_equal((qa.astype(np.float64) * q.scale + q.min).astype(np.float32), cur):
            raise RuntimeError(f"initializer {key!r} does not hold the dequantised {tf_name!r}")
        graph.initializer.remove(init)
        graph.initializer.extend([
            numpy_helper.from_array(qa, key + ".q"),
            numpy_helper.from_array(np.array(q.scale, dtype=np.float64), key + ".scale"),
            numpy_helper.from_array(np.array(q.min, dtype=np.float64), key + ".min"),
        ])
        nodes += [
            helper.make_node("Cast", [key + ".q"], [key + ".q64"], to=TensorProto.DOUBLE, name=key + ".cast64"),
            helper.make_node("Mul", [key + ".q64", key + ".scale"], [key + ".scaled"], name=key + ".mul"),
            helper.make_node("Add", [key + ".scaled", key + ".min"], [key + ".f64"], name=key + ".add"),
            helper.make_node("Cast", [key + ".f64"], [key], to=TensorProto.FLOAT, name=key + ".cast32"),
        ]
        replaced += 1
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)
    return replaced


def write_atomic(proto, out):
    d = os.path.dirname(out)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString())
    os.replace(tmp, out)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
