"""Independent reference values for match.PSNR and match.SSIM.

Writes a.npy and b.npy (two float32 planar RGB images, 3 x 24 x 20, values in [0, 1]) and
expected.json with PSNR (peak 1) and SSIM computed here in float64 with NumPy only: SSIM of
Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5, normalised to unit sum), K1 0.01,
K2 0.03, L = 1, the window applied as a direct 2-D weighted sum at every position where it
fits ('valid', as the authors' ssim.m), the SSIM map averaged per channel, channels averaged.
(The Go code filters separably; this script does not.)

Run from the repository root: /usr/bin/python3 eval/testdata/metrics/make_reference.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def window(size=11, sigma=1.5):
    ax = np.arange(size) - size // 2
    xx, yy = np.meshgrid(ax, ax)
    w = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
    return w / w.sum()


def filt_valid(img, w):
    k = w.shape[0]
    h, wd = img.shape
    out = np.empty((h - k + 1, wd - k + 1))
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = (img[r:r + k, c:c + k] * w).sum()
    return out


def ssim_channel(x, y, L=1.0):
    w = window()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    mx, my = filt_valid(x, w), filt_valid(y, w)
    vx = filt_valid(x * x, w) - mx ** 2
    vy = filt_valid(y * y, w) - my ** 2
    cxy = filt_valid(x * y, w) - mx * my
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return m.mean()


def main():
    rng = np.random.RandomState(20041)
    yy, xx = np.mgrid[0:24, 0:20]
    base = np.stack([0.5 + 0.4 * np.sin(xx / 3.0 + k) * np.cos(yy / 4.0 - k) for k in range(3)])
    a = np.clip(base + 0.05 * rng.randn(3, 24, 20), 0, 1).astype(np.float32)
    b = np.clip(0.9 * a + 0.03 + 0.08 * rng.randn(3, 24, 20), 0, 1).astype(np.float32)
    np.save(os.path.join(HERE, "a.npy"), a)
    np.save(os.path.join(HERE, "b.npy"), b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    mse = ((a64 - b64) ** 2).mean()
    per = [ssim_channel(a64[c], b64[c]) for c in range(3)]
    out = {
        "shape": [3, 24, 20],
        "psnr": 10 * np.log10(1.0 / mse),
        "ssim": float(np.mean(per)),
        "ssim_per_channel": [float(v) for v in per],
        "ssim_self": float(np.mean([ssim_channel(a64[c], a64[c]) for c in range(3)])),
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
