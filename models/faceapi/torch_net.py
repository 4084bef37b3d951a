"""PyTorch ports of two face-api networks, built from dequantised TF.js weights.

FaceRecognitionNet (model/face_recognition_model): face-api's port of dlib's ResNet face
descriptor (dlib_face_recognition_resnet_model_v1 lineage). face-api's forward pass
(src/faceRecognitionNet/*.ts in the npm package), in NHWC, on a 150x150 RGB float image with
values 0..255:
  x = (x - [122.782, 117.001, 104.298]) / 255
  convDown(conv32_down): conv 7x7 stride 2 'valid' + bias, then scale (x*w + b), ReLU -> 72x72x32
  maxPool 3x3 stride 2 'valid'                                                     -> 35x35x32
  residual x3 (conv32_1..3), residualDown(conv64_down), residual x3 (conv64_1..3),
  residualDown(conv128_down), residual x2 (conv128_1..2), residualDown(conv256_down),
  residual x2 (conv256_1..2), residualDown(conv256_down_out)                      -> 2x2x256
  mean over H, W -> matMul(fc [256, 128]) -> 128-d descriptor (no bias, NOT L2-normalised).
residual(x): relu(scale2(conv2(relu(scale1(conv1(x))))) + x), both convs 3x3 stride 1 'same'.
residualDown(x): conv1 is 3x3 stride 2 'valid' (+scale, ReLU), conv2 3x3 stride 1 'same' (+scale);
  the shortcut is avgPool 2x2 stride 2 'valid' of x, zero-padded on the channel axis (appended)
  when the block doubles the channels; when the conv path comes out one row/column smaller than
  the shortcut (8x8 -> 3x3 vs 4x4, 4x4 -> 1x1 vs 2x2) a zero row is appended at the bottom and
  a zero column at the right of the conv path; then relu(shortcut + conv path).

FaceLandmark68Net (model/face_landmark_68_model): face-api's own 68-point landmark regressor
(src/faceFeatureExtractor, src/faceLandmarkNet, src/faceProcessor). On a 112x112 RGB image
0..255, same mean subtraction and /255, then four dense blocks (dense0..dense3), each:
  out1 = relu(conv0(x))   stride 2 'same' (dense0: plain 3x3 conv; others: separable conv)
  out2 = sep1(out1); out3 = sep2(relu(out1 + out2)); out4 = sep3(relu(out1 + out2 + out3))
  return relu(out1 + out2 + out3 + out4)
separable conv = depthwise 3x3 (multiplier 1) then pointwise 1x1, then + bias ('same' padding).
56 -> 28 -> 14 -> 7 pixels; avgPool 7x7 stride 2 'valid' -> 1x1x256; fc (256x136 + bias) ->
136 values = 68 (x, y) pairs interleaved, relative to the 112x112 input (0..1).
TF 'same' padding with stride 2 on an even size pads 0 before and 1 after (not symmetric).

The exported graphs take `image` [B,3,H,W] float32 RGB in [0, 1] (NCHW) and multiply by 255
inside, so the normalisation above is part of the graph.
"""
import torch
import torch.nn.functional as F
from torch import nn

MEAN_RGB = (122.782, 117.001, 104.298)
EMBED_SIZE = 150
EMBED_DIM = 128
LANDMARK_SIZE = 112

# (block name, kind, in channels, out channels) in forward order
RESNET_BLOCKS = (
    ("conv32_1", "res", 32, 32), ("conv32_2", "res", 32, 32), ("conv32_3", "res", 32, 32),
    ("conv64_down", "down", 32, 64), ("conv64_1", "res", 64, 64), ("conv64_2", "res", 64, 64), ("conv64_3", "res", 64, 64),
    ("conv128_down", "down", 64, 128), ("conv128_1", "res", 128, 128), ("conv128_2", "res", 128, 128),
    ("conv256_down", "down", 128, 256), ("conv256_1", "res", 256, 256), ("conv256_2", "res", 256, 256),
    ("conv256_down_out", "down", 256, 256),
)
DENSE_CHANNELS = (("dense0", 3, 32), ("dense1", 32, 64), ("dense2", 64, 128), ("dense3", 128, 256))


def recognition_shapes():
    """{weight name: TF.js shape} that face_recognition_model must hold."""
    def conv_layer(prefix, k, cin, cout):
        return {f"{prefix}/conv/filters": (k, k, cin, cout), f"{prefix}/conv/bias": (cout,),
                f"{prefix}/scale/weights": (cout,), f"{prefix}/scale/biases": (cout,)}
    shapes = conv_layer("conv32_down", 7, 3, 32)
    for name, _, cin, cout in RESNET_BLOCKS:
        shapes.update(conv_layer(f"{name}/conv1", 3, cin, cout))
        shapes.update(conv_layer(f"{name}/conv2", 3, cout, cout))
    shapes["fc"] = (256, EMBED_DIM)
    return shapes


