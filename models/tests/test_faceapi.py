"""Tests for the face-api converters (models/faceapi/, models/convert/convert_embedder.py).

Parity: the PyTorch port (the graph that is exported), the exported ONNX run by ONNX Runtime
from Go (cmd/onnxeval) and face-api's own JavaScript on TF.js (models/faceapi/reference.mjs,
node) are each compared with an independent float64 NumPy forward pass
(models/faceapi/numpy_ref.py) on real faces: CelebA images from SRDGD_TEST_CELEBA (default
/work/shared/data/celeba-aligned, never copied into the repository) and faces in the package's
own demo photos. Requirement: cosine >= 0.99999 per face.

The npm tarball is fetched once with `npm pack @vladmandic/face-api@1.7.15` into
models/runs/npm-cache/ (gitignored), or taken from SRDGD_TEST_FACEAPI_TGZ. Without it (npm or the
registry unreachable) the tests that need it skip, saying why.
"""
import csv
import hashlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import unittest
from contextlib import redirect_stderr

import numpy as np
import torch

from models.faceapi import align as faceapi_align, numpy_ref as faceapi_numpy, tfjs as faceapi_tfjs, torch_net as faceapi_torch
from models.__main__ import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(REPO, "models", "runs", "npm-cache")
CELEBA = os.environ.get("SRDGD_TEST_CELEBA", "/work/shared/data/celeba-aligned")
DIST = os.path.join(REPO, "models", "dist")
ORT_LIB = os.path.join(REPO, "third_party", "onnxruntime", "lib", "libonnxruntime.so.1")
MIN_COS = 0.99999

# Faces in the package's demo photos: dlib-aligned boxes (x, y, w, h) for the embedder, found
# with the landmark net, and rough boxes around the same faces for the landmark net.
SAMPLE_FACES = (
    ("demo/sample1.jpg", (1450, 233, 227, 227), (1440, 150, 300, 330)),
    ("demo/sample3.jpg", (1021, 251, 262, 262), (1000, 120, 340, 360)),
    ("demo/sample4.jpg", (1238, 190, 188, 188), (1170, 90, 260, 300)),
    ("demo/sample6.jpg", (1423, 295, 287, 287), (1440, 260, 280, 320)),
)
CELEBA_ROUGH_BOX = (24, 50, 130, 150)  # around the face in a 178x218 aligned CelebA image

_state = {}


def setUpModule():
    torch.set_num_threads(1)


def package():
    """(tgz path, unpacked dir) of the pinned face-api release, or raise SkipTest saying why."""
    if "pkg" in _state:
        return _state["pkg"]
    if "pkg_error" in _state:
        raise unittest.SkipTest(_state["pkg_error"])
    tgz = os.environ.get("SRDGD_TEST_FACEAPI_TGZ")
    try:
        if not tgz:
            tgz = faceapi_tfjs.fetch_tgz(CACHE)
        unpacked = os.path.join(CACHE, f"face-api-{faceapi_tfjs.NPM_VERSION}")
        if not os.path.isfile(os.path.join(unpacked, "package", "package.json")):
            tmp = unpacked + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            with tarfile.open(tgz) as tf:
                tf.extractall(tmp, members=[m for m in tf.getmembers() if m.isfile() and m.name.startswith("package/")
                                            and ".." not in m.name])
            shutil.rmtree(unpacked, ignore_errors=True)
            os.replace(tmp, unpacked)
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as e:
        _state["pkg_error"] = f"face-api tarball unavailable (npm pack {faceapi_tfjs.NPM_NAME}@{faceapi_tfjs.NPM_VERSION}): {e}"
        print(f"\nSKIP: {_state['pkg_error']}", file=sys.stderr)
        raise unittest.SkipTest(_state["pkg_error"])
    _state["pkg"] = (tgz, os.path.join(unpacked, "package"))
    return _state["pkg"]


