"""The LR degradation of SRDG (spec/SRDG.md section 2), defined once, in numpy.

    lr = downscale(hr, 16)        antialiased bilinear (triangle filter)
    y  = upscale(lr, 128)         antialiased bicubic, Keys a = -0.5
    kept as float: no re-quantisation, NO clipping (bicubic over/undershoots [0, 1]).

The algorithm is the separable convolution resampler of Pillow's Image.resize (what
PIL calls BILINEAR and BICUBIC for a float "F" image), written out so that other code
(the Go daemon) can port it and prove parity with the committed vectors under
models/testdata/resample/:

For one axis, input length n_in, output length n_out:
    scale       = n_in / n_out
    filterscale = max(scale, 1)          (downscaling widens the filter: antialiasing)
    support     = filter_support * filterscale   (bilinear 1, bicubic 2)
    for output pixel i:
        center = (i + 0.5) * scale                    (pixel centres at +0.5)
        lo = max(trunc(center - support + 0.5), 0)
        hi = min(trunc(center + support + 0.5), n_in)
        w[j] = filter((j - center + 0.5) / filterscale)   for j in lo .. hi-1
        w /= sum(w)                                   (normalised, edges renormalised)
        out[i] = sum_j w[j] * in[j]
Weights and sums in float64. An image is resampled horizontally (along width) first,
then vertically. Pillow rounds to float32 after each pass for an "F" image; pass
dtype=np.float32 to reproduce that bit-for-bit-ish, np.float64 to keep full precision.

Filters: bilinear f(x) = max(0, 1 - |x|);
         bicubic (Keys, a = -0.5): |x| < 1: (a+2)|x|^3 - (a+3)|x|^2 + 1,
                                   1 <= |x| < 2: a(|x|^3 - 5|x|^2 + 8|x| - 4), else 0.
torch's bicubic uses a = -0.75 and no antialiasing by default: do not use it for y.
"""
import functools
import math

import numpy as np

BICUBIC_A = -0.5


def _bilinear(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x, a=BICUBIC_A):
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


FILTERS = {"bilinear": (_bilinear, 1.0), "bicubic": (_bicubic, 2.0)}


@functools.lru_cache(maxsize=64)
def weight_matrix(n_in, n_out, kind):
    """The [n_out, n_in] float64 resampling matrix for one axis (read-only)."""
    if kind not in FILTERS:
        raise ValueError(f"unknown filter {kind!r} (known: {', '.join(FILTERS)})")
    if n_in < 1 or n_out < 1:
        raise ValueError(f"bad sizes {n_in} -> {n_out}")
    fn, fsupport = FILTERS[kind]
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = fsupport * filterscale
    w = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)  # int() truncates toward zero, as C does
        hi = min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi, dtype=np.float64)
        k = fn((j - center + 0.5) / filterscale)
        s = k.sum()
        if s != 0.0:
            k = k / s
        w[i, lo:hi] = k
    w.setflags(write=False)
    return w


def resize(img, size, kind, dtype=np.float64):
    """Resize images [..., H, W] (channels-first or single channel) to size=(h, w).

    Horizontal pass first, then vertical, accumulating in float64; with dtype=float32
    the result is rounded to float32 after each pass (Pillow's "F" mode).
    """
    img = np.asarray(img)
    if img.ndim < 2:
        raise ValueError(f"image must have at least 2 dims, got shape {img.shape}")
    h_out, w_out = size
    h_in, w_in = img.shape[-2:]
    wh = weight_matrix(w_in, w_out, kind)
    wv = weight_matrix(h_in, h_out, kind)
    x = img.astype(np.float64)
    x = np.matmul(x, wh.T)  # [..., h_in, w_out]
    x = x.astype(dtype).astype(np.float64)
    x = np.matmul(wv, x)  # [..., h_out, w_out]
    return x.astype(dtype)


def downscale(hr, lr_size, dtype=np.float64):
    """Antialiased bilinear downscale of [..., H, W] to lr_size x lr_size."""
    return resize(hr, (lr_size, lr_size), "bilinear", dtype)


def upscale(lr, hr_size, dtype=np.float64):
    """Antialiased bicubic (a=-0.5) upscale of [..., h, w] to hr_size x hr_size, no clipping."""
    return resize(lr, (hr_size, hr_size), "bicubic", dtype)


def degrade(hr, lr_size, dtype=np.float32):
    """(lr, y) for HR images [..., 3, H, W] in [0, 1]: the SRDG LR image and conditioning y."""
    hr = np.asarray(hr)
    lr = downscale(hr, lr_size, dtype)
    y = upscale(lr, hr.shape[-1], dtype)
    return lr, y


def synthetic_pattern(size=128):
    """A deterministic smooth-plus-edges RGB test pattern [3, size, size] in [0, 1] (float64).

    Used for the committed test vectors (no CelebA pixels). Defined by closed-form
    expressions so that any port can regenerate it, but ports should load the .npy.
    """
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    u, v = (xx + 0.5) / size, (yy + 0.5) / size
    r = 0.5 + 0.5 * np.sin(2 * math.pi * (3 * u + 1.5 * v * v))
    g = np.clip(1.2 * u * (1 - v) + 0.25 * ((xx // 16 + yy // 16) % 2), 0, 1)
    rad = np.hypot(u - 0.45, v - 0.55)
    b = np.where(rad < 0.3, 0.9 - rad, 0.1 + 0.8 * ((xx.astype(int) ^ yy.astype(int)) % 7) / 6.0)
    return np.stack([r, g, b]).clip(0.0, 1.0)


def test_vectors():
    """name -> array of the committed parity vectors (models/testdata/resample/).

    hr_u8: uint8 [128, 128, 3] HWC, the quantised synthetic pattern; hr = hr_u8 / 255 as
    float32 CHW is the input. lr16/lr8: float32 [3, 16, 16] / [3, 8, 8]; y_x8/y_x16: float32
    [3, 128, 128]; all computed with float32 rounding after each pass (Pillow "F" semantics).
    """
    hr_u8 = np.clip(np.moveaxis(synthetic_pattern(128), 0, -1) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    hr = np.moveaxis(hr_u8.astype(np.float32) / np.float32(255.0), -1, 0)
    out = {"hr_u8": hr_u8}
    for scale, n in ((8, 16), (16, 8)):
        lr, y = degrade(hr, n, np.float32)
        out[f"lr{n}"] = lr
        out[f"y_x{scale}"] = y
    return out


def write_test_vectors(directory):
    import os

    os.makedirs(directory, exist_ok=True)
    for name, arr in test_vectors().items():
        np.save(os.path.join(directory, name + ".npy"), arr)