def landmark_shapes():
    """{weight name: TF.js shape} that face_landmark_68_model must hold."""
    shapes = {}
    for name, cin, cout in DENSE_CHANNELS:
        if name == "dense0":
            shapes[f"{name}/conv0/filters"] = (3, 3, cin, cout)
            shapes[f"{name}/conv0/bias"] = (cout,)
        else:
            shapes[f"{name}/conv0/depthwise_filter"] = (3, 3, cin, 1)
            shapes[f"{name}/conv0/pointwise_filter"] = (1, 1, cin, cout)
            shapes[f"{name}/conv0/bias"] = (cout,)
        for j in (1, 2, 3):
            shapes[f"{name}/conv{j}/depthwise_filter"] = (3, 3, cout, 1)
            shapes[f"{name}/conv{j}/pointwise_filter"] = (1, 1, cout, cout)
            shapes[f"{name}/conv{j}/bias"] = (cout,)
    shapes["fc/weights"] = (256, 136)
    shapes["fc/bias"] = (136,)
    return shapes


OIHW = (3, 2, 0, 1)  # TF.js HWIO filters -> PyTorch OIHW


def tfjs_sources(model):
    """{state_dict key: (TF.js weight name, axis permutation or None)} for every weight of model.

    The tensor under that key equals the TF.js weight permuted, then reshaped to its own shape.
    """
    out = {}
    for prefix, mod in model.named_modules():
        for local, src in getattr(mod, "tfjs_sources", {}).items():
            out[f"{prefix}.{local}" if prefix else local] = src
    return out


class _ConstPad(torch.autograd.Function):
    """Zero padding of an NCHW tensor that exports as one ONNX Pad with a constant pads input
    (F.pad exports a chain of shape ops under a dynamic batch)."""

    @staticmethod
    def forward(ctx, x, begins, ends):
        return F.pad(x, (begins[3], ends[3], begins[2], ends[2], begins[1], ends[1]))

    @staticmethod
    def symbolic(g, x, begins, ends):
        pads = g.op("Constant", value_t=torch.tensor(list(begins) + list(ends), dtype=torch.int64))
        return g.op("Pad", x, pads, mode_s="constant")


def pad(x, begins, ends):
    """Zero-pad x [N,C,H,W]: begins/ends are (n, c, h, w) amounts before/after each axis."""
    return _ConstPad.apply(x, tuple(begins), tuple(ends))


def _hwio_to_oihw(w):
    return torch.from_numpy(w.copy()).permute(3, 2, 0, 1).contiguous()


class _Normalise(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x):
        return (x * 255.0 - self.mean) / 255.0


class _ConvScale(nn.Module):
    """conv + bias, then face-api's per-channel scale layer (x * weights + biases)."""

    def __init__(self, weights, prefix, stride, padding):
        super().__init__()
        w = _hwio_to_oihw(weights[f"{prefix}/conv/filters"])
        self.conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=stride, padding=padding, bias=True)
        self.conv.weight.data.copy_(w)
        self.conv.bias.data.copy_(torch.from_numpy(weights[f"{prefix}/conv/bias"].copy()))
        self.register_buffer("scale_w", torch.from_numpy(weights[f"{prefix}/scale/weights"].copy()).view(1, -1, 1, 1))
        self.register_buffer("scale_b", torch.from_numpy(weights[f"{prefix}/scale/biases"].copy()).view(1, -1, 1, 1))
        self.tfjs_sources = {"conv.weight": (f"{prefix}/conv/filters", OIHW), "conv.bias": (f"{prefix}/conv/bias", None),
                             "scale_w": (f"{prefix}/scale/weights", None), "scale_b": (f"{prefix}/scale/biases", None)}

    def forward(self, x):
        return self.conv(x) * self.scale_w + self.scale_b


class _Residual(nn.Module):
    def __init__(self, weights, name, down, cin, cout):
        super().__init__()
        self.down, self.extra_channels = down, cout - cin
        self.conv1 = _ConvScale(weights, f"{name}/conv1", 2 if down else 1, 0 if down else 1)
        self.conv2 = _ConvScale(weights, f"{name}/conv2", 1, 1)

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        if not self.down:
            return F.relu(out + x)
        short = F.avg_pool2d(x, 2, 2)
        if self.extra_channels:
            short = pad(short, (0, 0, 0, 0), (0, self.extra_channels, 0, 0))
        if out.shape[-1] != short.shape[-1]:
            # static for a fixed 150x150 input: one zero row at the bottom, one column at the right
            out = pad(out, (0, 0, 0, 0), (0, 0, 1, 1))
        return F.relu(short + out)


