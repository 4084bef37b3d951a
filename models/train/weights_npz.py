"""Carry trained EMA weights between machines as plain .npz (no pickle, any torch version).

    python3 -m models.train.weights_npz pack RUN_DIR PREFIX    # RUN_DIR/best.pt -> PREFIX_best.npz,
                                                               # RUN_DIR/checkpoint.pt EMA -> PREFIX_last.npz
    python3 -m models.train.weights_npz unpack FILE.npz OUT.pt # -> a best.pt that `models export` reads

A GPU box may run another PyTorch than the Debian 1.13 of the toolchain; a .npz of float32
arrays plus a JSON header (step, model_config, train settings, validation) reads the same
everywhere and is much smaller than a full checkpoint (no optimizer state).
"""
import json
import os
import sys

import numpy as np
import torch

META = "__meta__"


def _load_pt(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)  # our own file
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")


def save_npz(ck, path, **extra):
    """ck: a dict with 'ema' (state dict), 'step', 'model_config', 'train' and optionally 'val'."""
    meta = {k: ck[k] for k in ("step", "model_config", "train", "val", "sigma_min", "sigma_max") if k in ck}
    meta.update(extra)
    arrays = {f"ema/{k}": v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
              for k, v in ck["ema"].items()}
    arrays[META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_npz(path):
    """-> checkpoint dict (ema state dict of tensors + the header's keys)."""
    with np.load(path) as z:
        if META not in z.files:
            raise ValueError(f"{path}: no {META} entry: not made by models.train.weights_npz")
        ck = json.loads(bytes(z[META]).decode())
        ck["ema"] = {k[len("ema/"):]: torch.from_numpy(np.array(z[k])) for k in z.files if k.startswith("ema/")}
    return ck


def pack(run_dir, prefix):
    written = []
    best = os.path.join(run_dir, "best.pt")
    if os.path.exists(best):
        save_npz(_load_pt(best), prefix + "_best.npz", source="best.pt")
        written.append(prefix + "_best.npz")
    last = os.path.join(run_dir, "checkpoint.pt")
    if os.path.exists(last):
        ck = _load_pt(last)
        save_npz(ck, prefix + "_last.npz", source="checkpoint.pt", best_val=ck.get("best_val"))
        written.append(prefix + "_last.npz")
    return written


def unpack(npz, out_pt):
    ck = load_npz(npz)
    os.makedirs(os.path.dirname(os.path.abspath(out_pt)), exist_ok=True)
    torch.save(ck, out_pt)
    return ck


def main(argv):
    if len(argv) == 3 and argv[0] == "pack":
        for p in pack(argv[1], argv[2]):
            print(p)
        return 0
    if len(argv) == 3 and argv[0] == "unpack":
        ck = unpack(argv[1], argv[2])
        print(f"{argv[2]}: step {ck.get('step')}, {len(ck['ema'])} tensors")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