def cosines(a, b):
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def to_nchw01(u8):
    return torch.from_numpy(np.ascontiguousarray(u8.astype(np.float32).transpose(0, 3, 1, 2) / 255.0))


# ---------------------------------------------------------------------------------------------
# TF.js manifest decoding (no package needed)


class TestDecodeManifest(unittest.TestCase):
    def decode(self, manifest, shards):
        return faceapi_tfjs.decode_manifest(manifest, lambda p: shards[p])

    def test_dtypes(self):
        f16 = np.array([1.5, -2.0, 65504.0], dtype="<f2")
        f32 = np.array([[0.25, -7.0]], dtype="<f4")
        cases = [
            ("uint8", {"name": "a", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
             bytes([0, 1, 255]), np.array([-1.0, -0.5, 126.5], np.float32)),
            ("uint16", {"name": "b", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 1e-3, "min": 2.0}},
             struct.pack("<HH", 0, 65535), np.array([2.0, 65535 * 1e-3 + 2.0], np.float64).astype(np.float32)),
            ("float16", {"name": "c", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
             f16.tobytes(), f16.astype(np.float32)),
            ("float32", {"name": "d", "shape": [1, 2], "dtype": "float32"}, f32.tobytes(), f32),
            ("scalar", {"name": "e", "shape": [], "dtype": "float32"}, struct.pack("<f", 3.5), np.array(3.5, np.float32)),
        ]
        for label, spec, raw, want in cases:
            with self.subTest(label):
                got = self.decode([{"paths": ["w.bin"], "weights": [spec]}], {"w.bin": raw})[spec["name"]]
                self.assertEqual(got.dtype, np.float32)
                self.assertEqual(got.shape, want.shape)
                np.testing.assert_array_equal(got, want)

    def test_groups_and_split_shards(self):
        # two groups; the first spans two shards, split in the middle of a weight
        a = np.arange(6, dtype="<f4")
        q = bytes([10, 20])
        raw = a.tobytes() + q
        manifest = [
            {"paths": ["g1a.bin", "g1b.bin"], "weights": [
                {"name": "a", "shape": [2, 3], "dtype": "float32"},
                {"name": "q", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 2.0, "min": 1.0}}]},
            {"paths": ["g2.bin"], "weights": [{"name": "z", "shape": [1], "dtype": "float32"}]},
        ]
        quantised = {}
        got = faceapi_tfjs.decode_manifest(manifest, {"g1a.bin": raw[:10], "g1b.bin": raw[10:],
                                                      "g2.bin": struct.pack("<f", -1.0)}.__getitem__, quantised=quantised)
        np.testing.assert_array_equal(got["a"], a.reshape(2, 3))
        np.testing.assert_array_equal(got["q"], np.array([21.0, 41.0], np.float32))
        np.testing.assert_array_equal(got["z"], np.array([-1.0], np.float32))
        self.assertEqual(sorted(quantised), ["q"])
        np.testing.assert_array_equal(quantised["q"].q, np.array([10, 20], np.uint8))
        self.assertEqual((quantised["q"].scale, quantised["q"].min), (2.0, 1.0))

    def test_errors(self):
        ok_spec = {"name": "a", "shape": [4], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 1.0, "min": 0.0}}
        cases = [
            ("truncated shard", [{"paths": ["w"], "weights": [ok_spec]}], {"w": bytes(3)}, "truncated"),
            ("trailing bytes", [{"paths": ["w"], "weights": [ok_spec]}], {"w": bytes(5)}, "hold 5 bytes but the weights take 4"),
            ("unknown quantization", [{"paths": ["w"], "weights": [dict(ok_spec, quantization={"dtype": "int4"})]}], {"w": bytes(4)},
             "unknown quantization"),
            ("no scale", [{"paths": ["w"], "weights": [dict(ok_spec, quantization={"dtype": "uint8", "min": 0})]}], {"w": bytes(4)},
             "lacks scale/min"),
            ("int32 weight", [{"paths": ["w"], "weights": [dict(ok_spec, dtype="int32")]}], {"w": bytes(4)}, "only float32"),
            ("duplicate", [{"paths": ["w"], "weights": [ok_spec, ok_spec]}], {"w": bytes(8)}, "appears twice"),
            ("malformed spec", [{"paths": ["w"], "weights": [{"name": "a"}]}], {"w": b""}, "malformed weight spec"),
            ("not a list", {"paths": []}, {}, "non-empty JSON list"),
            ("group without paths", [{"weights": []}], {}, "needs 'paths' and 'weights'"),
        ]
        for label, manifest, shards, msg in cases:
            with self.subTest(label):
                with self.assertRaises(UserError) as cm:
                    self.decode(manifest, shards)
                self.assertIn(msg, str(cm.exception))

    def test_check_shapes(self):
        w = {"a": np.zeros((2, 3), np.float32), "b": np.zeros(4, np.float32)}
        faceapi_tfjs.check_shapes(w, {"a": (2, 3), "b": (4,)}, "net")
        cases = [
            ("missing", {"a": (2, 3), "b": (4,), "c": (1,)}, "missing ['c']"),
            ("unexpected", {"a": (2, 3)}, "unexpected ['b']"),
            ("shape", {"a": (3, 2), "b": (4,)}, "has shape [2, 3], the network needs [3, 2]"),
        ]
        for label, want, msg in cases:
            with self.subTest(label):
                with self.assertRaises(UserError) as cm:
                    faceapi_tfjs.check_shapes(w, want, "net")
                self.assertIn(msg, str(cm.exception))

    def test_package_errors(self):
        with tempfile.TemporaryDirectory() as d:
            cases = [
                ("no dir", lambda: faceapi_tfjs.Package.from_dir(os.path.join(d, "nope")), "does not exist"),
                ("no tgz", lambda: faceapi_tfjs.Package.from_tgz(os.path.join(d, "nope.tgz")), "does not exist"),
            ]
            bad = os.path.join(d, "bad.tgz")
            with open(bad, "wb") as f:
                f.write(b"not a tarball")
            cases.append(("corrupt tgz", lambda: faceapi_tfjs.Package.from_tgz(bad), "not a readable .tgz"))
            pkg = os.path.join(d, "pkg")
            os.makedirs(os.path.join(pkg, "model"))
            with open(os.path.join(pkg, "package.json"), "w") as f:
                json.dump({"name": faceapi_tfjs.NPM_NAME, "version": "0"}, f)
            with open(os.path.join(pkg, "model", "x-weights_manifest.json"), "w") as f:
                json.dump([{"paths": ["x.bin"], "weights": [{"name": "a", "shape": [1], "dtype": "float32"}]}], f)
            cases.append(("missing shard", lambda: faceapi_tfjs.Package.from_dir(pkg).load_weights("x"), "has no model/x.bin"))
            cases.append(("missing manifest", lambda: faceapi_tfjs.Package.from_dir(pkg).load_weights("y"),
                          "has no model/y-weights_manifest.json"))
            for label, fn, msg in cases:
                with self.subTest(label):
                    with self.assertRaises(UserError) as cm:
                        fn()
                    self.assertIn(msg, str(cm.exception))


