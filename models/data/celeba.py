"""CelebA aligned subset -> cached 128x128 crops, LR images and labels, per split.

Cache layout (under models/runs/cache/, gitignored; never commit it):
  celeba128_<split>.npy         uint8 [N, 128, 128, 3] (models.data.crop, HWC RGB)
  celeba128_<split>.json        {"images": [...], "identity": [...], "attributes": [...],
                                 "labels": [[male, glasses, no_beard], ...] (0/1), "crop": {...}}
  lr_x<scale>_<split>.npy       float32 [N, 3, lr, lr]: models.data.resample.downscale of the crop
                                 (float32 passes, as Pillow's "F" mode)
The conditioning image y = resample.upscale(lr, 128) is computed per batch (exact and cheap;
caching it would cost 0.94 GB per scale for the train split).
"""
import csv
import json
import os

import numpy as np

from . import crop, resample

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
DEFAULT_DATA = os.path.normpath(os.path.join(MODELS, "..", "..", "shared", "data", "celeba-aligned"))
DEFAULT_CACHE = os.path.join(MODELS, "runs", "cache")
SPLITS = ("train", "val", "test")
CSV_SPLIT = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
# CelebA column -> our attribute name (label 1 meaning as in models.onnxmeta.ATTRIBUTE_LABELS)
ATTR_COLUMNS = (("Male", "male"), ("Eyeglasses", "glasses"), ("No_Beard", "no_beard"))
LR_SIZE = {8: 16, 16: 8}  # scale factor -> LR side for 128x128 HR
CACHE_VERSION = 1


def lr_size(scale):
    if scale not in LR_SIZE:
        raise ValueError(f"unsupported scale {scale} (supported: {', '.join(map(str, LR_SIZE))})")
    return LR_SIZE[scale]


class Split:
    """One split in memory: u8 crops, labels, identities, LR images per scale."""

    def __init__(self, name, u8, labels, identity, images, lr):
        self.name, self.u8, self.labels, self.identity, self.images, self.lr = name, u8, labels, identity, images, lr

    def __len__(self):
        return len(self.u8)

    def batch(self, idx, scale, flip=None):
        """(x0, y) float32 NCHW for the indices; flip: bool array, mirror both x0 and y."""
        idx = np.asarray(idx)
        x0 = crop.to_float(self.u8[idx])
        y = resample.upscale(self.lr[scale][idx], crop.OUT_SIZE, np.float32)
        if flip is not None:
            f = np.asarray(flip, bool)
            x0[f] = x0[f][..., ::-1]
            y[f] = y[f][..., ::-1]
        return np.ascontiguousarray(x0), np.ascontiguousarray(y)


def _read_labels(data_dir):
    path = os.path.join(data_dir, "labels.csv")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise OSError(f"read CelebA labels {path}: {e}") from e
    if not rows:
        raise ValueError(f"{path}: no rows")
    for col in ("image", "split", "celeba_identity") + tuple(c for c, _ in ATTR_COLUMNS):
        if col not in rows[0]:
            raise ValueError(f"{path}: missing column {col!r}")
    return rows


def _atomic_save_npy(path, arr):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, arr)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def build_split(split, data_dir=DEFAULT_DATA, cache_dir=DEFAULT_CACHE, log=print):
    """Crop every image of the split and write the cache files (atomically)."""
    rows = [r for r in _read_labels(data_dir) if r["split"].strip().lower() in CSV_SPLIT[split]]
    if not rows:
        raise ValueError(f"{data_dir}/labels.csv: no rows for split {split!r}")
    os.makedirs(cache_dir, exist_ok=True)
    u8 = np.zeros((len(rows), crop.OUT_SIZE, crop.OUT_SIZE, 3), np.uint8)
    for i, r in enumerate(rows):
        u8[i] = crop.crop_file(os.path.join(data_dir, "img_align_celeba", r["image"]))
    meta = {
        "version": CACHE_VERSION,
        "images": [r["image"] for r in rows],
        "identity": [int(r["celeba_identity"]) for r in rows],
        "attributes": [name for _, name in ATTR_COLUMNS],
        "labels": [[1 if int(r[c]) > 0 else 0 for c, _ in ATTR_COLUMNS] for r in rows],
        "crop": crop.metadata(),
        "geometry": crop.geometry(),
    }
    _atomic_save_npy(os.path.join(cache_dir, f"celeba128_{split}.npy"), u8)
    _atomic_save_json(os.path.join(cache_dir, f"celeba128_{split}.json"), meta)
    log(f"data: cached {len(rows)} {split} crops in {cache_dir}")
    return u8, meta


