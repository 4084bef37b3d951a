"""eval-srdg-classifiers: accuracy of the imported SRDG classifiers on CelebA, per noise level.

  /usr/bin/python3 -m models eval-srdg-classifiers --ckpt-dir DIR --data CELEBA_DIR [--split test]
      [--sigmas 0.01,0.05,...] [--seed 0] [--json out.json]

Images: CelebA aligned 178x218 (labels.csv with split and the 40 attributes as -1/1),
cropped to the 120x120 box at columns 29..148, rows 56..175, resized to 128x128 with
PIL bicubic, /255. Noise: x = x0 + sigma * z, one z ~ N(0, I) per image drawn from a
fixed seed and reused at every sigma. Prints a Markdown table of accuracy and balanced
accuracy (mean of the true-positive and true-negative rates) per attribute and sigma.
"""
import argparse
import csv
import json
import os
import sys
import time

from models.__main__ import UserError

SIGMAS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 50)
CELEBA_COLUMN = {"male": "Male", "glasses": "Eyeglasses", "no_beard": "No_Beard"}
BOX = (29, 56, 149, 176)  # PIL box of the 120x120 crop (cli_import_classifiers.CROP box_xywh)


def load_images(data_dir, split, limit=None):
    import numpy as np
    from PIL import Image

    path = os.path.join(data_dir, "labels.csv")
    if not os.path.isfile(path):
        raise UserError(f"{path}: missing (want CelebA labels.csv with split and attribute columns)")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("split") == split]
    if not rows:
        raise UserError(f"{path}: no rows with split == {split!r}")
    rows.sort(key=lambda r: r["image"])
    if limit:
        rows = rows[:limit]
    imgs = np.empty((len(rows), 3, 128, 128), dtype=np.float32)
    for i, r in enumerate(rows):
        with Image.open(os.path.join(data_dir, "img_align_celeba", r["image"])) as im:
            if im.size != (178, 218):
                raise UserError(f"{r['image']}: {im.size[0]}x{im.size[1]}, want the 178x218 aligned image")
            c = im.convert("RGB").crop(BOX).resize((128, 128), Image.BICUBIC)
        imgs[i] = np.asarray(c, dtype=np.float32).transpose(2, 0, 1) / 255.0
    labels = {a: np.array([int(r[col]) == 1 for r in rows]) for a, col in CELEBA_COLUMN.items()}
    return imgs, labels, [r["image"] for r in rows]


class Logits:
    """The classifiers side by side: (x [B,3,128,128], sigma [B]) -> logits [B, A, 2]."""

    def __init__(self, classifiers):
        import torch

        class M(torch.nn.Module):
            def __init__(self, cl):
                super().__init__()
                self.cl = torch.nn.ModuleList(cl)

            def forward(self, x, sigma):
                return torch.stack([c(x, sigma) for c in self.cl], 1)

        self.module = M(classifiers).eval()

    def torch_runner(self):
        import torch

        def run(x, sigma):
            with torch.no_grad():
                return self.module(torch.from_numpy(x), torch.from_numpy(sigma)).numpy()
        return run

    def ort_runner(self, onnxeval, tmpdir):
        """Run through ONNX Runtime with cmd/onnxeval (a built binary): about 2x faster on CPU."""
        import subprocess

        import numpy as np
        import torch

        model = os.path.join(tmpdir, "logits.onnx")
        x = torch.rand(2, 3, 128, 128)
        s = torch.full((2,), 0.5)
        with torch.no_grad():
            torch.onnx.export(self.module, (x, s), model, opset_version=17, input_names=["x_t", "sigma"],
                              output_names=["logits"],
                              dynamic_axes={"x_t": {0: "B"}, "sigma": {0: "B"}, "logits": {0: "B"}})

        def run(x, sigma):
            fx, fs, fo = (os.path.join(tmpdir, n) for n in ("x.npy", "s.npy", "o.npy"))
            np.save(fx, x)
            np.save(fs, sigma)
            r = subprocess.run([onnxeval, "--model", model, "--in", f"x_t={fx}", "--in", f"sigma={fs}",
                                "--out", f"logits={fo}", "--threads", "1"], capture_output=True, text=True)
            if r.returncode != 0:
                raise UserError(f"onnxeval failed: {r.stderr.strip()}")
            return np.load(fo)
        return run


