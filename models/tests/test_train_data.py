import csv
import os
import tempfile
import unittest

import numpy as np
from PIL import Image

from models.data import celeba as data, crop, resample

ATTRS = ["5_o_Clock_Shadow", "Eyeglasses", "Male", "No_Beard"]


def fake_celeba(root, rows):
    """A CelebA-shaped folder: labels.csv and 178x218 JPEGs (synthetic pixels)."""
    os.makedirs(os.path.join(root, "img_align_celeba"))
    rng = np.random.default_rng(0)
    with open(os.path.join(root, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "split", "repo_class", "celeba_identity"] + ATTRS)
        for name, split, ident, male, glasses, no_beard in rows:
            w.writerow([name, split, "c", ident, -1, 1 if glasses else -1, 1 if male else -1, 1 if no_beard else -1])
            img = (rng.random((218, 178, 3)) * 255).astype(np.uint8)
            Image.fromarray(img).save(os.path.join(root, "img_align_celeba", name), quality=95)


class DataTest(unittest.TestCase):
    def test_build_and_load(self):
        rows = [("a.jpg", "train", 7, 1, 0, 1), ("b.jpg", "validation", 7, 0, 1, 0),
                ("c.jpg", "train", 9, 0, 0, 0), ("d.jpg", "test", 9, 1, 1, 1)]
        with tempfile.TemporaryDirectory() as tmp:
            src, cache = os.path.join(tmp, "celeba"), os.path.join(tmp, "cache")
            fake_celeba(src, rows)
            cases = [("train", ["a.jpg", "c.jpg"], [[1, 0, 1], [0, 0, 0]], [7, 9]),
                     ("val", ["b.jpg"], [[0, 1, 0]], [7]),
                     ("test", ["d.jpg"], [[1, 1, 1]], [9])]
            for split, names, labels, ids in cases:
                with self.subTest(split=split):
                    s = data.load_split(split, data_dir=src, cache_dir=cache, log=lambda *a: None)
                    self.assertEqual(s.images, names)
                    np.testing.assert_array_equal(s.labels, labels)
                    np.testing.assert_array_equal(s.identity, ids)
                    self.assertEqual(s.u8.shape, (len(names), 128, 128, 3))
                    np.testing.assert_array_equal(s.u8[0], crop.crop_file(os.path.join(src, "img_align_celeba", names[0])))
                    self.assertEqual(s.lr[8].shape, (len(names), 3, 16, 16))
                    self.assertEqual(s.lr[16].shape, (len(names), 3, 8, 8))
            # a second load reads the cache (the images are no longer needed)
            os.remove(os.path.join(src, "img_align_celeba", "a.jpg"))
            s = data.load_split("train", data_dir=src, cache_dir=cache, log=lambda *a: None)
            self.assertEqual(len(s), 2)

    def test_batch_and_flip(self):
        with tempfile.TemporaryDirectory() as tmp:
            data.write_synthetic_cache(tmp, n_per_split=(3, 1, 1))
            s = data.load_split("train", cache_dir=tmp)
            x0, y = s.batch([0, 2], 8)
            self.assertEqual(x0.shape, (2, 3, 128, 128))
            np.testing.assert_allclose(x0[1], crop.to_float(s.u8[2]))
            np.testing.assert_allclose(y, resample.upscale(resample.downscale(x0, 16, np.float32), 128, np.float32),
                                       atol=1e-6)
            xf, yf = s.batch([0, 2], 8, flip=[True, False])
            np.testing.assert_array_equal(xf[0], x0[0][..., ::-1])
            np.testing.assert_array_equal(yf[0], y[0][..., ::-1])
            np.testing.assert_array_equal(xf[1], x0[1])
            # flipping commutes with the (symmetric) degradation
            lr_f = resample.downscale(x0[0][..., ::-1], 16, np.float32)
            np.testing.assert_allclose(yf[0], resample.upscale(lr_f, 128, np.float32), atol=1e-5)

    def test_unknown_split_and_scale(self):
        with self.assertRaises(ValueError):
            data.load_split("holdout")
        with self.assertRaises(ValueError):
            data.lr_size(4)


if __name__ == "__main__":
    unittest.main()
