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


# Analytic fixtures for the srdg sampler tests (8x8 images keep them fast).
FIX_HW = 8
GAUSS_S = 0.1  # x_0 ~ N(y, GAUSS_S^2 I)


def gaussian_score(s=GAUSS_S, hw=FIX_HW):
    """score = -(x_t - y) / (s^2 + sigma^2): exact for x_0 ~ N(y, s^2 I)."""
    x = helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["B", 3, hw, hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3, hw, hw])
    sg = helper.make_tensor_value_info("sigma", TensorProto.FLOAT, ["B"])
    out = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["B", 3, hw, hw])
    inits = [
        numpy_helper.from_array(np.array([-1, 1, 1, 1], dtype=np.int64), "shape4"),
        numpy_helper.from_array(np.array(s * s, dtype=np.float32), "s2"),
    ]
    nodes = [
        helper.make_node("Sub", ["x_t", "y"], ["d"]),
        helper.make_node("Mul", ["sigma", "sigma"], ["sig2"]),
        helper.make_node("Add", ["sig2", "s2"], ["den"]),
        helper.make_node("Reshape", ["den", "shape4"], ["den4"]),
        helper.make_node("Div", ["d", "den4"], ["q"]),
        helper.make_node("Neg", ["q"], ["score"]),
    ]
    g = helper.make_graph(nodes, "gaussian_score", [x, y, sg], [out], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnxmeta.set_metadata(m, "score", name="gaussian-test-score", scale=8, sigma_min=0.01, sigma_max=348,
                          hr_size=hw, lr_size=1, crop={"ref": "none"}, **COMMON_META)
    return m


def linear_guidance_weights(hw=FIX_HW, attrs=3):
    """Per attribute a, logit(1) - logit(0) = c_a . x + b_a, with b_a very negative so
    that p(1) is tiny where the data lives and grad log p(1) ~ c_a (a constant)."""
    rng = np.random.RandomState(11)
    d = 3 * hw * hw
    c = (rng.randn(d, attrs) / np.sqrt(d)).astype(np.float32)
    b = np.full((attrs,), -40.0, dtype=np.float32)
    return c, b


def linear_guidance(hw=FIX_HW):
    """grad = sum_a mask_a (label_a - sigmoid(c_a.x + b_a)) c_a, mask_a = (label_a >= 0)."""
    c, b = linear_guidance_weights(hw)
    d = c.shape[0]
    x = helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["B", 3, hw, hw])
    sg = helper.make_tensor_value_info("sigma", TensorProto.FLOAT, ["B"])
    lab = helper.make_tensor_value_info("labels", TensorProto.FLOAT, ["B", 3])
    out = helper.make_tensor_value_info("grad", TensorProto.FLOAT, ["B", 3, hw, hw])
    inits = [
        numpy_helper.from_array(c, "C"),
        numpy_helper.from_array(np.ascontiguousarray(c.T), "CT"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.array([-1, d], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array([-1, 3, hw, hw], dtype=np.int64), "img"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x_t", "flat"], ["xf"]),
        helper.make_node("MatMul", ["xf", "C"], ["t0"]),
        helper.make_node("Add", ["t0", "b"], ["t"]),
        helper.make_node("Sigmoid", ["t"], ["p"]),
        helper.make_node("Sub", ["labels", "p"], ["r"]),
        helper.make_node("GreaterOrEqual", ["labels", "zero"], ["m"]),
        helper.make_node("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["r", "mf"], ["coef"]),
        helper.make_node("MatMul", ["coef", "CT"], ["gf"]),
        helper.make_node("Reshape", ["gf", "img"], ["grad"]),
    ]
    g = helper.make_graph(nodes, "linear_guidance", [x, sg, lab], [out], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnxmeta.set_metadata(m, "guidance", name="linear-test-guidance", attributes=list(onnxmeta.ATTRIBUTES), label_abstain=-1,
                          attribute_labels=onnxmeta.ATTRIBUTE_LABELS, sigma_min=0.01, sigma_max=348,
                          hr_size=hw, crop={"ref": "none"}, **COMMON_META)
    np.save(os.path.join(ROOT, "srdg", "testdata", "linear_guidance_c.npy"), c)
    return m


def lr_attrs(attributes, lr=1):
    """probs = sigmoid(mean RGB of the probe . W): with W = diag(10, -10, 0) on the
    first three attributes a probe of colour (0.4, 0.5, 0.6) gives p = (0.98, 0.007,
    0.5), which the srdg stage tests turn into labels 1, 0 and abstain."""
    x = helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["B", 3, lr, lr])
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["B", len(attributes)])
    w = np.zeros((3, len(attributes)), dtype=np.float32)
    w[0, 0], w[1, 1] = 10, -10
    inits = [numpy_helper.from_array(w, "W")]
    nodes = [
        helper.make_node("ReduceMean", ["lr"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["t"]),
        helper.make_node("Sigmoid", ["t"], ["probs"]),
    ]
    g = helper.make_graph(nodes, "lr_attrs", [x], [out], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnxmeta.set_metadata(m, "lr_attrs", name="linear-test-lr-attrs", attributes=list(attributes),
                          attribute_labels=onnxmeta.ATTRIBUTE_LABELS, scale=8, lr_size=lr, crop={"ref": "none"}, **COMMON_META)
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


def sr_adapter():
    """A 128-d SR adapter with random weights (the trainer's network and exporter) and its
    answers on fixed inputs, for match's Adapter tests. Its metadata lacks
    srdgd.embedder_model: each test appends the model id it needs (match/adapter_test.go)."""
    import json

    import torch

    from models.train import sr_adapter as sa
    torch.manual_seed(3)
    dim = 128
    net = sa.Adapter({"dim": dim, "hidden": 8})
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape) * 0.3)
    d = os.path.join(ROOT, "match", "testdata")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "sr_adapter_x8.onnx")
    meta = dict(COMMON_META, input_range="unit-length descriptor", weights_source="random, torch seed 3")
    sa.to_onnx(net, dim, path, check=False, name="test-sr-adapter-x8", scale=8, dim=dim, **meta)
    rng = np.random.RandomState(5)
    x = rng.randn(3, dim).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    with open(os.path.join(d, "sr_adapter_x8.json"), "w") as f:
        json.dump({"in": x.tolist(), "out": y.tolist()}, f)
    print(path)


def main():
    save(affine_score(), os.path.join(ROOT, "internal", "ort", "testdata", "affine_score.onnx"))
    resample_vectors()
    os.makedirs(os.path.join(ROOT, "srdg", "testdata"), exist_ok=True)
    save(gaussian_score(), os.path.join(ROOT, "srdg", "testdata", "gaussian_score.onnx"))
    save(linear_guidance(), os.path.join(ROOT, "srdg", "testdata", "linear_guidance.onnx"))
    save(lr_attrs(onnxmeta.ATTRIBUTES), os.path.join(ROOT, "srdg", "testdata", "lr_attrs.onnx"))
    # the guidance fixture's attributes in another order: the stage must refuse it
    save(lr_attrs(("glasses", "male", "no_beard")), os.path.join(ROOT, "srdg", "testdata", "lr_attrs_swapped.onnx"))
    sr_adapter()


if __name__ == "__main__":
    main()