def evaluate(run, attrs, imgs, labels, sigmas, seed=0, batch=50, log=None):
    """run(x [b,3,128,128] float32, sigma [b] float32) -> logits [b, A, 2]."""
    import numpy as np

    rng = np.random.RandomState(seed)
    z = rng.standard_normal(imgs.shape).astype(np.float32)
    res = {}
    for s in sigmas:
        x = imgs + np.float32(s) * z
        sig = np.full((x.shape[0],), s, dtype=np.float32)
        t0 = time.time()
        logits = np.concatenate([run(x[i:i + batch], sig[i:i + batch]) for i in range(0, x.shape[0], batch)])
        for ai, a in enumerate(attrs):
            pred = logits[:, ai].argmax(1) == 1
            y = labels[a]
            acc = float((pred == y).mean())
            tpr = float(pred[y].mean()) if y.any() else float("nan")
            tnr = float((~pred[~y]).mean()) if (~y).any() else float("nan")
            res.setdefault(str(s), {})[a] = {"acc": acc, "balanced_acc": (tpr + tnr) / 2, "tpr": tpr, "tnr": tnr,
                                             "n": int(len(y)), "n_pos": int(y.sum())}
        if log:
            log(f"sigma {s}: " + ", ".join(f"{a} {res[str(s)][a]['acc']:.4f}" for a in attrs)
                + f" ({time.time() - t0:.0f} s)")
    return res


def markdown(res, attrs):
    head = "| sigma | " + " | ".join(f"{a} acc | {a} bal. acc" for a in attrs) + " |"
    sep = "|---" * (1 + 2 * len(attrs)) + "|"
    lines = [head, sep]
    for s, r in res.items():
        lines.append(f"| {s} | " + " | ".join(f"{100 * r[a]['acc']:.1f} | {100 * r[a]['balanced_acc']:.1f}"
                                              for a in attrs) + " |")
    return "\n".join(lines)


def main(argv):
    try:
        return run(argv)
    except UserError as e:
        print(f"models eval-srdg-classifiers: {e}", file=sys.stderr)
        return 1


def run(argv):
    ap = argparse.ArgumentParser(prog="models eval-srdg-classifiers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt-dir", required=True, help="folder with ckpt_gender, ckpt_glasses, ckpt_beard")
    ap.add_argument("--data", required=True, help="CelebA aligned folder (labels.csv, img_align_celeba/)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--attrs", default="male,glasses,no_beard")
    ap.add_argument("--sigmas", default=",".join(str(s) for s in SIGMAS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="first N images only")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--onnxeval", help="run through ONNX Runtime with this cmd/onnxeval binary "
                    "(go build -o onnxeval ./cmd/onnxeval) instead of PyTorch")
    a = ap.parse_args(argv)
    try:
        sigmas = [float(s) for s in a.sigmas.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sigmas {a.sigmas!r}: want comma-separated numbers") from None
    attrs = [s.strip() for s in a.attrs.split(",") if s.strip()]
    if any(x not in CELEBA_COLUMN for x in attrs):
        raise UserError(f"--attrs {a.attrs!r}: want names from {', '.join(CELEBA_COLUMN)}")
    import torch

    from models.convert import import_classifiers as cli_import_classifiers

    torch.set_num_threads(a.threads)
    classifiers, _ = cli_import_classifiers.load_classifiers(a.ckpt_dir, attrs)
    imgs, labels, _ = load_images(a.data, a.split, a.limit)
    log = lambda m: print(m, file=sys.stderr, flush=True)
    log(f"{len(imgs)} {a.split} images; positives: " + ", ".join(f"{x} {int(labels[x].sum())}" for x in attrs))
    import tempfile

    lg = Logits(classifiers)
    with tempfile.TemporaryDirectory() as tmp:
        run_fn = lg.ort_runner(a.onnxeval, tmp) if a.onnxeval else lg.torch_runner()
        res = evaluate(run_fn, attrs, imgs, labels, sigmas, seed=a.seed, batch=a.batch, log=log)
    out = {"split": a.split, "n": len(imgs), "seed": a.seed, "crop_box_ltrb": list(BOX),
           "runtime": "onnxruntime" if a.onnxeval else "pytorch", "results": res}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    print(markdown(res, attrs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