# ---------------------------------------------------------------------------------------------
# the converter command


class TestConvertCommand(unittest.TestCase):
    def test_builds_committed_files_with_metadata(self):
        """The command rebuilds models/dist byte for byte from the pinned tarball, with the contract's metadata."""
        import onnx

        from models.convert import convert_embedder as cli
        from models import onnxmeta

        tgz, _ = package()
        with tempfile.TemporaryDirectory() as d:
            emb, lmk = os.path.join(d, "face_embedder.onnx"), os.path.join(d, "face_landmarks68.onnx")
            with redirect_stderr(io.StringIO()):
                rc = cli.main(["--tgz", tgz, "--out", emb, "--landmarks-out", lmk])
            self.assertEqual(rc, 0)
            cases = [
                (emb, "face_embedder", "embedding", [3, 150, 150], [128],
                 {"srdgd.input_size": "150", "srdgd.embedding_dim": "128", "srdgd.normalised": "false", "srdgd.input_range": "0,1"}),
                (lmk, "face_landmarks", "landmarks", [3, 112, 112], [68, 2],
                 {"srdgd.input_size": "112", "srdgd.num_landmarks": "68", "srdgd.input_range": "0,1"}),
            ]
            for path, kind, out_name, in_dims, out_dims, want_meta in cases:
                with self.subTest(kind):
                    m = onnx.load(path)
                    onnx.checker.check_model(m)
                    meta = onnxmeta.get_metadata(m)
                    self.assertEqual(meta["srdgd.kind"], kind)
                    for k in onnxmeta.COMMON:
                        self.assertTrue(meta.get(k), k)
                    for k, v in want_meta.items():
                        self.assertEqual(meta.get(k), v, k)
                    self.assertIn(f"{faceapi_tfjs.NPM_NAME} {faceapi_tfjs.NPM_VERSION}", meta["srdgd.provenance"])
                    self.assertIn("sha256:", meta["srdgd.weights_source"])
                    (inp,), (out,) = m.graph.input, m.graph.output
                    self.assertEqual(inp.name, "image")
                    self.assertEqual(out.name, out_name)
                    idims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
                    odims = [d.dim_value or d.dim_param for d in out.type.tensor_type.shape.dim]
                    self.assertEqual(idims[1:], in_dims)
                    self.assertEqual(odims[1:], out_dims)
                    self.assertIsInstance(idims[0], str)  # dynamic batch
                    # reproducible: the committed file is exactly what the command builds from the pinned tarball
                    committed = os.path.join(DIST, os.path.basename(path))
                    if os.path.isfile(committed) and os.path.basename(tgz) == faceapi_tfjs.TGZ_NAME:
                        self.assertEqual(_sha(path), _sha(committed), f"{committed} differs from what the command builds")
            emb_meta = onnxmeta.get_metadata(onnx.load(emb))
            alignment = json.loads(emb_meta["srdgd.alignment"])
            self.assertEqual((alignment["rel_x"], alignment["rel_y"], alignment["rel_scale"]), (0.5, 0.43, 0.45))
            # quantised weights stay quantised: about the size of the 6.4 MB .bin shard, not 22 MB of float32
            self.assertLess(os.path.getsize(emb), 8_000_000)

    def test_user_errors(self):
        """Truncated shard, manifest that does not fit the network, missing input: message, exit 1, no traceback."""
        _, pkg_dir = package()
        with tempfile.TemporaryDirectory() as d:
            trunc = os.path.join(d, "trunc")
            _copy_package(pkg_dir, trunc)
            with open(os.path.join(trunc, "model", "face_recognition_model.bin"), "r+b") as f:
                f.truncate(1000)
            renamed = os.path.join(d, "renamed")
            _copy_package(pkg_dir, renamed)
            mpath = os.path.join(renamed, "model", "face_recognition_model-weights_manifest.json")
            with open(mpath) as f:
                manifest = json.load(f)
            manifest[0]["weights"][-1]["name"] = "fc_renamed"
            with open(mpath, "w") as f:
                json.dump(manifest, f)
            cases = [
                ("truncated shard", ["--dir", trunc], "truncated"),
                ("manifest mismatch", ["--dir", renamed], "does not match the network"),
                ("missing tarball", ["--tgz", os.path.join(d, "none.tgz")], "does not exist"),
            ]
            for label, args, msg in cases:
                with self.subTest(label):
                    p = subprocess.run([sys.executable, "-m", "models", "convert-face-embedder", *args,
                                        "--out", os.path.join(d, "x.onnx")], cwd=REPO, capture_output=True, text=True, timeout=120)
                    self.assertEqual(p.returncode, 1, p.stderr)
                    self.assertIn(msg, p.stderr)
                    self.assertNotIn("Traceback", p.stderr)
                    self.assertFalse(os.path.exists(os.path.join(d, "x.onnx")))


