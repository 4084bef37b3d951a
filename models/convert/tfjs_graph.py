"""TF.js graph models (model.json + weight shards) -> ONNX graphs.

A TF.js graph model (`"format": "graph-model"`, what `tensorflowjs_converter` writes for a frozen
TensorFlow graph or SavedModel) is a `model.json` holding `modelTopology.node`, a list of TensorFlow
GraphDef nodes `{name, op, input, attr}`, and a `weightsManifest` whose weights are the values of
the `Const` nodes, keyed by node name (decoded with models/faceapi/tfjs.py's manifest reader, which
also handles float16 and uint8/uint16 quantisation). Node inputs are node names; `name:k` is output
k of a node and `^name` a control dependency (ignored).

TensorFlow keeps activations NHWC. The ONNX graph keeps the same layout between ops and wraps each
convolution in Transpose NHWC->NCHW / NCHW->NHWC (ONNX Runtime's transpose optimiser removes the
pairs that meet), so Reshape, Mean and Pad keep TensorFlow's axes and flatten order exactly.

Supported ops (everything the converted face embedders use; anything else is refused by name):
Placeholder, Const, Identity, Conv2D, DepthwiseConv2dNative, _FusedConv2D and
FusedDepthwiseConv2dNative (fused BiasAdd, Relu, Relu6, Prelu), MatMul, _FusedMatMul (BiasAdd,
Relu), Add, AddV2, Sub, Mul, RealDiv, Maximum, Minimum, Relu, Relu6, Sigmoid, Tanh, Abs, Square,
Rsqrt, Sqrt, Softmax (last axis), Mean, Sum, Pad, Reshape, Squeeze.

Padding: TF 'SAME' pads total = max((ceil(n/s) - 1) s + (k - 1) d + 1 - n, 0) per spatial axis,
total // 2 before and the rest after; the ONNX Conv gets those as explicit `pads` (shapes are
tracked through the graph from the model's static input size).

Weights stored as float16 in the package stay float16 in the ONNX file, followed by a Cast to
float32 on the initializer (ONNX Runtime folds it at load): the values the graph computes with are
exactly TF.js's (it widens float16 the same way), at half the file size.
"""
import base64
import math

import numpy as np

from models.__main__ import UserError
from models.faceapi import tfjs as faceapi_tfjs

_ELEMENTWISE = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div",
                "Maximum": "Max", "Minimum": "Min"}
