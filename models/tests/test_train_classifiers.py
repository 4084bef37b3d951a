import json
import os
import tempfile
import unittest

import onnx
import torch

from models import onnxmeta
from models.data import celeba as data, crop
from models.train import classifiers, export


def perturbed(cfg, seed):
    torch.manual_seed(seed)
    m = classifiers.Classifier(cfg)
    for p in m.parameters():  # move off the initialisation (zero biases, unit GroupNorm scales)
        p.data.add_(0.05 * torch.randn_like(p))
    return m.eval()


class GuidanceGradientTest(unittest.TestCase):
    def test_matches_autograd(self):
        cases = [
            ("default", {}, 0),
            ("narrow, 3 levels", {"widths": [8, 16, 16], "emb": 32}, 1),
            ("one attribute", {"widths": [8, 8, 8, 8], "emb": 16, "attributes": ["male"]}, 2),
        ]
        for name, cfg, seed in cases:
            with self.subTest(name):
                m = perturbed(cfg, seed)
                a = len(m.cfg["attributes"])
                g = torch.Generator().manual_seed(seed)
                x = torch.rand(4, 3, 128, 128, generator=g)
                sigma = torch.tensor([0.01, 0.5, 5.0, 300.0])
                x_t = x + sigma[:, None, None, None] * torch.randn(x.shape, generator=g)
                labels = torch.randint(0, 2, (4, a), generator=g).float()
                labels[3] = 0.3  # soft labels follow the same formula
                with torch.no_grad():
                    got = classifiers.Guidance(m)(x_t, sigma, labels)
                want = classifiers.autograd_guidance(m, x_t, sigma, labels)
                self.assertEqual(got.shape, (4, 3, 128, 128))
                for i in range(4):
                    rel = float((got[i] - want[i]).norm() / want[i].norm())
                    self.assertLess(rel, 1e-4, f"image {i} sigma {float(sigma[i])}")

    def test_gradient_points_toward_label(self):
        m = perturbed({"widths": [8, 16, 16, 16], "emb": 16}, 3)
        x = torch.rand(1, 3, 128, 128)
        sigma = torch.tensor([0.1])
        labels = torch.tensor([[1.0, 0.0, 1.0]])
        with torch.no_grad():
            g = classifiers.Guidance(m)(x, sigma, labels)
            before = torch.log_softmax(m(x, sigma), 2)
            after = torch.log_softmax(m(x + 1e-3 * g / g.norm(), sigma), 2)
        gain = sum(float(after[0, a, int(labels[0, a])] - before[0, a, int(labels[0, a])]) for a in range(3))
        self.assertGreater(gain, 0.0)


class TrainAndExportTest(unittest.TestCase):
    def test_resume_is_exact(self):
        with tempfile.TemporaryDirectory() as tmp:
            cache = os.path.join(tmp, "cache")
            data.write_synthetic_cache(cache, n_per_split=(5, 2, 2), scales=(8,))
            base = ["--cache", cache, "--widths", "8,8,8,8", "--emb", "16", "--batch", "2", "--threads", "1",
                    "--val-steps", "2", "--warmup", "2"]
            a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
            self.assertEqual(classifiers.main(base + ["--out", a, "--steps", "3"]), 0)
            self.assertEqual(classifiers.main(base + ["--out", b, "--steps", "1"]), 0)
            self.assertEqual(classifiers.main(["--out", b, "--resume", "--steps", "3", "--cache", cache]), 0)
            ca, cb = torch.load(os.path.join(a, "checkpoint.pt")), torch.load(os.path.join(b, "checkpoint.pt"))
            self.assertEqual(ca["step"], 3)
            for part in ("model", "ema"):
                for k, v in ca[part].items():
                    self.assertTrue(torch.equal(v, cb[part][k]), f"{part}.{k} differs")


    def test_tiny_run_and_guidance_export(self):
        with tempfile.TemporaryDirectory() as tmp:
            cache, run = os.path.join(tmp, "cache"), os.path.join(tmp, "run")
            data.write_synthetic_cache(cache, n_per_split=(4, 2, 2), scales=(8,))
            self.assertEqual(classifiers.main(["--out", run, "--cache", cache, "--widths", "8,8,8,8", "--emb", "16",
                                               "--steps", "2", "--batch", "2", "--threads", "1"]), 0)
            out = os.path.join(tmp, "g.onnx")
            self.assertEqual(export.main(["--kind", "guidance", "--ckpt", run, "--out", out]), 0)
            m = onnx.load(out)
            onnx.checker.check_model(m)
            self.assertEqual([i.name for i in m.graph.input], ["x_t", "sigma", "labels"])
            self.assertEqual([o.name for o in m.graph.output], ["grad"])
            ops = {n.op_type for n in m.graph.node}
            self.assertIn("ConvTranspose", ops)
            meta = onnxmeta.get_metadata(m)
            self.assertEqual(meta["srdgd.kind"], "guidance")
            self.assertEqual(json.loads(meta["srdgd.attributes"]), ["male", "glasses", "no_beard"])
            self.assertEqual(json.loads(meta["srdgd.crop"]), crop.metadata())
            self.assertLess(float(meta["srdgd.autograd_rel_error"]), 1e-4)


if __name__ == "__main__":
    unittest.main()
