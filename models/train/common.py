"""Shared training plumbing: atomic files, JSONL logs, threads, devices, signals."""
import json
import os
import signal
import sys  # noqa: F401
import time

import torch


# The dispatcher (models/__main__.py) catches this class and prints it without a traceback.
from models.__main__ import UserError  # noqa: E402


def atomic_torch_save(obj, path):
    """torch.save to path via tmp + fsync + rename: a crash leaves the old file or the new one."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def atomic_write_text(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class JsonlLog:
    """Append-only JSONL log, flushed per line. truncate_after(step) drops lines written after
    the checkpoint a run resumes from (and a torn last line from a crash)."""

    def __init__(self, path):
        self.path = path

    def truncate_after(self, step):
        if not os.path.exists(self.path):
            return
        keep = []
        with open(self.path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # torn line from a kill mid-write
                if rec.get("step", 0) <= step:
                    keep.append(json.dumps(rec, separators=(",", ":")) + "\n")
        atomic_write_text(self.path, "".join(keep))

    def write(self, event, **fields):
        rec = {"event": event, "time": round(time.time(), 3)}
        rec.update(fields)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            f.flush()
        return rec


def set_threads(n):
    torch.set_num_threads(max(1, int(n)))
    # setting it a second time aborts the process (a C++ error, not an exception)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # parallel work already started in this process


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class StopFlag:
    """SIGTERM/SIGINT set a flag; the training loop checkpoints and exits at the next step."""

    def __init__(self):
        self.stop = False
        self.signum = None
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.stop = True
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def rng_state(device):
    st = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def set_rng_state(st, device):
    torch.set_rng_state(st["torch"])
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def amp_dtype(name, device):
    """Autocast dtype for --amp: auto = bfloat16 where the hardware does it natively, else None."""
    if name == "off":
        return None
    if name == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def load_checkpoint(path, what, map_location="cpu"):
    """Load a training checkpoint: a .pt file, or a run directory (its best.pt, else
    checkpoint.pt). Returns (checkpoint dict, file path); errors are UserError."""
    if os.path.isdir(path):
        for name in ("best.pt", "checkpoint.pt"):
            if os.path.exists(os.path.join(path, name)):
                path = os.path.join(path, name)
                break
        else:
            raise UserError(f"{path}: no best.pt or checkpoint.pt")
    try:
        return torch.load(path, map_location=map_location), path
    except (OSError, RuntimeError) as e:
        raise UserError(f"load {what} checkpoint {path}: {e}") from e
