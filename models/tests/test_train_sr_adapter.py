"""train-sr-adapter end to end on synthetic descriptors: cache.jsonl in, report and ONNX out."""
import json
import os
import tempfile
import unittest

import numpy as np
import onnx

from models.onnxmeta import get_metadata
from models.train import sr_adapter as sa


def write_cache(path, hr, sr, names, model="test-embedder@1", gallery=None):
    with open(path, "w") as f:
        for i, n in enumerate(names):
            f.write(json.dumps({"kind": "probe", "scale": 8, "method": "hr", "image": n, "model": model,
                                "embedding": hr[i].tolist()}) + "\n")
            f.write(json.dumps({"kind": "probe", "scale": 8, "method": "sr-fast-unguided", "image": n, "model": model,
                                "embedding": sr[i].tolist()}) + "\n")
        for n, v in (gallery or {}).items():
            f.write(json.dumps({"kind": "gallery", "image": n, "model": model, "embedding": v.tolist()}) + "\n")


class TrainSRAdapterTest(unittest.TestCase):
    def test_learns_a_fixed_distortion(self):
        rng = np.random.RandomState(0)
        d = 16
        # SR descriptors: HR ones through a fixed rotation-like mixing plus noise, which the
        # adapter can learn to undo
        mix = np.eye(d) + 0.6 * rng.randn(d, d) / np.sqrt(d)
        hr = sa.unit(rng.randn(600, d).astype(np.float32))
        sr = sa.unit((hr @ mix.T + 0.05 * rng.randn(600, d)).astype(np.float32))
        names = [f"u{i:04d}.png" for i in range(600)]
        with tempfile.TemporaryDirectory() as tmp:
            train = os.path.join(tmp, "utk.jsonl")
            write_cache(train, hr, sr, names)
            # an "identification" set: 40 identities, gallery HR, probes distorted like the training pairs
            gal = sa.unit(rng.randn(40, d).astype(np.float32))
            pn = [f"{i:06d}.jpg" for i in range(80)]
            phr = sa.unit(gal[np.arange(80) % 40] + 0.3 * rng.randn(80, d).astype(np.float32))
            psr = sa.unit((phr @ mix.T + 0.05 * rng.randn(80, d)).astype(np.float32))
            ev = os.path.join(tmp, "celeba.jsonl")
            write_cache(ev, phr, psr, pn, gallery={f"g{i:06d}.jpg": gal[i] for i in range(40)})
            labels = os.path.join(tmp, "labels.csv")
            with open(labels, "w") as f:
                f.write("image,split,repo_class,celeba_identity\n")
                for i, n in enumerate(pn):
                    f.write(f"{n},test,c,{i % 40}\n")
                for i in range(40):
                    f.write(f"g{i:06d}.jpg,train,c,{i}\n")
            out = os.path.join(tmp, "run")
            path = os.path.join(tmp, "a.onnx")
            rc = sa.main(["--scale", "8", "--train", train, "--eval", ev, "--labels", labels, "--out", out,
                          "--steps", "400", "--val-steps", "100", "--hidden", "32", "--onnx", path])
            self.assertEqual(rc, 0)
            with open(os.path.join(out, "report.json")) as f:
                rep = json.load(f)
            self.assertGreater(rep["val_with"]["val_cos"], rep["val_without"]["val_cos"] + 0.02)
            self.assertGreater(rep["celeba_with"]["rank1"], rep["celeba_without"]["rank1"])
            meta = get_metadata(onnx.load(path))
            self.assertEqual(meta["srdgd.kind"], "sr_adapter")
            self.assertEqual(meta["srdgd.embedder_model"], "test-embedder@1")
            self.assertEqual(meta["srdgd.dim"], str(d))
            self.assertIn("UTKFace", meta["srdgd.data_terms"])

    def test_refuses_mixed_embedders(self):
        rng = np.random.RandomState(1)
        hr = sa.unit(rng.randn(60, 8).astype(np.float32))
        with tempfile.TemporaryDirectory() as tmp:
            a, b = os.path.join(tmp, "a.jsonl"), os.path.join(tmp, "b.jsonl")
            write_cache(a, hr, hr, [f"a{i}" for i in range(60)], model="one@1")
            write_cache(b, hr, hr, [f"b{i}" for i in range(60)], model="two@2")
            with self.assertRaises(sa.UserError):
                sa.main(["--scale", "8", "--train", a, "--train", b, "--out", os.path.join(tmp, "run")])


if __name__ == "__main__":
    unittest.main()
