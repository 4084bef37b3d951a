import os
import unittest

import numpy as np
from PIL import Image

from models.data import resample

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "testdata", "resample")
PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def pil_resize(a, size, kind):
    h, w = size
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((w, h), PIL_FILTERS[kind]))


class ResampleTest(unittest.TestCase):
    def test_matches_pil_float_images(self):
        rng = np.random.default_rng(1)
        cases = [
            ((128, 128), (16, 16), "bilinear"),
            ((128, 128), (8, 8), "bilinear"),
            ((16, 16), (128, 128), "bicubic"),
            ((8, 8), (128, 128), "bicubic"),
            ((128, 128), (16, 16), "bicubic"),
            ((16, 16), (128, 128), "bilinear"),
            ((37, 53), (11, 29), "bicubic"),
            ((37, 53), (80, 13), "bilinear"),
            ((120, 120), (128, 128), "bicubic"),
            ((5, 3), (1, 1), "bilinear"),
        ]
        for src, dst, kind in cases:
            a = rng.standard_normal(src).astype(np.float32) * 0.4 + 0.5
            want = pil_resize(a, dst, kind)
            for dtype in (np.float32, np.float64):
                with self.subTest(src=src, dst=dst, kind=kind, dtype=dtype.__name__):
                    got = resample.resize(a, dst, kind, dtype)
                    self.assertEqual(got.shape, tuple(dst))
                    self.assertLessEqual(float(np.abs(got - want).max()), 1e-5)

    def test_degrade_channels_match_pil(self):
        hr = resample.synthetic_pattern(128).astype(np.float32)
        for lr_size in (16, 8):
            lr, y = resample.degrade(hr, lr_size)
            for c in range(3):
                want_lr = pil_resize(hr[c], (lr_size, lr_size), "bilinear")
                want_y = pil_resize(want_lr, (128, 128), "bicubic")
                self.assertLessEqual(float(np.abs(lr[c] - want_lr).max()), 1e-5)
                self.assertLessEqual(float(np.abs(y[c] - want_y).max()), 1e-5)

    def test_filters(self):
        cases = [(0.0, 1.0), (0.5, 0.5625), (1.0, 0.0), (1.5, -0.0625), (2.0, 0.0), (-0.5, 0.5625), (3.0, 0.0)]
        for x, want in cases:
            with self.subTest(x=x):
                self.assertAlmostEqual(float(resample._bicubic(np.array(x))), want, places=12)
        self.assertEqual(float(resample._bilinear(np.array(0.25))), 0.75)

    def test_weights_normalised(self):
        for n_in, n_out, kind in ((128, 16, "bilinear"), (16, 128, "bicubic"), (8, 128, "bicubic"), (128, 8, "bilinear")):
            w = resample.weight_matrix(n_in, n_out, kind)
            np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        with self.assertRaises(ValueError):
            resample.weight_matrix(4, 2, "lanczos")

    def test_no_clipping(self):
        step = np.zeros((3, 16, 16), np.float32)
        step[:, :, 8:] = 1.0
        y = resample.upscale(step, 128)
        self.assertGreater(float(y.max()), 1.0)
        self.assertLess(float(y.min()), 0.0)

    def test_committed_vectors(self):
        want = resample.test_vectors()
        for name, arr in want.items():
            with self.subTest(name=name):
                got = np.load(os.path.join(VECTORS, name + ".npy"))
                self.assertEqual(got.dtype, arr.dtype)
                self.assertEqual(got.shape, arr.shape)
                self.assertLessEqual(float(np.abs(got.astype(np.float64) - arr).max()), 1e-6)
        hr = np.moveaxis(want["hr_u8"].astype(np.float32) / np.float32(255.0), -1, 0)
        for n, name in ((16, "lr16"), (8, "lr8")):
            for c in range(3):
                self.assertLessEqual(float(np.abs(pil_resize(hr[c], (n, n), "bilinear") - want[name][c]).max()), 1e-5)


if __name__ == "__main__":
    unittest.main()
