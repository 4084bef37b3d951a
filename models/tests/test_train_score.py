import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch

from models.data import celeba as data
from models.nets import unet
from models.train import common, score

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--scale", "8", "--ch", "8", "--emb", "16", "--ch-mult", "1,2", "--batch", "2", "--val-n", "2",
        "--log-steps", "1", "--val-steps", "2", "--threads", "1", "--device", "cpu", "--warmup", "2"]


def read_jsonl(path, partial_ok=False):
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                if not partial_ok:  # a line being written while we poll
                    raise
    return out


def states_equal(tc, a, b, path=""):
    if isinstance(a, dict):
        tc.assertEqual(sorted(a, key=str), sorted(b, key=str), path)
        for k in a:
            states_equal(tc, a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        tc.assertEqual(len(a), len(b), path)
        for i, (x, y) in enumerate(zip(a, b)):
            states_equal(tc, x, y, f"{path}[{i}]")
    elif torch.is_tensor(a):
        tc.assertTrue(torch.equal(a, b), f"tensor {path} differs")
    else:
        tc.assertEqual(a, b, path)


class TrainScoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.cache = os.path.join(cls.tmp.name, "cache")
        data.write_synthetic_cache(cls.cache, n_per_split=(6, 3, 3))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_dir(self, name):
        return os.path.join(self.tmp.name, name)

    def test_resume_is_exact(self):
        a, b = self.run_dir("a"), self.run_dir("b")
        self.assertEqual(score.main(TINY + ["--cache", self.cache, "--out", a, "--steps", "3"]), 0)
        self.assertEqual(score.main(TINY + ["--cache", self.cache, "--out", b, "--steps", "1"]), 0)
        self.assertEqual(score.main(["--out", b, "--resume", "--steps", "3", "--cache", self.cache, "--threads", "1"]), 0)
        ca = torch.load(os.path.join(a, "checkpoint.pt"))
        cb = torch.load(os.path.join(b, "checkpoint.pt"))
        self.assertEqual(ca["step"], 3)
        for key in ("model", "ema", "opt", "step", "train", "model_config"):
            with self.subTest(key=key):
                states_equal(self, ca[key], cb[key], key)
        # the parameters moved away from their initialisation
        init = unet.ScoreModel(ca["model_config"])
        moved = [not torch.equal(init.state_dict()[k], v) for k, v in ca["model"].items() if k.endswith("weight")]
        self.assertTrue(any(moved))
        steps = [r["step"] for r in read_jsonl(os.path.join(b, "train.jsonl")) if r["event"] == "train"]
        self.assertEqual(steps, [1, 2, 3])
        for r in read_jsonl(os.path.join(a, "train.jsonl")):
            if r["event"] == "train":
                self.assertTrue(np.isfinite(r["loss"]))

    def test_preload_resume_is_exact(self):
        # the on-device path (split held on the device, noise drawn there) resumes exactly too
        a, b = self.run_dir("pa"), self.run_dir("pb")
        pre = TINY + ["--cache", self.cache, "--preload", "on"]
        self.assertEqual(score.main(pre + ["--out", a, "--steps", "3"]), 0)
        self.assertEqual(score.main(pre + ["--out", b, "--steps", "2"]), 0)
        self.assertEqual(score.main(["--out", b, "--resume", "--steps", "3", "--cache", self.cache, "--threads", "1",
                                     "--preload", "on"]), 0)
        ca = torch.load(os.path.join(a, "checkpoint.pt"))
        cb = torch.load(os.path.join(b, "checkpoint.pt"))
        for key in ("model", "ema", "opt", "step"):
            with self.subTest(key=key):
                states_equal(self, ca[key], cb[key], key)

    def test_device_batches_equal_split_batches(self):
        split = data.load_split("train", scales=(8,), cache_dir=self.cache)
        db = score.DeviceBatches(split, 8, torch.device("cpu"), chunk=4)
        idx, flip = np.array([5, 0, 3]), np.array([True, False, True])
        x0, y = split.batch(idx, 8, flip)
        dx, dy = db.batch(idx, flip)
        torch.testing.assert_close(dx, torch.from_numpy(x0), atol=0, rtol=0)
        torch.testing.assert_close(dy, torch.from_numpy(y), atol=1e-6, rtol=0)

    def test_max_minutes_stops_cleanly(self):
        d = self.run_dir("mm")
        self.assertEqual(score.main(TINY + ["--cache", self.cache, "--out", d, "--steps", "100000",
                                            "--max-minutes", "1e-6"]), 0)
        recs = read_jsonl(os.path.join(d, "train.jsonl"))
        events = [r["event"] for r in recs]
        self.assertIn("time", events)
        self.assertEqual(events[-1], "done")
        ck = torch.load(os.path.join(d, "checkpoint.pt"))
        self.assertEqual(ck["step"], 1)
        self.assertTrue(os.path.exists(os.path.join(d, "best.pt")))

    def test_weights_npz_round_trip(self):
        from models.train import weights_npz

        d = self.run_dir("npz")
        self.assertEqual(score.main(TINY + ["--cache", self.cache, "--out", d, "--steps", "2"]), 0)
        written = weights_npz.pack(d, os.path.join(d, "w"))
        self.assertEqual([os.path.basename(p) for p in written], ["w_best.npz", "w_last.npz"])
        pt = os.path.join(d, "unpacked", "best.pt")
        weights_npz.unpack(written[0], pt)
        model, ck, _ = score.load_weights(pt)
        best = torch.load(os.path.join(d, "best.pt"))
        states_equal(self, best["ema"], model.state_dict(), "ema")
        self.assertEqual(ck["step"], best["step"])
        self.assertEqual(ck["train"]["scale"], 8)
        with self.assertRaisesRegex(ValueError, "__meta__"):
            np.savez(os.path.join(d, "bad.npz"), a=np.zeros(2))
            weights_npz.load_npz(os.path.join(d, "bad.npz"))

    def test_refuses_to_overwrite_a_run(self):
        d = self.run_dir("c")
        self.assertEqual(score.main(TINY + ["--cache", self.cache, "--out", d, "--steps", "1"]), 0)
        with self.assertRaisesRegex(common.UserError, "--resume"):
            score.main(TINY + ["--cache", self.cache, "--out", d, "--steps", "1"])

    def test_sigterm_checkpoints_and_resumes(self):
        d = self.run_dir("sig")
        cmd = [sys.executable, "-m", "models", "train-score", *TINY, "--cache", self.cache, "--out", d,
               "--steps", "100000", "--val-steps", "0"]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        log = os.path.join(d, "train.jsonl")
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                if os.path.exists(log) and any(r["event"] == "train" for r in read_jsonl(log, True)):
                    break
                if proc.poll() is not None:
                    self.fail(f"trainer exited early: {proc.stdout.read().decode()}")
                time.sleep(0.05)
            else:
                self.fail("trainer logged no step within 60 s")
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, out.decode())
        recs = read_jsonl(log)
        self.assertEqual(recs[-1]["event"], "stop")
        ck = torch.load(os.path.join(d, "checkpoint.pt"))
        self.assertEqual(ck["step"], recs[-1]["step"])
        self.assertGreaterEqual(ck["step"], 1)
        self.assertEqual(score.main(["--out", d, "--resume", "--steps", str(ck["step"] + 1), "--cache", self.cache]), 0)
        self.assertEqual(torch.load(os.path.join(d, "checkpoint.pt"))["step"], ck["step"] + 1)

    def test_log_truncation(self):
        p = os.path.join(self.tmp.name, "log.jsonl")
        with open(p, "w") as f:
            f.write('{"event":"train","step":1}\n{"event":"ckpt","step":2}\n{"event":"train","step":3}\n{"event":"tr')
        common.JsonlLog(p).truncate_after(2)
        self.assertEqual([r["step"] for r in read_jsonl(p)], [1, 2])

    def test_dsm_equals_denoiser_loss(self):
        torch.manual_seed(0)
        m = unet.ScoreModel(unet.make_config(ch=8, emb=16, ch_mult=[1, 2], sigma_data=0.08))
        for p in m.parameters():  # non-zero F so the test sees the network output
            p.data.add_(0.05 * torch.randn_like(p))
        x0, y = torch.rand(3, 3, 128, 128), torch.rand(3, 3, 128, 128)
        sigma = torch.tensor([0.01, 1.0, 300.0])
        z = torch.randn_like(x0)
        with torch.no_grad():
            dsm = score.dsm_loss(m, x0, y, sigma, z)
            d = m.denoise(x0 + sigma[:, None, None, None] * z, y, sigma)
            want = 0.5 * ((d - x0) ** 2).mean(dim=(1, 2, 3)) / sigma ** 2
        torch.testing.assert_close(dsm, want, rtol=1e-3, atol=1e-6)

    def test_heun_sampler_runs_and_is_deterministic(self):
        torch.manual_seed(0)
        m = unet.ScoreModel(unet.make_config(ch=8, emb=16, ch_mult=[1, 2], sigma_data=0.08)).eval()
        y = torch.rand(2, 3, 128, 128)
        a = score.heun_sample(m, y, steps=3, seed=1)
        b = score.heun_sample(m, y, steps=3, seed=1)
        self.assertEqual(a.shape, (2, 3, 128, 128))
        self.assertTrue(torch.equal(a, b))
        self.assertTrue(bool(torch.isfinite(a).all()) and float(a.min()) >= 0 and float(a.max()) <= 1)
        # an untrained network (F = 0 at init) denoises to y at sigma_max
        torch.testing.assert_close(m.denoise(y + 348.0 * torch.randn_like(y), y, torch.full((2,), 348.0)), y,
                                   atol=1e-3, rtol=0)

    def test_batch_indices_cover_epoch(self):
        seen = np.concatenate([score.batch_indices(0, s, 10, 3) for s in range(3)])
        self.assertEqual(len(set(seen.tolist())), 9)
        np.testing.assert_array_equal(score.batch_indices(5, 7, 10, 3), score.batch_indices(5, 7, 10, 3))


if __name__ == "__main__":
    unittest.main()
