"""Tests for the sr-sde NCSN++ importer (models/nets/ncsnpp.py, models/convert/import_sdesr.py).

Reference vectors: /work/shared/reference/ncsnpp (produced by the original sr-sde code;
see its README). Tests that need them are skipped when the folder is absent.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np
import torch

from models.convert import import_sdesr as imp
from models.nets import ncsnpp
from models.__main__ import UserError

REF = os.environ.get("SRDGD_TEST_NCSNPP_REF", "/work/shared/reference/ncsnpp")
CKPT = os.path.join(REF, "checkpoint.pth")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_REF = os.path.isfile(CKPT)


_ORT = {}


def setUpModule():
    torch.set_num_threads(1)


def tearDownModule():
    if "dir" in _ORT:
        shutil.rmtree(_ORT.pop("dir"), ignore_errors=True)
        _ORT.pop("bin", None)


def onnxeval(model, inputs, out_name):
    """Run an ONNX file through ONNX Runtime from Go (cmd/onnxeval, the daemon's runtime).

    Returns the output array, or raises unittest.SkipTest where Go or the ORT library is missing.
    """
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    lib = os.path.join(REPO, "third_party", "onnxruntime", "lib", "libonnxruntime.so.1")
    if go is None or not (os.path.exists(lib) or os.environ.get("SRDGD_ORT_LIBRARY")):
        raise unittest.SkipTest("no Go toolchain or ONNX Runtime library (scripts/fetch-ort.sh)")
    if "bin" not in _ORT:
        _ORT["dir"] = tempfile.mkdtemp(prefix="onnxeval-")
        exe = os.path.join(_ORT["dir"], "onnxeval")
        subprocess.run([go, "build", "-o", exe, "./cmd/onnxeval"], cwd=REPO, check=True, timeout=600,
                       capture_output=True)
        _ORT["bin"] = exe
    with tempfile.TemporaryDirectory() as d:
        args = [_ORT["bin"], "--model", model, "--threads", "1"]
        for name, arr in inputs.items():
            p = os.path.join(d, name + ".npy")
            np.save(p, np.ascontiguousarray(arr, dtype=np.float32))
            args += ["--in", f"{name}={p}"]
        out = os.path.join(d, "out.npy")
        args += ["--out", f"{out_name}={out}"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError(f"onnxeval failed: {r.stderr}")
        return np.load(out)


def rel_err_per_item(out, ref):
    return [float(np.abs(out[i] - ref[i]).max() / np.abs(ref[i]).max()) for i in range(ref.shape[0])]


def load(name):
    return np.load(os.path.join(REF, name))


@unittest.skipUnless(HAVE_REF, f"reference vectors not found at {REF}")
class ParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m64, cls.cfg, cls.info = imp.load_score_model(CKPT, dtype=torch.float64)
        cls.m32, _, _ = imp.load_score_model(CKPT)

    def inputs(self, prefix, dtype):
        return [torch.from_numpy(load(f"{prefix}_{n}.npy")).to(dtype) for n in ("x_t", "y", "sigma")]

    def test_config_inferred(self):
        self.assertEqual(self.cfg.nf, 16)
        self.assertEqual(tuple(self.cfg.ch_mult), (1, 1, 2, 2, 2, 2, 2))
        self.assertEqual(self.cfg.num_res_blocks, 2)
        self.assertEqual(tuple(self.cfg.attn_resolutions), (16,))
        manifest = json.load(open(os.path.join(REF, "checkpoint_manifest.json")))
        self.assertEqual(ncsnpp.count_params(self.m64), manifest["model"]["n_parameters_total"])

    def test_score_float64_and_float32(self):
        cases = [("b3", "b3_score.npy"), ("b1", "b1_score.npy")]
        for prefix, ref_name in cases:
            ref = load(ref_name)
            for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
                with self.subTest(set=prefix, dtype=str(dtype)):
                    model = self.m64 if dtype == torch.float64 else self.m32
                    with torch.no_grad():
                        out = model(*self.inputs(prefix, dtype)).double().numpy()
                    self.assertEqual(out.shape, ref.shape)
                    errs = rel_err_per_item(out, ref)
                    self.assertLessEqual(max(errs), tol, f"per-item max|diff|/max|ref| {errs}")

    def test_intermediates(self):
        x, y, s = self.inputs("b3", torch.float64)
        net = self.m64.net
        with torch.no_grad():
            temb, four = net.embed(s)
            conv_in = 2 * ncsnpp.interleave(x, y) - 1
            conv_out = net.all_modules[3](conv_in[:1])
        for name, got, ref in (("fourier", four, "b3_fourier.npy"), ("temb", temb, "b3_temb.npy"),
                               ("conv_in", conv_in[0], "b3_el0_conv_in.npy"),
                               ("conv_out", conv_out[0], "b3_el0_conv_out.npy")):
            with self.subTest(name):
                r = load(ref)
                self.assertEqual(tuple(got.shape), r.shape)
                err = np.abs(got.numpy() - r).max() / np.abs(r).max()
                self.assertLessEqual(err, 1e-13)

    def test_restricted_reader_matches_torch_load(self):
        safe = imp.read_checkpoint(CKPT)
        trusted = imp.read_checkpoint(CKPT, trust_pickle=True)
        self.assertEqual(list(safe["model"]), list(trusted["model"]))
        for k, v in trusted["model"].items():
            self.assertEqual(safe["model"][k].dtype, v.dtype, k)
            self.assertTrue(torch.equal(safe["model"][k], v), k)
        self.assertEqual(len(safe["ema"]["shadow_params"]), 620)
        for a, b in zip(safe["ema"]["shadow_params"], trusted["ema"]["shadow_params"]):
            self.assertTrue(torch.equal(a, b))
        self.assertEqual(safe["step"], trusted["step"])
        self.assertEqual(float(safe["optimizer"]["param_groups"][0]["lr"]), 0.0)

    def test_ema_weights_are_used(self):
        # ckpt['model'] holds different (non-EMA) weights: the reference scores were made with the EMA,
        # and ckpt['model'] reproduces the wrong-weights diagnostic instead.
        ckpt = imp.read_checkpoint(CKPT)
        sd_model, _ = imp.state_dict_from_checkpoint(ckpt, use_ema=False)
        net, _ = imp.build_model(sd_model)
        wrong = ncsnpp.ScoreModel(net).eval()
        x, y, s = self.inputs("b3", torch.float32)
        ref = load("b3_score.npy")
        with torch.no_grad():
            out_wrong = wrong(x, y, s).double().numpy()
            out_ema = self.m32(x, y, s).double().numpy()
        self.assertGreater(min(rel_err_per_item(out_wrong, ref)), 0.05)
        self.assertLessEqual(max(rel_err_per_item(out_wrong, load("b3_score_modelweights.npy"))), 1e-5)
        self.assertLessEqual(max(rel_err_per_item(out_ema, ref)), 1e-5)
        # and the default import takes the EMA tensor, not the model tensor, for every trainable entry
        sd_ema, _ = imp.state_dict_from_checkpoint(ckpt)
        k = "all_modules.3.weight"
        self.assertFalse(torch.equal(sd_ema[k], sd_model[k]))
        self.assertTrue(torch.equal(sd_ema["all_modules.0.W"], sd_model["all_modules.0.W"]))

    def test_onnx_export_contract(self):
        import onnx
        from models import onnxmeta
        proto = imp.export_onnx(self.m32, None)
        onnx.checker.check_model(proto)
        ins = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
        outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
        self.assertEqual(ins, {"x_t": ["B", 3, 128, 128], "y": ["B", 3, 128, 128], "sigma": ["B"]})
        self.assertEqual(outs, {"score": ["B", 3, 128, 128]})
        self.assertEqual(proto.opset_import[0].version, 17)
        for t in list(proto.graph.input) + list(proto.graph.output):
            self.assertEqual(t.type.tensor_type.elem_type, onnx.TensorProto.FLOAT)
        self.assertNotIn("Einsum", {n.op_type for n in proto.graph.node})


def full_size_checkpoint():
    """An in-memory checkpoint with the full model's key layout (shapes from full_model_manifest.json)."""
    man = json.load(open(os.path.join(REF, "full_model_manifest.json")))
    g = torch.Generator().manual_seed(0)
    model = collections.OrderedDict()
    shadow = []
    for e in man["model"]["entries"]:
        dtype = torch.float64 if e["dtype"] == "float64" else torch.float32
        t = torch.empty(e["shape"], dtype=dtype)
        if e["numel"] < 4096:
            t.normal_(generator=g)
        model[e["name"]] = t
        if e.get("ema_index") is not None:
            assert e["ema_index"] == len(shadow)
            shadow.append(t)
    ckpt = {"model": model, "ema": {"decay": 0.999, "num_updates": 1, "shadow_params": shadow}, "step": 1,
            "optimizer": {"state": {}, "param_groups": [{"lr": np.float64(0.0), "params": list(range(621))}]}}
    return ckpt, man


@unittest.skipUnless(HAVE_REF, f"reference vectors not found at {REF}")
class FullSizeLayoutTest(unittest.TestCase):
    def test_full_model_loads_strictly(self):
        ckpt, man = full_size_checkpoint()
        sd, info = imp.state_dict_from_checkpoint(ckpt)
        self.assertEqual(info["n_model_entries"], 622)
        cfg = ncsnpp.infer_config(sd)
        self.assertEqual((cfg.nf, tuple(cfg.ch_mult), cfg.num_res_blocks, tuple(cfg.attn_resolutions)),
                         (128, (1, 1, 2, 2, 2, 2, 2), 2, (16,)))
        net, cfg = imp.build_model(sd)
        self.assertEqual(ncsnpp.count_params(net), 65540995)
        self.assertEqual(ncsnpp.count_params(net), man["model"]["n_parameters_total"])
        self.assertEqual(sum(p.numel() for p in net.parameters() if p.requires_grad), 65540867)
        # the module table of the manifest agrees with ours (class kinds and channels)
        for row in man["module_table"]:
            mod = net.all_modules[row["index"]]
            if row["cls"] == "ResnetBlockBigGANpp":
                self.assertIsInstance(mod, ncsnpp.ResBlock)
                self.assertEqual((mod.Conv_0.in_channels, mod.Conv_0.out_channels, mod.up, mod.down),
                                 (row["in_ch"], row["out_ch"], row["up"], row["down"]), row["index"])
                self.assertEqual(mod.GroupNorm_0.num_groups, row["gn0_groups"])
                self.assertEqual(mod.GroupNorm_1.num_groups, row["gn1_groups"])
            elif row["cls"] == "AttnBlockpp":
                self.assertIsInstance(mod, ncsnpp.Attention)
            elif row["cls"] == "Combine":
                self.assertIsInstance(mod, ncsnpp.Combine)

    def test_wrong_shapes_refused(self):
        ckpt = imp.read_checkpoint(CKPT)
        sd, _ = imp.state_dict_from_checkpoint(ckpt)
        with self.assertRaisesRegex(UserError, "do not fit"):
            imp.build_model(sd, overrides={"num_res_blocks": 3})
        ckpt["ema"]["shadow_params"] = ckpt["ema"]["shadow_params"][:-1]
        with self.assertRaisesRegex(UserError, "shadow params"):
            imp.state_dict_from_checkpoint(ckpt)


class InferConfigTest(unittest.TestCase):
    def test_round_trip(self):
        cases = [
            ncsnpp.Config(nf=8, ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn_resolutions=(32,)),
            ncsnpp.Config(nf=4, ch_mult=(1, 1, 2), num_res_blocks=3, attn_resolutions=(32, 128)),
            ncsnpp.Config(nf=4, ch_mult=(2, 1, 1, 2, 2), num_res_blocks=2, attn_resolutions=()),
        ]
        for cfg in cases:
            with self.subTest(cfg=cfg.as_dict()):
                sd = ncsnpp.NCSNpp(cfg).state_dict()
                got = ncsnpp.infer_config(sd)
                self.assertEqual(got.as_dict(), cfg.as_dict())
                net, _ = imp.build_model(sd)
                x = torch.rand(1, 3, 128, 128)
                with torch.no_grad():
                    out = ncsnpp.ScoreModel(net)(x, x, torch.tensor([0.5]))
                self.assertEqual(tuple(out.shape), (1, 3, 128, 128))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "models", "import-sdesr", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


class BadFileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def assertCliUserError(self, src, pattern):
        r = run_cli("--checkpoint", src, "--out", self.path("out.onnx"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertRegex(r.stderr, pattern)
        self.assertFalse(os.path.exists(self.path("out.onnx")))

    @unittest.skipUnless(HAVE_REF, "no reference checkpoint")
    def test_truncated(self):
        data = open(CKPT, "rb").read()
        p = self.path("trunc.pth")
        with open(p, "wb") as f:
            f.write(data[: len(data) // 2])
        self.assertCliUserError(p, "damaged or truncated")

    def test_not_a_checkpoint(self):
        p = self.path("notes.pth")
        with open(p, "w") as f:
            f.write("hello, this is not a checkpoint\n")
        self.assertCliUserError(p, "not a PyTorch checkpoint")
        self.assertCliUserError(self.path("missing.pth"), "no such file")

    def test_zip_without_pickle(self):
        p = self.path("other.zip")
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("a/readme.txt", "x")
        self.assertCliUserError(p, "not a torch.save file")

    def test_not_sr_sde_dict(self):
        p = self.path("tensor.pth")
        torch.save(torch.zeros(3), p)
        with self.assertRaisesRegex(UserError, "not the sr-sde dict"):
            imp.read_checkpoint(p)
        p2 = self.path("dict.pth")
        torch.save({"state_dict": {}}, p2)
        self.assertCliUserError(p2, "no 'model' entry")

    def test_code_in_pickle_refused(self):
        p = self.path("evil.pth")
        torch.save({"model": _Evil()}, p)
        with self.assertRaisesRegex(UserError, "refused to unpickle.*(posix|os).system"):
            imp.read_checkpoint(p)


@unittest.skipUnless(HAVE_REF, "no reference checkpoint")
class CliTest(unittest.TestCase):
    def test_import_writes_onnx_with_metadata(self):
        import onnx
        from models import onnxmeta
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "score.onnx")
            r = run_cli("--checkpoint", CKPT, "--out", out, "--scale", "8")
            self.assertEqual(r.returncode, 0, r.stderr)
            proto = onnx.load(out)
            meta = onnxmeta.get_metadata(proto)
            self.assertEqual(meta["srdgd.kind"], "score")
            self.assertEqual(meta["srdgd.scale"], "8")
            self.assertEqual(meta["srdgd.lr_size"], "16")
            self.assertEqual(float(meta["srdgd.sigma_max"]), 348.0)
            self.assertEqual(json.loads(meta["srdgd.crop"])["box_xywh"], [29, 56, 120, 120])
            self.assertIn("EMA", meta["srdgd.provenance"])
            self.assertEqual(json.loads(meta["srdgd.architecture"])["nf"], 16)
            self.assertEqual(meta["srdgd.input_range"], "0,1")
            self.assertLess(os.path.getsize(out), 10 << 20)
            # the exported graph, run by ONNX Runtime, against the float64 reference (both batch sizes)
            for prefix in ("b3", "b1"):
                got = onnxeval(out, {n: load(f"{prefix}_{n}.npy") for n in ("x_t", "y", "sigma")}, "score")
                ref = load(f"{prefix}_score.npy")
                self.assertEqual(got.shape, ref.shape)
                errs = rel_err_per_item(got.astype(np.float64), ref)
                self.assertLessEqual(max(errs), 1e-5, f"{prefix}: ORT per-item max|diff|/max|ref| {errs}")


if __name__ == "__main__":
    unittest.main()
