"""The released SRDG attribute classifiers in PyTorch, and their guidance gradient as a plain graph.

The classifiers (marcelowds/SRDG classifier_ckpt/ckpt_{gender,glasses,beard}) are small
noise-conditioned DenseNets saved by Flax 0.3 as msgpack {params, batch_stats}. This
module reads those files (read_flax_checkpoint), rebuilds each network with the Flax
semantics (DenseNetClassifier: NHWC flatten order, HWIO kernels, [old, new] concat
order, BatchNorm in eval mode with eps 1e-5, CIFAR-10 normalisation then per-image
standardisation), and computes the classifier-guidance gradient

    grad = sum_a d/dx log_softmax(C_a(x, sigma))[label_a]

with a hand-written backward pass (Guidance), so that the exported ONNX graph has no
autograd in it: ReLU masks, BatchNorm-eval scales, transposed convolutions, the
average-pool backward, concat splits, and the backward of the per-image
standardisation (which depends on the image's mean and std).

Tensors are NCHW, RGB, pixel scale [0, 1].
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CIFAR_MEAN = (0.49139968, 0.48215841, 0.44653091)
CIFAR_STD = (0.24703223, 0.24348513, 0.26158784)
BN_EPS = 1e-5

# file name in classifier_ckpt/ -> attribute name (models/onnxmeta.py ATTRIBUTES) and its class-1 meaning
CHECKPOINTS = {"male": "ckpt_gender", "glasses": "ckpt_glasses", "no_beard": "ckpt_beard"}


class FormatError(ValueError):
    """The file is not a Flax msgpack classifier checkpoint of the expected layout."""


def _ext_hook(code, data):
    import msgpack

    if code != 1:
        return msgpack.ExtType(code, data)
    shape, dtype, buf = msgpack.unpackb(data, raw=False)
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) if len(shape) else 1
    if len(buf) != n * dt.itemsize:
        raise FormatError(f"array of shape {shape} {dtype} has {len(buf)} bytes, want {n * dt.itemsize}")
    return np.frombuffer(buf, dtype=dt).reshape(shape)


def read_flax_checkpoint(path):
    """Read a Flax msgpack state dict ({'params', 'batch_stats'}) into nested dicts of numpy arrays."""
    import msgpack

    with open(path, "rb") as f:
        data = f.read()
    try:
        tree = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except FormatError:
        raise
    except (msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException, ValueError, TypeError) as e:
        raise FormatError(f"not a complete msgpack file ({len(data)} bytes): {type(e).__name__}: {e}") from None
    if not isinstance(tree, dict) or "params" not in tree or "batch_stats" not in tree:
        keys = list(tree)[:5] if isinstance(tree, dict) else type(tree).__name__
        raise FormatError(f"not a Flax {{params, batch_stats}} checkpoint (top level: {keys})")
    return tree


def _get(tree, path):
    node = tree
    for p in path.split("/"):
        if not isinstance(node, dict) or p not in node:
            raise FormatError(f"missing {path}")
        node = node[p]
    if not isinstance(node, np.ndarray):
        raise FormatError(f"{path} is not an array")
    return node


def _n_numbered(d, prefix):
    n = 0
    while f"{prefix}_{n}" in d:
        n += 1
    return n


class DenseNetClassifier(nn.Module):
    """One SRDG classifier: forward(x [B,3,H,W] in [0,1], sigma [B]) -> logits [B,2].

    The weights live in buffers (converted from the Flax layout), so .double() / .float()
    switch the whole computation's precision.
    """

    def __init__(self, tree, dtype=torch.float32):
        super().__init__()
        P, S = tree["params"], tree["batch_stats"]
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(dtype)
        self._nbuf = 0

        def buf(name, a):
            self.register_buffer(name, t(a))
            return name

        def bn(path):
            """BatchNorm eval folded to y = x * mul + add, computed in float64 from the stored float32 values."""
            scale, bias = _get(P, path + "/scale").astype(np.float64), _get(P, path + "/bias").astype(np.float64)
            mean, var = _get(S, path + "/mean").astype(np.float64), _get(S, path + "/var").astype(np.float64)
            mul = scale / np.sqrt(var + BN_EPS)
            key = path.replace("/", "_")
            return (buf(key + "_mul", mul.reshape(1, -1, 1, 1)), buf(key + "_add", (bias - mean * mul).reshape(1, -1, 1, 1)))

        def conv(path, bias=False):
            """Returns buffer names (forward OIHW weight, input-gradient weight, bias or None)."""
            k = _get(P, path + "/kernel")          # HWIO, cross-correlation as in lax.conv
            if k.ndim != 4:
                raise FormatError(f"{path}/kernel has shape {k.shape}, want HWIO")
            key = path.replace("/", "_")
            w = buf(key + "_w", k.transpose(3, 2, 0, 1))          # OIHW
            # d conv(x, w) / dx == conv(g, w flipped in H,W with I and O swapped), same padding (stride 1)
            wt = buf(key + "_wt", k[::-1, ::-1].transpose(2, 3, 0, 1))
            b = buf(key + "_b", _get(P, path + "/bias")) if bias else None
            return w, wt, b

        def dense(path):
            key = path.replace("/", "_")
            return buf(key + "_k", _get(P, path + "/kernel")), buf(key + "_b", _get(P, path + "/bias"))

        buf("fourier_W", _get(P, "GaussianFourierProjection_0/W"))
        self.dense = [dense(f"Dense_{i}") for i in range(3)]
        self.stem = conv("Conv_0", bias=True)
        nblocks = _n_numbered(P, "DenseBlock")
        if nblocks == 0:
            raise FormatError("no DenseBlock_0 in params")
        self.blocks = []
        for bi in range(nblocks):
            nl = _n_numbered(P[f"DenseBlock_{bi}"], "DenseLayer")
            layers = []
            for li in range(nl):
                p = f"DenseBlock_{bi}/DenseLayer_{li}"
                layers.append((bn(p + "/BatchNorm_0"), conv(p + "/Conv_0"), bn(p + "/BatchNorm_1"),
                               conv(p + "/Conv_1")))
            trans = None
            if bi < nblocks - 1:
                p = f"TransitionLayer_{bi}"
                k = _get(P, p + "/Conv_0/kernel")[0, 0].T  # [Cout, Cin]
                # avgpool2(conv1x1(r)) == conv(r, this kernel, stride 2), whose input gradient is
                # conv_transpose(g, the same kernel, stride 2)
                wt = buf(p + "_pool_wt", np.broadcast_to(k[:, :, None, None] / 4.0, k.shape + (2, 2)))
                trans = (bn(p + "/BatchNorm_0"), conv(p + "/Conv_0")[0], wt)
            self.blocks.append((layers, trans))
        self.head_bn = bn("BatchNorm_0")
        k3 = _get(P, "Dense_3/kernel")  # [H*W*C (NHWC order), n_classes]
        c_final = _get(P, "BatchNorm_0/scale").shape[0]
        hw = k3.shape[0] // c_final
        side = int(round(math.sqrt(hw)))
        if side * side * c_final != k3.shape[0]:
            raise FormatError(f"Dense_3 kernel {k3.shape} does not fit {c_final} final channels")
        self.feat_side = side
        self.n_classes = k3.shape[1]
        # reorder the rows from NHWC flatten order to NCHW flatten order: row (c*side + y)*side + x
        kchw = k3.reshape(side, side, c_final, self.n_classes).transpose(2, 0, 1, 3).reshape(-1, self.n_classes)
        buf("head_k", kchw)
        buf("head_b", _get(P, "Dense_3/bias"))
        self.register_buffer("cifar_mean", torch.tensor(CIFAR_MEAN, dtype=dtype).reshape(1, 3, 1, 1))
        self.register_buffer("cifar_std", torch.tensor(CIFAR_STD, dtype=dtype).reshape(1, 3, 1, 1))
        self.n_params = sum(int(np.prod(a.shape)) for a in _leaves(P))
        self.input_side = side * 2 ** (nblocks - 1)

    # -- helpers ---------------------------------------------------------------------------
    def b(self, name):
        return getattr(self, name)

    def bn_affine(self, names):
        return self.b(names[0]), self.b(names[1])

    # -- forward ---------------------------------------------------------------------------
    def preprocess(self, x):
        """CIFAR-10 channel normalisation then per-image standardisation over C,H,W (population std)."""
        a = (x - self.cifar_mean) / self.cifar_std
        n = a.shape[1] * a.shape[2] * a.shape[3]
        mu = a.mean(dim=(1, 2, 3), keepdim=True)
        c = a - mu
        std = torch.sqrt((c * c).mean(dim=(1, 2, 3), keepdim=True))
        d = torch.clamp(std, min=1.0 / math.sqrt(n))
        return c / d, std, d

    def time_embedding(self, sigma):
        """Dense_2(swish(Dense_1(swish(Dense_0(fourier(log sigma)))))) -> [B, 32]."""
        p = torch.log(sigma)[:, None] * self.fourier_W[None, :] * 2 * math.pi
        t = torch.cat([torch.sin(p), torch.cos(p)], dim=1)
        (k0, b0), (k1, b1), (k2, b2) = [(self.b(k), self.b(b)) for k, b in self.dense]
        t = t @ k0 + b0
        t = F.silu(t) @ k1 + b1
        return F.silu(t) @ k2 + b2

    def forward_trace(self, x, sigma, pre=None):
        """Forward pass keeping what the explicit backward needs. Returns (logits, trace).

        pre: the result of preprocess(x), when the caller already has it.
        """
        p, std, d = pre if pre is not None else self.preprocess(x)
        ta = self.time_embedding(sigma)
        w, bias = self.b(self.stem[0]), self.b(self.stem[2])
        h = F.conv2d(p, w, bias, padding=1)
        n_conv = h.shape[1]
        h = torch.cat([h, ta[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], dim=1)
        tr = {"p": p, "std": std, "d": d, "n_stem": n_conv, "ta": ta, "blocks": []}
        for layers, trans in self.blocks:
            lt = []
            for bn0, w0, bn1, w1 in layers:
                m0, a0 = self.bn_affine(bn0)
                u1 = h * m0 + a0
                z1 = F.conv2d(F.relu(u1), self.b(w0[0]))
                m1, a1 = self.bn_affine(bn1)
                u2 = z1 * m1 + a1
                z = F.conv2d(F.relu(u2), self.b(w1[0]), padding=1)
                lt.append((h.shape[1], u1, u2))
                h = torch.cat([h, z], dim=1)
            tt = None
            if trans is not None:
                bnt, _, wp = trans
                m, a = self.bn_affine(bnt)
                u = h * m + a
                # avgpool2(conv1x1(r)) as one conv: the 1x1 kernel spread over 2x2 / 4, stride 2
                h = F.conv2d(F.relu(u), self.b(wp), stride=2)
                tt = u
            tr["blocks"].append((lt, tt))
        m, a = self.bn_affine(self.head_bn)
        u = h * m + a
        feat = F.relu(u)
        tr["head_u"] = u
        tr["feat"] = feat
        logits = feat.reshape(feat.shape[0], -1) @ self.head_k + self.head_b
        return logits, tr

    def forward(self, x, sigma):
        return self.forward_trace(x, sigma)[0]

    # -- explicit backward -------------------------------------------------------------------
    def backward_to_pre(self, g_logits, tr):
        """d(objective)/d(preprocessed input p), given d(objective)/d(logits), without autograd."""
        g = (g_logits @ self.head_k.t()).reshape(tr["feat"].shape)
        m, _ = self.bn_affine(self.head_bn)
        g = g * (tr["head_u"] > 0).to(g.dtype) * m
        for (layers, trans), (lt, tt) in zip(reversed(self.blocks), reversed(tr["blocks"])):
            if trans is not None:
                bnt, _, wt = trans
                g = F.conv_transpose2d(g, self.b(wt), stride=2)
                m, _ = self.bn_affine(bnt)
                g = g * (tt > 0).to(g.dtype) * m
            for (bn0, w0, bn1, w1), (c_in, u1, u2) in zip(reversed(layers), reversed(lt)):
                gz = g[:, c_in:]
                g = g[:, :c_in]
                gr2 = F.conv2d(gz, self.b(w1[1]), padding=1)
                m1, _ = self.bn_affine(bn1)
                gz1 = gr2 * (u2 > 0).to(g.dtype) * m1
                gr1 = F.conv2d(gz1, self.b(w0[1]))
                m0, _ = self.bn_affine(bn0)
                g = g + gr1 * (u1 > 0).to(g.dtype) * m0
        g = g[:, :tr["n_stem"]]  # the time-embedding channels do not depend on x
        return F.conv2d(g, self.b(self.stem[1]), padding=1)

    def preprocess_backward(self, g_p, tr):
        """d/dx through p = (a - mean(a)) / max(std(a), 1/sqrt(N)), a = (x - m_c) / s_c."""
        p, std, d = tr["p"], tr["std"], tr["d"]
        n = p.shape[1] * p.shape[2] * p.shape[3]
        active = (std > 1.0 / math.sqrt(n)).to(p.dtype)  # std term only where the floor is not taken
        mean_g = g_p.mean(dim=(1, 2, 3), keepdim=True)
        mean_gp = (g_p * p).mean(dim=(1, 2, 3), keepdim=True)
        g_a = (g_p - mean_g - active * p * mean_gp) / d
        return g_a / self.cifar_std


def _leaves(tree):
    for v in tree.values():
        if isinstance(v, dict):
            yield from _leaves(v)
        else:
            yield v


def logprob_grad(logits, labels):
    """d log_softmax(logits)[label] / d logits for 2 classes, labels float 0/1 (one-hot [1-l, l]).

    Written as l * sigmoid(-delta) - (1 - l) * sigmoid(delta), delta = z1 - z0, for class 1 (and its
    negative for class 0): equal to onehot - softmax, but without the cancellation 1 - p when the
    prediction saturates (p ~ 1 - 1e-15), so float32 keeps the tiny gradients of confident,
    agreeing classifiers accurate instead of rounding them to noise.
    """
    delta = logits[:, 1] - logits[:, 0]
    g1 = labels * torch.sigmoid(-delta) - (1 - labels) * torch.sigmoid(delta)
    return torch.stack([-g1, g1], dim=1)


class Guidance(nn.Module):
    """forward(x_t [B,3,H,W], sigma [B], labels [B,A]) -> grad [B,3,H,W], no autograd inside.

    labels[:, a] is 0 or 1 for classifier a, or -1 to leave that attribute out for that item.
    """

    def __init__(self, classifiers):
        super().__init__()
        self.classifiers = nn.ModuleList(classifiers)

    def forward(self, x_t, sigma, labels):
        # all classifiers share the same preprocessing (same constants): it runs once, and so
        # does its backward, on the sum of the classifiers' gradients w.r.t. its output
        first = self.classifiers[0]
        pre = first.preprocess(x_t)
        g_p = None
        for i, c in enumerate(self.classifiers):
            logits, tr = c.forward_trace(x_t, sigma, pre)
            # label -1 (abstain, srdgd.label_abstain): the attribute contributes nothing for that item
            keep = (labels[:, i] >= 0).to(x_t.dtype)
            g_logits = logprob_grad(logits, labels[:, i] * keep) * keep[:, None]
            g = c.backward_to_pre(g_logits, tr)
            g_p = g if g_p is None else g_p + g
        return first.preprocess_backward(g_p, {"p": pre[0], "std": pre[1], "d": pre[2]})


def autograd_guidance(classifiers, x, sigma, labels):
    """Reference: the same gradient with torch.autograd (for tests)."""
    x = x.detach().clone().requires_grad_(True)
    obj = 0
    for i, c in enumerate(classifiers):
        lp = torch.log_softmax(c(x, sigma), dim=1)
        onehot = torch.stack([1 - labels[:, i], labels[:, i]], dim=1)
        obj = obj + (lp * onehot).sum()
    (g,) = torch.autograd.grad(obj, x)
    return g


def load_classifier(path, dtype=torch.float32):
    return DenseNetClassifier(read_flax_checkpoint(path), dtype=dtype).eval()
