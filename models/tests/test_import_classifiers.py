"""Tests for the SRDG classifier importer (models/nets/srdg_classifiers.py, models/convert/import_classifiers.py).

Checkpoints: /work/shared/reference/srdg-classifiers; vectors: /work/shared/reference/classifiers
(an independent float64 port of the Flax model; see its README). Skipped when absent.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

from models.convert import import_classifiers as cli
from models.nets import srdg_classifiers as sc
from models.tests.test_import_sdesr import onnxeval, tearDownModule  # noqa: F401 (cleans the onnxeval build)

CKPT_DIR = os.environ.get("SRDGD_TEST_SRDG_CLASSIFIERS", "/work/shared/reference/srdg-classifiers")
VEC = os.environ.get("SRDGD_CLASSIFIER_VECTORS", "/work/shared/reference/classifiers")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE = os.path.isfile(os.path.join(CKPT_DIR, "ckpt_gender")) and os.path.isfile(os.path.join(VEC, "x.npy"))
REF_NAME = {"male": "gender", "glasses": "glasses", "no_beard": "beard"}
ATTRS = ("male", "glasses", "no_beard")


def setUpModule():
    torch.set_num_threads(1)


def vec(name):
    return np.load(os.path.join(VEC, name))


def nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def max_rel(got, ref):
    """max|got - ref| / max|ref| per batch item."""
    return [float(np.abs(got[i] - ref[i]).max() / np.abs(ref[i]).max()) for i in range(ref.shape[0])]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "models", "import-srdg-classifiers", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@unittest.skipUnless(HAVE, f"SRDG classifier checkpoints/vectors not found ({CKPT_DIR}, {VEC})")
class Float64ParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cls64, cls.files = cli.load_classifiers(CKPT_DIR, ATTRS, dtype=torch.float64)
        cls.x = torch.from_numpy(nchw(vec("x.npy")))
        cls.sigma = torch.from_numpy(vec("sigma.npy"))
        cls.labels = torch.stack([torch.from_numpy(vec(f"labels_{REF_NAME[a]}.npy")).double() for a in ATTRS], 1)

    def test_params(self):
        for a in ATTRS:
            self.assertEqual(self.files[a][2], 750930, a)

    def test_forward_matches_vectors(self):
        for a, c in zip(ATTRS, self.cls64):
            n = REF_NAME[a]
            with torch.no_grad():
                logits, tr = c.forward_trace(self.x, self.sigma)
            with self.subTest(attr=a):
                np.testing.assert_allclose(logits.numpy(), vec(f"logits_{n}.npy"), rtol=0, atol=1e-9)
                np.testing.assert_allclose(torch.log_softmax(logits, 1).numpy(), vec(f"logprobs_{n}.npy"),
                                           rtol=0, atol=1e-9)
                # the time embedding reaches 2.5e5, where one float64 ulp is 6e-11: the CPU's
                # summation order moves it by ~10 ulp (seen on one 2-core VM), so the bound is relative
                np.testing.assert_allclose(tr["ta"].numpy(), vec(f"temb32_{n}.npy"), rtol=1e-13, atol=1e-12)
                np.testing.assert_allclose(tr["p"].numpy(), nchw(vec("pre.npy")), rtol=0, atol=1e-12)
                np.testing.assert_allclose(tr["feat"].numpy(), nchw(vec(f"feat_{n}.npy")), rtol=0, atol=1e-10)
                # the reference argmax recorded in the vectors' README table
                self.assertEqual(logits.argmax(1).tolist(), vec(f"logits_{n}.npy").argmax(1).tolist())

    def test_explicit_gradient_matches_vectors(self):
        g = sc.Guidance(self.cls64)
        with torch.no_grad():
            got = g(self.x, self.sigma, self.labels).numpy()
        ref = nchw(vec("grad_sum.npy"))
        self.assertLessEqual(max(max_rel(got, ref)), 1e-7)
        # one attribute alone (the 'beard' classifier: class 1 = no beard)
        g1 = sc.Guidance([self.cls64[2]])
        with torch.no_grad():
            got1 = g1(self.x, self.sigma, self.labels[:, 2:3]).numpy()
        # relative to max|grad| of the whole array (the vectors' README): in the saturated row (sample 3,
        # p ~ 1 - 1e-13) the reference's own 1 - p carries float64 rounding that the stable form avoids
        ref1 = nchw(vec("grad_beard.npy"))
        self.assertLessEqual(np.abs(got1 - ref1).max() / np.abs(ref1).max(), 1e-7)

    def test_explicit_gradient_matches_autograd(self):
        x, s = self.x[1:3], self.sigma[1:3]
        labels = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], dtype=torch.float64)
        with torch.no_grad():
            got = sc.Guidance(self.cls64)(x, s, labels).numpy()
        want = sc.autograd_guidance(self.cls64, x, s, labels).numpy()
        self.assertLessEqual(max(max_rel(got, want)), 1e-4)
        self.assertLessEqual(max(max_rel(got, want)), 1e-12)  # measured ~1e-15: the backward is exact

    def test_std_floor_branch(self):
        # a near-constant image: per-image std below 1/sqrt(N), so the floor is taken and the
        # standardisation's backward loses its std term
        g = torch.Generator().manual_seed(3)
        mean = torch.tensor(sc.CIFAR_MEAN, dtype=torch.float64).reshape(1, 3, 1, 1)
        x = mean + 1e-4 * torch.randn(1, 3, 128, 128, generator=g, dtype=torch.float64)
        s = torch.tensor([0.3], dtype=torch.float64)
        labels = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
        c = self.cls64[:1]
        _, std, d = c[0].preprocess(x)
        self.assertLess(float(std), float(d))
        with torch.no_grad():
            got = sc.Guidance(c)(x, s, labels[:, :1]).numpy()
        want = sc.autograd_guidance(c, x, s, labels[:, :1]).numpy()
        self.assertLessEqual(max(max_rel(got, want)), 1e-10)


@unittest.skipUnless(HAVE, "no SRDG classifier checkpoints")
class Float32Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cls32, _ = cli.load_classifiers(CKPT_DIR, ATTRS)
        cls.x = torch.from_numpy(nchw(vec("x.npy"))).float()
        cls.sigma = torch.from_numpy(vec("sigma.npy")).float()
        cls.labels = torch.stack([torch.from_numpy(vec(f"labels_{REF_NAME[a]}.npy")).float() for a in ATTRS], 1)

    def test_explicit_matches_autograd_float32(self):
        with torch.no_grad():
            got = sc.Guidance(self.cls32)(self.x, self.sigma, self.labels).numpy()
        want = sc.autograd_guidance(self.cls32, self.x, self.sigma, self.labels).numpy()
        self.assertLessEqual(max(max_rel(got, want)), 1e-4)
        # against the float64 reference: the README's float32 guide (relative L2 <~ 1e-2)
        ref = nchw(vec("grad_sum.npy"))
        l2 = [float(np.linalg.norm(got[i] - ref[i]) / np.linalg.norm(ref[i])) for i in range(4)]
        self.assertLessEqual(max(l2), 1e-2, l2)

    def test_logits_float32(self):
        for a, c in zip(ATTRS, self.cls32):
            with torch.no_grad():
                logits = c(self.x, self.sigma).double().numpy()
            np.testing.assert_allclose(logits, vec(f"logits_{REF_NAME[a]}.npy"), rtol=0, atol=2e-4)

    def test_abstain_label(self):
        # -1 leaves an attribute out: same as the guidance without that classifier, per item
        labels = torch.tensor([[1.0, -1.0, 0.0], [-1.0, -1.0, -1.0]])
        with torch.no_grad():
            got = sc.Guidance(self.cls32)(self.x[:2], self.sigma[:2], labels)
            want0 = sc.Guidance([self.cls32[0], self.cls32[2]])(self.x[:1], self.sigma[:1], labels[:1, [0, 2]])
        torch.testing.assert_close(got[:1], want0, rtol=1e-5, atol=1e-6 * float(want0.abs().max()))
        self.assertEqual(float(got[1].abs().max()), 0.0)

    def test_attribute_order(self):
        # --attrs glasses,male: labels column 0 drives the glasses classifier
        cls2, _ = cli.load_classifiers(CKPT_DIR, ["glasses", "male"])
        labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        with torch.no_grad():
            got = sc.Guidance(cls2)(self.x[:2], self.sigma[:2], labels)
            want = sc.Guidance([self.cls32[1], self.cls32[0]])(self.x[:2], self.sigma[:2], labels)
        self.assertTrue(torch.equal(got, want))


@unittest.skipUnless(HAVE, "no SRDG classifier checkpoints")
class CliTest(unittest.TestCase):
    def test_export_contract_and_metadata(self):
        import onnx
        from models import onnxmeta
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "guidance.onnx")
            r = run_cli("--dir", CKPT_DIR, "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            proto = onnx.load(out)
            size = os.path.getsize(out)
            # ONNX Runtime on the 4 reference samples: the README's float32 guide, per-sample relative
            # L2 error <~ 1e-2 against the float64 gradient (measured 3e-3 at most)
            ref = nchw(vec("grad_sum.npy"))
            labels = np.stack([vec(f"labels_{REF_NAME[a]}.npy") for a in ATTRS], 1).astype(np.float32)
            # sample 3 abstains on no_beard: its reference is then gender + glasses only
            labels[3, 2] = -1
            ref[3] = nchw(vec("grad_gender.npy"))[3] + nchw(vec("grad_glasses.npy"))[3]
            try:
                got = onnxeval(out, {"x_t": nchw(vec("x.npy")), "sigma": vec("sigma.npy"), "labels": labels}, "grad")
            except unittest.SkipTest:
                got = None
            if got is not None:
                l2 = [float(np.linalg.norm(got[i] - ref[i]) / np.linalg.norm(ref[i])) for i in range(4)]
                self.assertLessEqual(max(l2), 1e-2, l2)
        onnx.checker.check_model(proto)
        self.assertLess(size, 20 << 20)
        self.assertEqual(proto.opset_import[0].version, 17)
        dims = lambda t: [d.dim_param or d.dim_value for d in t.type.tensor_type.shape.dim]
        self.assertEqual({i.name: dims(i) for i in proto.graph.input},
                         {"x_t": ["B", 3, 128, 128], "sigma": ["B"], "labels": ["B", 3]})
        self.assertEqual({o.name: dims(o) for o in proto.graph.output}, {"grad": ["B", 3, 128, 128]})
        for t in list(proto.graph.input) + list(proto.graph.output):
            self.assertEqual(t.type.tensor_type.elem_type, onnx.TensorProto.FLOAT, t.name)
        ops = {n.op_type for n in proto.graph.node}
        self.assertIn("ConvTranspose", ops)
        self.assertFalse(ops & {"Gradient", "Loop", "If", "Scan"}, ops)
        meta = onnxmeta.get_metadata(proto)
        self.assertEqual(meta["srdgd.kind"], "guidance")
        self.assertEqual(json.loads(meta["srdgd.attributes"]), list(ATTRS))
        self.assertEqual(json.loads(meta["srdgd.attribute_labels"])["no_beard"]["1"], "no beard")
        self.assertEqual(json.loads(meta["srdgd.crop"]),
                         {"ref": "celeba_aligned_178x218", "box_xywh": [29, 56, 120, 120], "size": 128,
                          "resize": "bicubic"})
        self.assertIn("marcelowds/SRDG", meta["srdgd.provenance"])
        self.assertIn("non-commercial", meta["srdgd.data_terms"])
        self.assertTrue(meta["srdgd.license"].startswith("unknown"))
        self.assertEqual(meta["srdgd.input_range"], "0,1")
        self.assertEqual(meta["srdgd.label_abstain"], "-1")
        self.assertEqual(float(meta["srdgd.sigma_min"]), 0.01)
        self.assertEqual(float(meta["srdgd.sigma_max"]), 348.0)


CELEBA = os.environ.get("SRDGD_TEST_CELEBA", "/work/shared/data/celeba-aligned")


@unittest.skipUnless(HAVE and os.path.isfile(os.path.join(CELEBA, "labels.csv")), "no CelebA data")
class EvalTest(unittest.TestCase):
    def test_eval_on_a_few_test_faces(self):
        from models.convert import eval_classifiers as ev
        imgs, labels, names = ev.load_images(CELEBA, "test", limit=6)
        self.assertEqual(imgs.shape, (6, 3, 128, 128))
        self.assertTrue(0 <= imgs.min() and imgs.max() <= 1)
        cls32, _ = cli.load_classifiers(CKPT_DIR, ATTRS)
        res = ev.evaluate(ev.Logits(cls32).torch_runner(), ATTRS, imgs, labels, [0.01, 50], batch=3)
        # clean faces: the classifiers are right on (almost) all of them
        self.assertGreaterEqual(res["0.01"]["male"]["acc"], 5 / 6)
        self.assertGreaterEqual(res["0.01"]["glasses"]["acc"], 5 / 6)
        self.assertEqual(res["50"]["male"]["n"], 6)


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def assertUserError(self, pattern, *args):
        out = os.path.join(self.tmp.name, "g.onnx")
        r = run_cli("--out", out, *args)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertRegex(r.stderr, pattern)
        self.assertFalse(os.path.exists(out))

    def write(self, name, data):
        with open(os.path.join(self.tmp.name, name), "wb") as f:
            f.write(data)

    def test_bad_attrs(self):
        self.assertUserError("--attrs", "--dir", self.tmp.name, "--attrs", "male,smiling")

    def test_missing_file(self):
        self.assertUserError("ckpt_gender: missing", "--dir", self.tmp.name)
        self.assertUserError("not a directory", "--dir", os.path.join(self.tmp.name, "nope"))

    def test_not_msgpack(self):
        self.write("ckpt_gender", b"this is not msgpack at all\n")
        self.assertUserError("ckpt_gender: not an SRDG classifier checkpoint", "--dir", self.tmp.name,
                             "--attrs", "male")

    @unittest.skipUnless(HAVE, "no SRDG classifier checkpoints")
    def test_truncated(self):
        data = open(os.path.join(CKPT_DIR, "ckpt_glasses"), "rb").read()
        self.write("ckpt_glasses", data[: len(data) - 1000])
        self.assertUserError("ckpt_glasses: not an SRDG classifier checkpoint", "--dir", self.tmp.name,
                             "--attrs", "glasses")

    def test_wrong_tree(self):
        import msgpack
        self.write("ckpt_beard", msgpack.packb({"params": {"Dense_0": {}}, "batch_stats": {}}))
        self.assertUserError("missing GaussianFourierProjection_0/W", "--dir", self.tmp.name, "--attrs", "no_beard")


if __name__ == "__main__":
    unittest.main()