def _build_lr(u8, scale, path):
    x = crop.to_float(u8)
    lr = np.concatenate([resample.downscale(x[i:i + 256], lr_size(scale), np.float32) for i in range(0, len(x), 256)])
    _atomic_save_npy(path, lr.astype(np.float32))
    return lr


def _geometry_ok(meta):
    if "geometry" in meta:
        return meta["geometry"] == crop.geometry()
    # caches written before "geometry" was recorded carry the full crop metadata
    old = meta.get("crop", {})
    return old.get("box_ltrb_exclusive") == list(crop.BOX) and old.get("out_size") == crop.OUT_SIZE


def load_split(split, scales=(8, 16), data_dir=DEFAULT_DATA, cache_dir=DEFAULT_CACHE, log=print):
    """Load a split from the cache, building missing cache files from the images."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    up = os.path.join(cache_dir, f"celeba128_{split}.npy")
    mp = os.path.join(cache_dir, f"celeba128_{split}.json")
    meta = None
    if os.path.exists(up) and os.path.exists(mp):
        with open(mp) as f:
            meta = json.load(f)
        if meta.get("version") != CACHE_VERSION or not _geometry_ok(meta):
            log(f"data: cache {mp} is stale (version or crop changed), rebuilding")
            meta = None
    if meta is None:
        u8, meta = build_split(split, data_dir, cache_dir, log)
    else:
        u8 = np.load(up)
    lr = {}
    for s in scales:
        p = os.path.join(cache_dir, f"lr_x{s}_{split}.npy")
        if os.path.exists(p) and os.path.getmtime(p) >= os.path.getmtime(up):
            lr[s] = np.load(p)
        else:
            lr[s] = _build_lr(u8, s, p)
        if lr[s].shape != (len(u8), 3, lr_size(s), lr_size(s)):
            raise ValueError(f"{p}: shape {lr[s].shape} does not fit {len(u8)} images at scale {s}")
    return Split(split, u8, np.asarray(meta["labels"], np.int64), np.asarray(meta["identity"], np.int64),
                 meta["images"], lr)


def write_synthetic_cache(cache_dir, n_per_split=(8, 4, 4), seed=0, scales=(8, 16)):
    """A tiny synthetic cache (random smooth images, no CelebA pixels) for tests."""
    rng = np.random.default_rng(seed)
    os.makedirs(cache_dir, exist_ok=True)
    for split, n in zip(SPLITS, n_per_split):
        base = resample.synthetic_pattern(crop.OUT_SIZE)
        imgs = []
        for i in range(n):
            shift = rng.integers(0, 128, size=2)
            img = np.roll(base, tuple(shift), axis=(1, 2)) * rng.uniform(0.6, 1.0) + rng.uniform(0, 0.3)
            imgs.append(np.clip(np.moveaxis(img, 0, -1) * 255 + 0.5, 0, 255).astype(np.uint8))
        u8 = np.stack(imgs)
        meta = {"version": CACHE_VERSION, "images": [f"synthetic_{split}_{i}" for i in range(n)],
                "identity": [int(i % 3) for i in range(n)], "attributes": [a for _, a in ATTR_COLUMNS],
                "labels": rng.integers(0, 2, size=(n, 3)).tolist(), "crop": crop.metadata(), "geometry": crop.geometry()}
        _atomic_save_npy(os.path.join(cache_dir, f"celeba128_{split}.npy"), u8)
        _atomic_save_json(os.path.join(cache_dir, f"celeba128_{split}.json"), meta)
        for s in scales:
            _build_lr(u8, s, os.path.join(cache_dir, f"lr_x{s}_{split}.npy"))