def _copy_package(src, dst):
    os.makedirs(os.path.join(dst, "model"))
    shutil.copy(os.path.join(src, "package.json"), dst)
    for name in os.listdir(os.path.join(src, "model")):
        if name.startswith("face_recognition_model"):
            shutil.copy(os.path.join(src, "model", name), os.path.join(dst, "model", name))


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------------------------------------
# parity on real faces


def _celeba_rows():
    path = os.path.join(CELEBA, "labels.csv")
    if not os.path.isfile(path):
        raise unittest.SkipTest(f"CelebA subset not found at {CELEBA} (set SRDGD_TEST_CELEBA)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _open(path):
    from PIL import Image
    with Image.open(path) as im:
        return im.convert("RGB")


class _Nets:
    """The package's weights and the PyTorch ports, loaded once."""

    @classmethod
    def get(cls):
        if "nets" not in _state:
            _, pkg_dir = package()
            pkg = faceapi_tfjs.Package.from_dir(pkg_dir)
            n = cls()
            n.pkg_dir = pkg_dir
            n.rec_w = pkg.load_weights("face_recognition_model")
            n.lmk_w = pkg.load_weights("face_landmark_68_model")
            n.rec = faceapi_torch.FaceRecognitionNet(n.rec_w).eval()
            n.lmk = faceapi_torch.FaceLandmark68Net(n.lmk_w).eval()
            _state["nets"] = n
        return _state["nets"]

    def landmarks(self, u8):
        with torch.no_grad():
            return self.lmk(to_nchw01(u8)).numpy()

    def embed(self, u8):
        with torch.no_grad():
            return self.rec(to_nchw01(u8)).numpy()

    def aligned_face(self, img, rough_box):
        """face-api's pipeline from a rough face box: landmarks, dlib box, 150x150 crop."""
        x, origin = faceapi_align.square_input(img, rough_box, 112)
        pts = faceapi_align.landmarks_to_image(self.landmarks(x[None])[0], origin)
        return faceapi_align.square_input(img, faceapi_align.dlib_box(pts), 150)[0]


def _faces():
    """Real test faces: (names, uint8 [N,150,150,3] embedder crops, uint8 [N,112,112,3] landmark crops)."""
    if "faces" in _state:
        return _state["faces"]
    nets = _Nets.get()
    rows = [r for r in _celeba_rows() if r["split"] == "test"]
    picked, seen = [], set()
    for r in rows:  # different identities, file order
        if r["celeba_identity"] not in seen:
            seen.add(r["celeba_identity"])
            picked.append(r["image"])
        if len(picked) == 4:
            break
    names, emb, lmk = [], [], []
    for name in picked:
        img = _open(os.path.join(CELEBA, "img_align_celeba", name))
        names.append("celeba/" + name)
        emb.append(nets.aligned_face(img, CELEBA_ROUGH_BOX))
        lmk.append(faceapi_align.square_input(img, CELEBA_ROUGH_BOX, 112)[0])
    for rel, box, rough in SAMPLE_FACES:
        img = _open(os.path.join(nets.pkg_dir, rel))
        names.append("face-api/" + rel)
        emb.append(faceapi_align.square_input(img, box, 150)[0])
        lmk.append(faceapi_align.square_input(img, rough, 112)[0])
    _state["faces"] = (names, np.stack(emb), np.stack(lmk))
    return _state["faces"]


def _onnxeval(model, in_arr, out_name):
    """Run an ONNX file with ONNX Runtime through the Go tool; returns the output array."""
    if not os.path.isfile(ORT_LIB):
        raise unittest.SkipTest(f"ONNX Runtime library missing ({ORT_LIB}): run scripts/fetch-ort.sh")
    if shutil.which("go") is None and not os.path.exists("/usr/local/go/bin/go"):
        raise unittest.SkipTest("go toolchain not found")
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if "onnxeval" not in _state:
        tmp = tempfile.mkdtemp(prefix="onnxeval-")
        _state["onnxeval_dir"] = tmp
        subprocess.run([go, "build", "-o", os.path.join(tmp, "onnxeval"), "./cmd/onnxeval"], cwd=REPO, check=True, timeout=300)
        _state["onnxeval"] = os.path.join(tmp, "onnxeval")
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in.npy"), os.path.join(d, "out.npy")
        np.save(inp, in_arr.astype(np.float32))
        subprocess.run([_state["onnxeval"], "--model", model, "--in", f"image={inp}", "--out", f"{out_name}={out}", "--threads", "1"],
                       cwd=REPO, check=True, timeout=120, capture_output=True)
        return np.load(out)


def _node_reference(net, nhwc_0_255):
    """face-api's own JavaScript (TF.js CPU backend) on the same images."""
    node = shutil.which("node")
    if node is None:
        raise unittest.SkipTest("node not found: face-api's own JavaScript cannot run")
    nets = _Nets.get()
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
        np.ascontiguousarray(nhwc_0_255, dtype=np.float32).tofile(inp)
        subprocess.run([node, os.path.join(REPO, "models", "faceapi", "reference.mjs"), nets.pkg_dir, net, inp,
                        str(len(nhwc_0_255)), out], check=True, timeout=180, capture_output=True)
        return np.fromfile(out, dtype=np.float32).reshape(len(nhwc_0_255), -1)


def _report(label, ref, got):
    c = cosines(ref, got)
    diff = float(np.abs(np.asarray(ref, np.float64).reshape(len(ref), -1) - np.asarray(got, np.float64).reshape(len(got), -1)).max())
    print(f"\n  {label}: cosine min {c.min():.12f} (1 - min = {1 - c.min():.2g}) over {len(c)} faces, max abs diff {diff:.3g}",
          file=sys.stderr)
    return c, diff


class TestParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nets = _Nets.get()
        cls.names, cls.emb_in, cls.lmk_in = _faces()
        cls.emb_ref = faceapi_numpy.recognition_forward(cls.nets.rec_w, cls.emb_in)
        cls.lmk_ref = faceapi_numpy.landmarks_forward(cls.nets.lmk_w, cls.lmk_in)

    def check(self, label, ref, got, max_abs):
        c, diff = _report(label, ref, got)
        for name, v in zip(self.names, c):
            self.assertGreaterEqual(v, MIN_COS, f"{label}: {name} cosine {v}")
        self.assertLess(diff, max_abs, label)

    def test_embedder_torch(self):
        self.check("embedder torch vs numpy", self.emb_ref, self.nets.embed(self.emb_in), 1e-4)

    def test_embedder_onnx(self):
        out = _onnxeval(os.path.join(DIST, "face_embedder.onnx"), to_nchw01(self.emb_in).numpy(), "embedding")
        self.assertEqual(out.shape, (len(self.names), 128))
        self.check("embedder ONNX (ORT via Go) vs numpy", self.emb_ref, out, 1e-4)

    def test_embedder_faceapi_js(self):
        idx = [0, 1, 4, 5]  # two CelebA, two demo faces: TF.js on the CPU backend is slow
        out = _node_reference("recognition", self.emb_in[idx].astype(np.float32))
        self.check("embedder face-api JS vs numpy", self.emb_ref[idx], out, 1e-4)

    def test_landmarks_torch(self):
        self.check("landmarks torch vs numpy", self.lmk_ref, self.nets.landmarks(self.lmk_in), 1e-5)

    def test_landmarks_onnx(self):
        out = _onnxeval(os.path.join(DIST, "face_landmarks68.onnx"), to_nchw01(self.lmk_in).numpy(), "landmarks")
        self.assertEqual(out.shape, (len(self.names), 68, 2))
        self.check("landmarks ONNX (ORT via Go) vs numpy", self.lmk_ref, out, 1e-5)

    def test_landmarks_faceapi_js(self):
        out = _node_reference("landmarks", self.lmk_in.astype(np.float32))
        self.check("landmarks face-api JS vs numpy", self.lmk_ref, out.reshape(-1, 68, 2), 1e-5)

    def test_descriptor_not_normalised(self):
        """face-api returns raw descriptors (norms around 1, not exactly 1); the Go side normalises."""
        norms = np.linalg.norm(self.emb_ref, axis=1)
        self.assertTrue(np.all(norms > 0.3) and np.all(norms < 3), norms)
        self.assertGreater(np.abs(norms - 1).max(), 1e-3)


class TestSemantics(unittest.TestCase):
    def test_landmarks_on_celeba_eyes(self):
        """On CelebA's aligned images the eye centres land near the fixed aligned eye positions."""
        from models.data import crop
        nets = _Nets.get()
        rows = _celeba_rows()[:40]
        ins, origins = [], []
        for r in rows:
            x, o = faceapi_align.square_input(_open(os.path.join(CELEBA, "img_align_celeba", r["image"])), CELEBA_ROUGH_BOX, 112)
            ins.append(x)
            origins.append(o)
        rel = nets.landmarks(np.stack(ins))
        pts = np.stack([faceapi_align.landmarks_to_image(rel[i], origins[i]) for i in range(len(rows))])
        eye_a, eye_b = pts[:, 36:42].mean((0, 1)), pts[:, 42:48].mean((0, 1))
        print(f"\n  CelebA mean eye centres from landmarks: {eye_a.round(2)}, {eye_b.round(2)} "
              f"(models/data/crop.py ALIGNED_EYES {crop.ALIGNED_EYES})", file=sys.stderr)
        np.testing.assert_allclose(eye_a, crop.ALIGNED_EYES[0], atol=4)
        np.testing.assert_allclose(eye_b, crop.ALIGNED_EYES[1], atol=4)

    def test_same_identity_more_similar(self):
        """50 same-identity vs 50 different-identity CelebA pairs through face-api's pipeline."""
        nets = _Nets.get()
        rows = _celeba_rows()
        by_id = {}
        for r in rows:
            by_id.setdefault(r["celeba_identity"], []).append(r["image"])
        ids = sorted(by_id)
        rng = random.Random(1)
        same = [tuple(rng.sample(by_id[rng.choice(ids)], 2)) for _ in range(50)]
        diff = []
        for _ in range(50):
            i, j = rng.sample(ids, 2)
            diff.append((rng.choice(by_id[i]), rng.choice(by_id[j])))
        names = sorted({n for p in same + diff for n in p})
        crops = np.stack([nets.aligned_face(_open(os.path.join(CELEBA, "img_align_celeba", n)), CELEBA_ROUGH_BOX) for n in names])
        raw = dict(zip(names, nets.embed(crops)))
        unit = {n: v / np.linalg.norm(v) for n, v in raw.items()}
        cs = np.array([unit[a] @ unit[b] for a, b in same])
        cd = np.array([unit[a] @ unit[b] for a, b in diff])
        es = np.array([np.linalg.norm(raw[a] - raw[b]) for a, b in same])
        ed = np.array([np.linalg.norm(raw[a] - raw[b]) for a, b in diff])
        auc = float((cs[:, None] > cd[None, :]).mean())
        print(f"\n  CelebA identity check ({len(names)} images): cosine same {cs.mean():.4f} different {cd.mean():.4f} "
              f"margin {cs.mean() - cd.mean():.4f}, pair AUC {auc:.4f}; Euclidean (raw) same {es.mean():.3f} "
              f"different {ed.mean():.3f}, below 0.6: same {np.mean(es < 0.6):.2f} different {np.mean(ed < 0.6):.2f}",
              file=sys.stderr)
        self.assertGreater(cs.mean() - cd.mean(), 0.05)
        self.assertGreater(auc, 0.9)


def tearDownModule():
    if "onnxeval_dir" in _state:
        shutil.rmtree(_state["onnxeval_dir"], ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