class FaceRecognitionNet(nn.Module):
    """image [B,3,150,150] RGB in [0,1] -> embedding [B,128] (face-api's raw descriptor)."""

    def __init__(self, weights):
        super().__init__()
        self.norm = _Normalise()
        self.stem = _ConvScale(weights, "conv32_down", 2, 0)
        self.blocks = nn.ModuleList(_Residual(weights, n, kind == "down", cin, cout) for n, kind, cin, cout in RESNET_BLOCKS)
        self.register_buffer("fc", torch.from_numpy(weights["fc"].copy()))
        self.tfjs_sources = {"fc": ("fc", None)}

    def forward(self, image):
        x = F.relu(self.stem(self.norm(image)))
        x = F.max_pool2d(x, 3, 2)
        for b in self.blocks:
            x = b(x)
        return torch.matmul(x.mean(dim=(2, 3)), self.fc)


class _SeparableConv(nn.Module):
    def __init__(self, weights, prefix, stride):
        super().__init__()
        dw = weights[f"{prefix}/depthwise_filter"]  # [3,3,C,1]
        pw = weights[f"{prefix}/pointwise_filter"]  # [1,1,C,O]
        c = dw.shape[2]
        self.stride = stride
        self.dw = nn.Conv2d(c, c, 3, stride=stride, padding=1 if stride == 1 else 0, groups=c, bias=False)
        self.dw.weight.data.copy_(torch.from_numpy(dw.copy()).permute(2, 3, 0, 1))
        self.pw = nn.Conv2d(c, pw.shape[3], 1, bias=True)
        self.pw.weight.data.copy_(_hwio_to_oihw(pw))
        self.pw.bias.data.copy_(torch.from_numpy(weights[f"{prefix}/bias"].copy()))
        self.tfjs_sources = {"dw.weight": (f"{prefix}/depthwise_filter", (2, 3, 0, 1)),
                             "pw.weight": (f"{prefix}/pointwise_filter", OIHW), "pw.bias": (f"{prefix}/bias", None)}

    def forward(self, x):
        if self.stride == 2:  # TF 'same' at stride 2 on an even size: 0 before, 1 after
            x = pad(x, (0, 0, 0, 0), (0, 0, 1, 1))
        return self.pw(self.dw(x))


class _PlainConvS2(nn.Module):
    def __init__(self, weights, prefix):
        super().__init__()
        w = _hwio_to_oihw(weights[f"{prefix}/filters"])
        self.conv = nn.Conv2d(w.shape[1], w.shape[0], 3, stride=2, padding=0, bias=True)
        self.conv.weight.data.copy_(w)
        self.conv.bias.data.copy_(torch.from_numpy(weights[f"{prefix}/bias"].copy()))
        self.tfjs_sources = {"conv.weight": (f"{prefix}/filters", OIHW), "conv.bias": (f"{prefix}/bias", None)}

    def forward(self, x):
        return self.conv(pad(x, (0, 0, 0, 0), (0, 0, 1, 1)))


class _DenseBlock4(nn.Module):
    def __init__(self, weights, name, first):
        super().__init__()
        self.conv0 = _PlainConvS2(weights, f"{name}/conv0") if first else _SeparableConv(weights, f"{name}/conv0", 2)
        self.conv1 = _SeparableConv(weights, f"{name}/conv1", 1)
        self.conv2 = _SeparableConv(weights, f"{name}/conv2", 1)
        self.conv3 = _SeparableConv(weights, f"{name}/conv3", 1)

    def forward(self, x):
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class FaceLandmark68Net(nn.Module):
    """image [B,3,112,112] RGB in [0,1] -> landmarks [B,68,2] (x, y) relative to the input (0..1)."""

    def __init__(self, weights):
        super().__init__()
        self.norm = _Normalise()
        self.blocks = nn.ModuleList(_DenseBlock4(weights, n, n == "dense0") for n, _, _ in DENSE_CHANNELS)
        self.register_buffer("fc_w", torch.from_numpy(weights["fc/weights"].copy()))
        self.register_buffer("fc_b", torch.from_numpy(weights["fc/bias"].copy()))
        self.tfjs_sources = {"fc_w": ("fc/weights", None), "fc_b": ("fc/bias", None)}

    def forward(self, image):
        x = self.norm(image)
        for b in self.blocks:
            x = b(x)
        x = F.avg_pool2d(x, 7, 2)  # 7x7 -> 1x1
        x = torch.matmul(x.flatten(1), self.fc_w) + self.fc_b
        return x.view(-1, 68, 2)
