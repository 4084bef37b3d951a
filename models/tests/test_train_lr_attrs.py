import json
import os
import tempfile
import unittest

import numpy as np
import onnx

from models import onnxmeta
from models.data import celeba as data, crop
from models.train import export, lr_attrs


class CalibrationTest(unittest.TestCase):
    def test_ece(self):
        cases = [
            ("perfect confident", [1.0, 0.0, 1.0, 0.0], [1, 0, 1, 0], 0.0),
            ("confident and wrong", [1.0, 0.0], [0, 1], 1.0),
            ("0.75 right 3 of 4", [0.75, 0.75, 0.25, 0.25], [1, 1, 0, 1], 0.0),
            ("0.9 right half", [0.9, 0.9], [1, 0], 0.4),
        ]
        for name, p, y, want in cases:
            with self.subTest(name):
                self.assertAlmostEqual(lr_attrs.ece(np.array(p), np.array(y)), want, places=9)

    def test_temperature_recovers_scale(self):
        rng = np.random.default_rng(0)
        true = rng.normal(0, 2, 20000)
        y = (rng.random(20000) < 1 / (1 + np.exp(-true))).astype(float)
        t = lr_attrs.fit_temperature(true * 3.0, y)  # logits 3x too confident
        self.assertAlmostEqual(t, 3.0, delta=0.2)


class TrainAndExportTest(unittest.TestCase):
    def test_tiny_run_and_export(self):
        with tempfile.TemporaryDirectory() as tmp:
            cache, run = os.path.join(tmp, "cache"), os.path.join(tmp, "run")
            data.write_synthetic_cache(cache, n_per_split=(6, 4, 4), scales=(16,))
            self.assertEqual(lr_attrs.main(["--scale", "16", "--out", run, "--cache", cache, "--steps", "3",
                                            "--batch", "4", "--val-steps", "2", "--ckpt-steps", "2", "--width", "4"]), 0)
            with open(os.path.join(run, "report.json")) as f:
                rep = json.load(f)
            self.assertEqual(sorted(rep["temperatures"]), sorted(onnxmeta.ATTRIBUTES))
            out = os.path.join(tmp, "a.onnx")
            self.assertEqual(export.main(["--kind", "lr_attrs", "--ckpt", run, "--out", out]), 0)
            m = onnx.load(out)
            onnx.checker.check_model(m)
            self.assertEqual([i.name for i in m.graph.input], ["lr"])
            self.assertEqual([o.name for o in m.graph.output], ["probs"])
            dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
            self.assertEqual(dims, ["batch", 3, 8, 8])
            meta = onnxmeta.get_metadata(m)
            self.assertEqual(meta["srdgd.kind"], "lr_attrs")
            self.assertEqual(meta["srdgd.scale"], "16")
            self.assertEqual(meta["srdgd.lr_size"], "8")
            self.assertEqual(json.loads(meta["srdgd.attributes"]), list(onnxmeta.ATTRIBUTES))
            self.assertEqual(json.loads(meta["srdgd.crop"]), crop.metadata())


if __name__ == "__main__":
    unittest.main()
