"""The metadata contract between the model toolchain and the Go daemon.

Every ONNX file the daemon loads carries these keys in metadata_props. The Go side
(srdg, detect, match) reads them to configure itself and refuses a model whose
metadata does not fit the slot it is loaded into. models/README.md documents them.
"""
import json

CONTRACT_VERSION = "1"

# kinds (value of srdgd.kind) -> the slot in the daemon that loads it
KINDS = ("score", "guidance", "lr_attrs", "face_detector", "face_embedder", "face_landmarks", "sr_adapter")

# default attribute order for guidance and LR attribute models (label 1 meanings)
ATTRIBUTES = ("male", "glasses", "no_beard")
ATTRIBUTE_LABELS = {
    "male": {"0": "female", "1": "male"},
    "glasses": {"0": "no eyeglasses", "1": "eyeglasses"},
    "no_beard": {"0": "beard", "1": "no beard"},
}

REQUIRED = {
    "score": ("srdgd.scale", "srdgd.sigma_min", "srdgd.sigma_max", "srdgd.hr_size", "srdgd.lr_size", "srdgd.crop"),
    "guidance": ("srdgd.attributes", "srdgd.attribute_labels", "srdgd.sigma_min", "srdgd.sigma_max", "srdgd.hr_size", "srdgd.crop"),
    "lr_attrs": ("srdgd.attributes", "srdgd.attribute_labels", "srdgd.scale", "srdgd.lr_size", "srdgd.crop"),
    "face_detector": (),
    "face_embedder": (),
    "face_landmarks": (),
    "sr_adapter": ("srdgd.scale", "srdgd.embedder_model", "srdgd.dim"),
}
COMMON = ("srdgd.kind", "srdgd.contract", "srdgd.name", "srdgd.input_range", "srdgd.provenance",
          "srdgd.weights_source", "srdgd.license", "srdgd.data_terms")


def set_metadata(model, kind, **props):
    """Write srdgd.* metadata into an onnx.ModelProto (in place), checking the contract.

    props keys are given without the "srdgd." prefix; dict/list values are JSON-encoded.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    meta = {"srdgd.kind": kind, "srdgd.contract": CONTRACT_VERSION}
    for k, v in props.items():
        if isinstance(v, (dict, list, tuple)):
            v = json.dumps(v, separators=(",", ":"), sort_keys=isinstance(v, dict))
        meta["srdgd." + k] = str(v)
    missing = [k for k in COMMON + REQUIRED[kind] if k not in meta]
    if missing:
        raise ValueError(f"{kind} model metadata is missing {', '.join(missing)}")
    del model.metadata_props[:]
    for k in sorted(meta):
        p = model.metadata_props.add()
        p.key, p.value = k, meta[k]
    return model


def get_metadata(model):
    return {p.key: p.value for p in model.metadata_props}