_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Abs": "Abs", "Sqrt": "Sqrt"}
_CONV = {"Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "FusedDepthwiseConv2dNative"}


class GraphModel:
    """A parsed TF.js graph model: nodes by name, Const values, which Consts were float16."""

    def __init__(self, model_json, read_shard, where):
        self.where = where
        if not isinstance(model_json, dict) or model_json.get("format") not in ("graph-model", None):
            raise UserError(f"{where}: not a TF.js graph model (format {model_json.get('format') if isinstance(model_json, dict) else '?'!r})")
        try:
            nodes = model_json["modelTopology"]["node"]
            manifest = model_json["weightsManifest"]
        except (KeyError, TypeError):
            raise UserError(f"{where}: model.json lacks modelTopology.node or weightsManifest") from None
        self.nodes = {}
        for n in nodes:
            if not isinstance(n, dict) or "name" not in n or "op" not in n:
                raise UserError(f"{where}: malformed node {str(n)[:80]}")
            self.nodes[n["name"]] = n
        self.consts = faceapi_tfjs.decode_manifest(manifest, read_shard, where, dtypes=("float32", "int32"))
        self.float16 = {w["name"] for g in manifest for w in g["weights"]
                        if isinstance(w.get("quantization"), dict) and w["quantization"].get("dtype") == "float16"}
        self.meta = {k: model_json.get(k) for k in ("generatedBy", "convertedBy", "format")}
        self.placeholders = [n["name"] for n in nodes if n["op"] == "Placeholder"]

    def input_shape(self, name):
        dims = self.nodes[name]["attr"]["shape"]["shape"]["dim"]
        return [int(d.get("size", -1)) for d in dims]

    def const(self, name):
        name = _strip(name)
        n = self.nodes.get(name)
        if n is None or n["op"] != "Const":
            raise UserError(f"{self.where}: {name!r} should be a Const node")
        if name not in self.consts:
            raise UserError(f"{self.where}: Const {name!r} has no value in the weights manifest")
        return self.consts[name]


def _strip(inp):
    """Node name of an input reference ('x', 'x:0'); refuses other outputs than 0."""
    if inp.startswith("^"):
        return None
    if ":" in inp:
        base, k = inp.rsplit(":", 1)
        if k != "0":
            raise UserError(f"input {inp!r}: only output 0 of a node is supported")
        return base
    return inp


def _attr_s(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None or "s" not in a:
        return default
    return base64.b64decode(a["s"]).decode()


def _attr_ints(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    return [int(i) for i in a.get("list", {}).get("i", [])]


def _attr_b(node, key, default=False):
    a = node.get("attr", {}).get(key)
    return bool(a.get("b", default)) if a else default


def _fused(node):
    a = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
    return [base64.b64decode(s).decode() for s in a]


def same_pads(n, k, s, d):
    """TF 'SAME' padding (before, after) of one spatial axis."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _broadcast(a, b):
    ra, rb = list(a), list(b)
    n = max(len(ra), len(rb))
    ra, rb = [1] * (n - len(ra)) + ra, [1] * (n - len(rb)) + rb
    out = []
    for x, y in zip(ra, rb):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        elif -1 in (x, y):
            out.append(-1)
        else:
            raise UserError(f"shapes {a} and {b} do not broadcast")
    return out


class _Builder:
    def __init__(self, gm):
        from onnx import TensorProto, helper, numpy_helper

        self.gm, self.helper, self.nh, self.TP = gm, helper, numpy_helper, TensorProto
        self.nodes, self.inits, self.done, self.shape = [], [], set(), {}
        self.init_names = set()

    def _uniq(self, base):
        name, i = base, 1
        while name in self.init_names or name in self.shape:
            name, i = f"{base}.{i}", i + 1
        return name

    def init(self, name, arr, f16=False):
        """Add an initializer (float16-stored with a Cast when f16); returns the float value name."""
        name = self._uniq(name)
        self.init_names.add(name)
        if f16:
            h = arr.astype(np.float16)
            if not np.array_equal(h.astype(np.float32), arr.astype(np.float32)):
                raise RuntimeError(f"{name}: float16 weight does not round-trip")
            self.inits.append(self.nh.from_array(h, name + ".f16"))
            self.node("Cast", [name + ".f16"], [name], to=self.TP.FLOAT)
        else:
            self.inits.append(self.nh.from_array(arr, name))
        return name

    def node(self, op, ins, outs, **attrs):
        self.nodes.append(self.helper.make_node(op, ins, outs, name=outs[0] + "." + op, **attrs))

    def tmp(self, base):
        name = self._uniq(base)
        self.shape[name] = None
        return name

    def value(self, ref):
        """ONNX value name of a TF input reference, converting its node (and inputs) on first use."""
        name = _strip(ref)
        self.convert(name)
        return name

    def convert(self, name):
        # iterative post-order over the inputs, so deep graphs do not hit Python's recursion limit
        stack = [(name, False)]
        while stack:
            cur, expanded = stack.pop()
            if cur in self.done:
                continue
            n = self.gm.nodes.get(cur)
            if n is None:
                raise UserError(f"{self.gm.where}: the graph references a node {cur!r} it does not define")
            if expanded or n["op"] in ("Const", "Placeholder"):
                self.emit(n)
                self.done.add(cur)
                continue
            stack.append((cur, True))
            for i in n.get("input", []):
                s = _strip(i)
                # Consts are emitted where an op uses them as data (value()); weights an op
                # rewrites (conv kernels, matmul) never become initializers of their own
                if s is not None and s not in self.done and self.gm.nodes.get(s, {}).get("op") != "Const":
                    stack.append((s, False))

    def emit(self, n):
        op, name, gm = n["op"], n["name"], self.gm
        ins = [i for i in n.get("input", []) if not i.startswith("^")]
        if op == "Placeholder":
            if name not in self.shape:
                raise UserError(f"{gm.where}: placeholder {name!r} is not the converted input")
            return
        if op == "Const":
            v = gm.const(name)
            if v.dtype == np.float32:
                self.init(name, v, f16=name in gm.float16)
                self.shape[name] = list(v.shape)
            return
        if op == "Identity":
            x = self.value(ins[0])
            self.node("Identity", [x], [name])
            self.shape[name] = self.shape[x]
            return
        if op in _CONV:
            return self.conv(n, ins)
        if op in ("MatMul", "_FusedMatMul"):
            return self.matmul(n, ins)
        if op in _ELEMENTWISE:
            a, b = self.value(ins[0]), self.value(ins[1])
            self.node(_ELEMENTWISE[op], [a, b], [name])
            self.shape[name] = _broadcast(self.shape[a], self.shape[b])
            return
        if op in _UNARY:
            x = self.value(ins[0])
            self.node(_UNARY[op], [x], [name])
        elif op == "Relu6":
            x = self.value(ins[0])
            self.relu6(x, name)
        elif op == "Square":
            x = self.value(ins[0])
            self.node("Mul", [x, x], [name])
        elif op == "Rsqrt":
            x = self.value(ins[0])
            s = self.tmp(name + ".sqrt")
            self.node("Sqrt", [x], [s])
            self.node("Reciprocal", [s], [name])
        elif op == "Softmax":
            x = self.value(ins[0])
            self.node("Softmax", [x], [name], axis=-1)
        else:
            return self.shaped_op(n, ins)
        self.shape[name] = self.shape[_strip(ins[0])]

    def relu6(self, x, out):
        lo = self.init(out + ".zero", np.array(0, np.float32))
        hi = self.init(out + ".six", np.array(6, np.float32))
        self.node("Clip", [x, lo, hi], [out])

    def shaped_op(self, n, ins):
        op, name, gm = n["op"], n["name"], self.gm
        x = self.value(ins[0])
        shp = list(self.shape[x])
        if op in ("Mean", "Sum"):
            axes = [int(a) % len(shp) for a in np.atleast_1d(gm.const(ins[1]))]
            keep = _attr_b(n, "keep_dims")
            if op == "Mean":
                self.node("ReduceMean", [x], [name], axes=axes, keepdims=int(keep))
            else:
                ax = self.init(name + ".axes", np.array(axes, np.int64))
                self.node("ReduceSum", [x, ax], [name], keepdims=int(keep))
            self.shape[name] = [1 if i in axes else d for i, d in enumerate(shp)] if keep else \
                [d for i, d in enumerate(shp) if i not in axes]
        elif op == "Pad":
            p = gm.const(ins[1]).astype(np.int64)
            if p.shape != (len(shp), 2):
                raise UserError(f"{gm.where}: Pad {name!r} paddings shape {list(p.shape)} for a rank-{len(shp)} input")
            pads = self.init(name + ".pads", np.concatenate([p[:, 0], p[:, 1]]).astype(np.int64))
            self.node("Pad", [x, pads], [name], mode="constant")
            self.shape[name] = [d if d < 0 else d + int(a + b) for d, (a, b) in zip(shp, p)]
        elif op == "Reshape":
            s = gm.const(ins[1]).astype(np.int64)
            sh = self.init(name + ".shape", s)
            self.node("Reshape", [x, sh], [name])
            self.shape[name] = [int(v) for v in s]
        elif op == "Squeeze":
            dims = _attr_ints(n, "squeeze_dims") or [i for i, d in enumerate(shp) if d == 1]
            dims = [d % len(shp) for d in dims]
            ax = self.init(name + ".axes", np.array(dims, np.int64))
            self.node("Squeeze", [x, ax], [name])
            self.shape[name] = [d for i, d in enumerate(shp) if i not in dims]
        else:
            raise UserError(f"{gm.where}: node {name!r}: TF op {op!r} is not supported by this converter")

    def conv(self, n, ins):
        op, name, gm = n["op"], n["name"], self.gm
        if _attr_s(n, "data_format", "NHWC") != "NHWC":
            raise UserError(f"{gm.where}: {name!r}: only NHWC convolutions are supported")
        x = self.value(ins[0])
        wname = _strip(ins[1])
        w = gm.const(wname)
        depthwise = "Depthwise" in op
        kh, kw = w.shape[0], w.shape[1]
        if depthwise:
            c, m = w.shape[2], w.shape[3]
            wt = np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw))
            group, cout = c, c * m
        else:
            wt = np.ascontiguousarray(w.transpose(3, 2, 0, 1))
            group, cout = 1, w.shape[3]
        st = _attr_ints(n, "strides", [1, 1, 1, 1])
        dl = _attr_ints(n, "dilations", [1, 1, 1, 1]) or [1, 1, 1, 1]
        if st[0] != 1 or st[3] != 1 or dl[0] != 1 or dl[3] != 1:
            raise UserError(f"{gm.where}: {name!r}: strides/dilations on batch or channels")
        _, h, wd, _ = self.shape[x]
        padding = _attr_s(n, "padding", "VALID")
        if padding == "SAME":
            (t, b), (l, r) = same_pads(h, kh, st[1], dl[1]), same_pads(wd, kw, st[2], dl[2])
        elif padding == "VALID":
            t = b = l = r = 0
        elif padding == "EXPLICIT":
            e = _attr_ints(n, "explicit_paddings")
            t, b, l, r = e[2], e[3], e[4], e[5]
        else:
            raise UserError(f"{gm.where}: {name!r}: padding {padding!r}")
        winit = self.init(wname + ".oihw", wt, f16=wname in gm.float16)
        conv_in = [None, winit]
        fused = _fused(n) if op.startswith(("_Fused", "Fused")) else []
        post = []
        if fused:
            if fused[0] != "BiasAdd":
                raise UserError(f"{gm.where}: {name!r}: fused ops {fused} (only BiasAdd[, Relu|Relu6|Prelu])")
            bname = _strip(ins[2])
            conv_in.append(self.init(bname + ".bias", gm.const(bname).reshape(-1), f16=bname in gm.float16))
            post = fused[1:]
            if len(post) > 1 or (post and post[0] not in ("Relu", "Relu6", "Prelu")):
                raise UserError(f"{gm.where}: {name!r}: fused ops {fused} (only BiasAdd[, Relu|Relu6|Prelu])")
        nchw = self.tmp(name + ".nchw")
        self.node("Transpose", [x], [nchw], perm=[0, 3, 1, 2])
        conv_in[0] = nchw
        y = self.tmp(name + ".conv")
        self.node("Conv", conv_in, [y], kernel_shape=[kh, kw], strides=st[1:3], dilations=dl[1:3],
                  pads=[t, l, b, r], group=group)
        out = name if not post else self.tmp(name + ".pre")
        self.node("Transpose", [y], [out], perm=[0, 2, 3, 1])
        oh = (h + t + b - dl[1] * (kh - 1) - 1) // st[1] + 1
        ow = (wd + l + r - dl[2] * (kw - 1) - 1) // st[2] + 1
        self.shape[out] = [-1, oh, ow, cout]
        if post:
            self.activation(post[0], out, name, ins[3] if len(ins) > 3 else None)
        self.shape[name] = [-1, oh, ow, cout]

    def activation(self, kind, x, out, alpha_ref):
        if kind == "Relu":
            self.node("Relu", [x], [out])
        elif kind == "Relu6":
            self.relu6(x, out)
        else:  # Prelu: max(x, 0) + alpha min(x, 0), alpha per channel (last axis)
            a = _strip(alpha_ref)
            alpha = self.init(a + ".prelu", self.gm.const(a), f16=a in self.gm.float16)
            self.node("PRelu", [x, alpha], [out])

    def matmul(self, n, ins):
        name, gm = n["name"], self.gm
        a = self.value(ins[0])
        if _attr_b(n, "transpose_a"):
            raise UserError(f"{gm.where}: {name!r}: transpose_a is not supported")
        bname = _strip(ins[1])
        bw = gm.const(bname)
        if _attr_b(n, "transpose_b"):
            bw = np.ascontiguousarray(bw.T)
        b = self.init(bname + ".kn", bw, f16=bname in gm.float16)
        fused = _fused(n) if n["op"] == "_FusedMatMul" else []
        mm = name if not fused else self.tmp(name + ".mm")
        self.node("MatMul", [a, b], [mm])
        out_shape = list(self.shape[a][:-1]) + [bw.shape[1]]
        if fused:
            if fused[0] != "BiasAdd" or len(fused) > 2 or (len(fused) == 2 and fused[1] not in ("Relu", "Relu6")):
                raise UserError(f"{gm.where}: {name!r}: fused ops {fused} (only BiasAdd[, Relu|Relu6])")
            cname = _strip(ins[2])
            bias = self.init(cname + ".bias", gm.const(cname), f16=cname in gm.float16)
            pre = name if len(fused) == 1 else self.tmp(name + ".biased")
            self.node("Add", [mm, bias], [pre])
            if len(fused) == 2:
                self.activation(fused[1], pre, name, None)
        self.shape[name] = out_shape


def build_onnx(gm, output, preprocess, input_name="image", output_name="embedding", opset=17):
    """The ONNX ModelProto computing TF node `output` from an NCHW RGB [0,1] input.

    preprocess: {"order": "RGB"|"BGR", "scale": s, "offset": [o0, o1, o2]}; the graph's NHWC
    input is tf[..., c] = image[:, src(c)] * scale + offset[c] (src(c) = c for RGB, 2 - c for
    BGR), done in float32 inside the graph. Batch is dynamic (dim_param "B").
    Returns (proto, output dims after the batch).
    """
    import onnx
    from onnx import TensorProto, helper

    if len(gm.placeholders) != 1:
        raise UserError(f"{gm.where}: {len(gm.placeholders)} placeholders; this converter takes models with one input")
    ph = gm.placeholders[0]
    shp = gm.input_shape(ph)
    if len(shp) != 4 or shp[3] != 3 or shp[1] <= 0 or shp[2] <= 0:
        raise UserError(f"{gm.where}: input {ph!r} has shape {shp}, want [-1, H, W, 3]")
    if output not in gm.nodes:
        raise UserError(f"{gm.where}: no node {output!r} (the embedding output)")
    b = _Builder(gm)
    h, w = shp[1], shp[2]
    # front: channel order, affine to the graph's range, NCHW -> NHWC
    x = input_name
    b.shape[x] = [-1, 3, h, w]
    if preprocess["order"] == "BGR":
        idx = b.init("preprocess.bgr", np.array([2, 1, 0], np.int64))
        y = b.tmp("preprocess.reordered")
        b.node("Gather", [x, idx], [y], axis=1)
        x = y
    elif preprocess["order"] != "RGB":
        raise ValueError(f"order {preprocess['order']!r}")
    scale = b.init("preprocess.scale", np.full((1, 3, 1, 1), preprocess["scale"], np.float32))
    offset = b.init("preprocess.offset", np.asarray(preprocess["offset"], np.float32).reshape(1, 3, 1, 1))
    y = b.tmp("preprocess.scaled")
    b.node("Mul", [x, scale], [y])
    z = b.tmp("preprocess.shifted")
    b.node("Add", [y, offset], [z])
    b.node("Transpose", [z], [ph], perm=[0, 2, 3, 1])
    b.shape[ph] = [-1, h, w, 3]
    out = b.value(output)
    out_shape = b.shape[out]
    b.node("Identity", [out], [output_name])
    dims = [d for d in out_shape[1:]]
    if any(d is None or d <= 0 for d in dims):
        raise UserError(f"{gm.where}: output {output!r} has shape {out_shape}, want static non-batch dims")
    graph = helper.make_graph(
        b.nodes, "tfjs_graph",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["B", 3, h, w])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["B", *dims])],
        initializer=b.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="srdgd models convert-tfjs-embedders")
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto, dims


def preprocess_numpy(image01_nchw, preprocess):
    """The graph's front in NumPy: NCHW RGB [0,1] -> the TF graph's NHWC input (float32)."""
    x = np.asarray(image01_nchw, np.float32)
    if preprocess["order"] == "BGR":
        x = x[:, ::-1]
    x = x * np.float32(preprocess["scale"]) + np.asarray(preprocess["offset"], np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)
