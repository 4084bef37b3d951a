import json
import math
import unittest

import numpy as np
from PIL import Image

from models.data import crop


def coord_image():
    """A 178x218 RGB image whose pixels encode their own coordinates."""
    yy, xx = np.mgrid[0:crop.ALIGNED_H, 0:crop.ALIGNED_W]
    a = np.stack([xx % 256, yy % 256, (xx * 7 + yy * 3) % 256], axis=-1).astype(np.uint8)
    return a


class CropTest(unittest.TestCase):
    def test_box_geometry(self):
        self.assertEqual(crop.BOX, (29, 56, 149, 176))
        self.assertEqual(crop.BOX[2] - crop.BOX[0], 120)
        self.assertEqual(crop.BOX[3] - crop.BOX[1], 120)
        self.assertEqual(((crop.BOX[0] + crop.BOX[2]) / 2, (crop.BOX[1] + crop.BOX[3]) / 2), crop.CENTRE)
        self.assertEqual(crop.aligned_to_crop(29, 56), (0.0, 0.0))
        self.assertEqual(crop.aligned_to_crop(149, 176), (128.0, 128.0))

    def test_crop_is_pil_crop_then_bicubic(self):
        a = coord_image()
        got = crop.crop_aligned(Image.fromarray(a))
        self.assertEqual(got.shape, (128, 128, 3))
        self.assertEqual(got.dtype, np.uint8)
        want = np.asarray(Image.fromarray(a[56:176, 29:149]).resize((128, 128), Image.BICUBIC))
        np.testing.assert_array_equal(got, want)

    def test_pixels_outside_box_do_not_contribute(self):
        a = coord_image()
        b = a.copy()
        b[:56] = 255 - b[:56]
        b[176:] = 0
        b[:, :29] = 17
        b[:, 149:] = 200
        np.testing.assert_array_equal(crop.crop_aligned(Image.fromarray(a)), crop.crop_aligned(Image.fromarray(b)))
        c = a.copy()
        c[56, 29] = 255 - c[56, 29]  # the box's top-left pixel does contribute
        self.assertFalse(np.array_equal(crop.crop_aligned(Image.fromarray(a)), crop.crop_aligned(Image.fromarray(c))))

    def test_rejects_wrong_size(self):
        with self.assertRaisesRegex(ValueError, "178x218"):
            crop.crop_aligned(Image.new("RGB", (128, 128)))

    def test_to_float(self):
        u8 = np.array([[[0, 128, 255]]], np.uint8)
        f = crop.to_float(u8)
        self.assertEqual(f.shape, (3, 1, 1))
        self.assertEqual(f.dtype, np.float32)
        np.testing.assert_allclose(f[:, 0, 0], [0.0, 128 / 255, 1.0], rtol=1e-7)

    def test_crop_from_eyes(self):
        cases = [
            # (left eye, right eye) -> (cx, cy, side, angle)
            (crop.ALIGNED_EYES, (89.0, 116.0, 120.0, 0.0)),
        ]
        # the aligned eyes scaled by 2 about the origin and translated
        (lx, ly), (rx, ry) = crop.ALIGNED_EYES
        cases.append((((2 * lx + 10, 2 * ly + 5), (2 * rx + 10, 2 * ry + 5)), (2 * 89.0 + 10, 2 * 116.0 + 5, 240.0, 0.0)))
        # rotated by 90 degrees about the origin: (x, y) -> (-y, x)
        cases.append((((-ly, lx), (-ry, rx)), (-116.0, 89.0, 120.0, math.pi / 2)))
        for eyes, want in cases:
            with self.subTest(eyes=eyes):
                got = crop.crop_from_eyes(*eyes)
                for g, w in zip(got, want):
                    self.assertAlmostEqual(g, w, places=9)
        with self.assertRaises(ValueError):
            crop.crop_from_eyes((1, 1), (1, 1))

    def test_metadata(self):
        m = crop.metadata()
        self.assertEqual(json.loads(json.dumps(m)), m)
        # the keys models/README.md requires of srdgd.crop
        self.assertEqual(m["ref"], "celeba_aligned_178x218")
        self.assertEqual(m["box_xywh"], [29, 56, 120, 120])
        self.assertEqual(m["size"], 128)
        self.assertEqual(m["resize"], "bicubic")
        self.assertEqual(m["box_cols"], [29, 148])
        self.assertEqual(m["box_rows"], [56, 175])


if __name__ == "__main__":
    unittest.main()
