"""Tiny ONNX graphs with known answers, committed under testdata/ for Go tests.

/usr/bin/python3 -m models.fixtures  (rewrites every fixture; deterministic)
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models import onnxmeta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON_META = dict(
    input_range="0,1",
    provenance="analytic test fixture made by models/fixtures.py",
    weights_source="none: constants chosen by hand",
    license="same as srdgd",
    data_terms="none",
)


def save(model, path):
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print(path)


def affine_score():
    """score = -(x_t - y) / (1 + sigma^2): the exact score when x_0 ~ N(y, I)."""
    x = helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["B", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3, "H", "W"])
    s = helper.make_tensor_value_info("sigma", TensorProto.FLOAT, ["B"])
    out = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["B", 3, "H", "W"])
    inits = [
        numpy_helper.from_array(np.array([-1, 1, 1, 1], dtype=np.int64), "shape4"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Sub", ["x_t", "y"], ["d"]),
        helper.make_node("Mul", ["sigma", "sigma"], ["s2"]),
        helper.make_node("Add", ["s2", "one"], ["den"]),
        helper.make_node("Reshape", ["den", "shape4"], ["den4"]),
        helper.make_node("Div", ["d", "den4"], ["q"]),
        helper.make_node("Neg", ["q"], ["score"]),
    ]
    g = helper.make_graph(nodes, "affine_score", [x, y, s], [out], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnxmeta.set_metadata(m, "score", name="affine-test-score", scale=8, sigma_min=0.01, sigma_max=348,
                          hr_size=4, lr_size=1, crop={"ref": "none"}, **COMMON_META)
    return m


def resample_vectors():
    """Pillow's float resize of a synthetic image: the reference for internal/resample."""
    from PIL import Image
    rng = np.random.RandomState(7)
    yy, xx = np.mgrid[0:128, 0:128] / 127.0
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + 3 * yy), 0.5 + 0.3 * np.cos(9 * yy) * xx, xx * yy], 0).astype(np.float32)
    img += (rng.rand(3, 128, 128).astype(np.float32) - 0.5) * 0.2

    def rs(a, size, f):
        return np.stack([np.asarray(Image.fromarray(c, mode="F").resize((size, size), f)) for c in a], 0).astype(np.float32)

    lr16, lr8 = rs(img, 16, Image.BILINEAR), rs(img, 8, Image.BILINEAR)
    d = os.path.join(ROOT, "internal", "resample", "testdata")
    os.makedirs(d, exist_ok=True)
    for name, a in [("hr", img), ("lr16", lr16), ("lr8", lr8), ("y16", rs(lr16, 128, Image.BICUBIC)), ("y8", rs(lr8, 128, Image.BICUBIC))]:
        np.save(os.path.join(d, name + ".npy"), a)
        print(os.path.join(d, name + ".npy"))


def main():
    save(affine_score(), os.path.join(ROOT, "internal", "ort", "testdata", "affine_score.onnx"))
    resample_vectors()


if __name__ == "__main__":
    main()
