import json
import os
import tempfile
import unittest

import onnx
import torch

from models import onnxmeta
from models.data import celeba as data, crop
from models.train import export, score


class ExportScoreTest(unittest.TestCase):
    def test_tiny_score_export(self):
        with tempfile.TemporaryDirectory() as tmp:
            cache, run = os.path.join(tmp, "cache"), os.path.join(tmp, "run")
            data.write_synthetic_cache(cache, n_per_split=(4, 2, 2))
            self.assertEqual(score.main(["--scale", "16", "--ch", "8", "--emb", "16", "--ch-mult", "1,2", "--batch", "2",
                                         "--steps", "2", "--val-n", "2", "--cache", cache, "--out", run]), 0)
            out = os.path.join(tmp, "s.onnx")
            self.assertEqual(export.main(["--kind", "score", "--ckpt", run, "--out", out]), 0)
            m = onnx.load(out)
            onnx.checker.check_model(m)
            self.assertEqual([i.name for i in m.graph.input], ["x_t", "y", "sigma"])
            self.assertEqual([o.name for o in m.graph.output], ["score"])
            self.assertEqual(m.opset_import[0].version, 17)
            shapes = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
                      for v in list(m.graph.input) + list(m.graph.output)}
            self.assertEqual(shapes["sigma"], ["batch"])
            for name in ("x_t", "y", "score"):
                self.assertEqual(shapes[name], ["batch", 3, 128, 128])
            meta = onnxmeta.get_metadata(m)
            self.assertEqual(meta["srdgd.kind"], "score")
            self.assertEqual(meta["srdgd.scale"], "16")
            self.assertEqual(meta["srdgd.lr_size"], "8")
            self.assertEqual(meta["srdgd.hr_size"], "128")
            self.assertEqual(float(meta["srdgd.sigma_min"]), 0.01)
            self.assertEqual(float(meta["srdgd.sigma_max"]), 348.0)
            self.assertEqual(json.loads(meta["srdgd.crop"]), crop.metadata())
            self.assertIn("non-commercial", meta["srdgd.data_terms"])
            self.assertIn("2 steps", meta["srdgd.provenance"])

    def test_missing_checkpoint(self):
        with self.assertRaises(export.UserError):
            export.main(["--kind", "score", "--ckpt", "/nonexistent/run", "--out", "/tmp/x.onnx"])


if __name__ == "__main__":
    unittest.main()
