"""Plain-NumPy forward passes of face-api's recognition and 68-landmark networks.

An independent implementation for parity tests: it works in NHWC with the TF.js (HWIO) weight
layout as the manifest stores it, computes in float64, and follows TF's padding rules
('valid': no padding; 'same': total pad max((ceil(n/s)-1)*s + k - n, 0), the smaller half
before). It shares no code with models/faceapi/torch_net.py; it reads the same dequantised weight
dictionary ({manifest name: array}).

Inputs are NHWC RGB images with values 0..255 (what face-api feeds its networks).
"""
import numpy as np

MEAN_RGB = np.array([122.782, 117.001, 104.298])


def _pad_amounts(n, k, s, padding):
    if padding == "valid":
        return 0, 0, (n - k) // s + 1
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


def _windows(x, k, s, padding):
    """x [N,H,W,C] -> patches [N,OH,OW,k,k,C] for a k x k window at stride s."""
    n, h, w, c = x.shape
    t, b, oh = _pad_amounts(h, k, s, padding)
    l, r, ow = _pad_amounts(w, k, s, padding)
    if t or b or l or r:
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # [N,H',W',C,k,k]
    v = v[:, ::s, ::s][:, :oh, :ow]
    return v.transpose(0, 1, 2, 4, 5, 3)


def conv2d(x, w, stride, padding):
    """TF conv2d: x [N,H,W,C], w [k,k,C,O] (HWIO)."""
    p = _windows(x, w.shape[0], stride, padding)
    return np.tensordot(p, w, axes=([3, 4, 5], [0, 1, 2]))


def depthwise(x, w, stride, padding):
    """TF depthwise conv with multiplier 1: w [k,k,C,1]."""
    p = _windows(x, w.shape[0], stride, padding)
    return np.einsum("nhwijc,ijc->nhwc", p, w[:, :, :, 0])


def max_pool(x, k, s):
    return _windows(x, k, s, "valid").max(axis=(3, 4))


def avg_pool(x, k, s):
    return _windows(x, k, s, "valid").mean(axis=(3, 4))


def relu(x):
    return np.maximum(x, 0)


def _normalise(images):
    return (np.asarray(images, dtype=np.float64) - MEAN_RGB) / 255.0


def _conv_layer(W, x, prefix, stride, padding, with_relu):
    y = conv2d(x, W[prefix + "/conv/filters"], stride, padding) + W[prefix + "/conv/bias"]
    y = y * W[prefix + "/scale/weights"] + W[prefix + "/scale/biases"]
    return relu(y) if with_relu else y


def _residual(W, x, name):
    y = _conv_layer(W, x, name + "/conv1", 1, "same", True)
    y = _conv_layer(W, y, name + "/conv2", 1, "same", False)
    return relu(y + x)


def _residual_down(W, x, name):
    y = _conv_layer(W, x, name + "/conv1", 2, "valid", True)
    y = _conv_layer(W, y, name + "/conv2", 1, "same", False)
    pooled = avg_pool(x, 2, 2)
    if pooled.shape[1:3] != y.shape[1:3]:
        grown = np.zeros(pooled.shape[:3] + (y.shape[3],))
        grown[:, : y.shape[1], : y.shape[2]] = y
        y = grown
    if pooled.shape[3] != y.shape[3]:
        pooled = np.concatenate([pooled, np.zeros(pooled.shape)], axis=3)
    return relu(pooled + y)


def recognition_forward(weights, images):
    """images [N,150,150,3] RGB 0..255 -> descriptors [N,128] (float64)."""
    W = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    x = _normalise(images)
    x = _conv_layer(W, x, "conv32_down", 2, "valid", True)
    x = max_pool(x, 3, 2)
    plan = ["conv32_1", "conv32_2", "conv32_3", "*conv64_down", "conv64_1", "conv64_2", "conv64_3",
            "*conv128_down", "conv128_1", "conv128_2", "*conv256_down", "conv256_1", "conv256_2", "*conv256_down_out"]
    for step in plan:
        x = _residual_down(W, x, step[1:]) if step.startswith("*") else _residual(W, x, step)
    return x.mean(axis=(1, 2)) @ W["fc"]


def _separable(W, x, prefix, stride):
    y = depthwise(x, W[prefix + "/depthwise_filter"], stride, "same")
    y = np.tensordot(y, W[prefix + "/pointwise_filter"][0, 0], axes=([3], [0]))
    return y + W[prefix + "/bias"]


def _dense_block(W, x, name, first):
    if first:
        out1 = relu(conv2d(x, W[name + "/conv0/filters"], 2, "same") + W[name + "/conv0/bias"])
    else:
        out1 = relu(_separable(W, x, name + "/conv0", 2))
    out2 = _separable(W, out1, name + "/conv1", 1)
    out3 = _separable(W, relu(out1 + out2), name + "/conv2", 1)
    out4 = _separable(W, relu(out1 + out2 + out3), name + "/conv3", 1)
    return relu(out1 + out2 + out3 + out4)


def landmarks_forward(weights, images):
    """images [N,112,112,3] RGB 0..255 -> [N,68,2] (x, y) relative to the input (float64)."""
    W = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    x = _normalise(images)
    for i in range(4):
        x = _dense_block(W, x, f"dense{i}", i == 0)
    x = avg_pool(x, 7, 2).reshape(x.shape[0], -1)
    return (x @ W["fc/weights"] + W["fc/bias"]).reshape(-1, 68, 2)
