"""Minimal safetensors reader/writer and token-shard writer (SPEC §5), numpy only.

safetensors: 8-byte little-endian header length N, N bytes of JSON
  {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}
(header padded with spaces to a multiple of 8), then the raw little-endian data; offsets are
relative to the start of the data section.

Token shard: 256 little-endian int32 header words ([0] = 20240520, [1] = 1,
[2] = num_tokens), then num_tokens little-endian uint16.
"""
import json
import os
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
}
_NAMES = {v: k for k, v in _DTYPES.items()}

SHARD_MAGIC = 20240520
SHARD_VERSION = 1


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, numpy array) or dict name -> array (written in that order)."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header = {}
    chunks = []
    offset = 0
    for name, arr in items:
        arr = np.asarray(arr)
        key = _NAMES.get(np.dtype(arr.dtype).newbyteorder("<") if arr.dtype.itemsize > 1
                         else arr.dtype)
        if key is None:
            raise ValueError(f"unsupported dtype {arr.dtype} for tensor {name}")
        raw = np.ascontiguousarray(arr, dtype=_DTYPES[key]).tobytes()
        header[name] = {"dtype": key, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def _bf16_to_f32(raw):
    u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return u.view(np.float32)


def read_safetensors(path):
    """Returns (dict name -> numpy array in file dtype (BF16 -> float32), metadata dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dtype = info["dtype"]
        shape = tuple(int(s) for s in info["shape"])
        b, e = (int(o) for o in info["data_offsets"])
        if not (0 <= b <= e <= len(data)):
            raise ValueError(f"{path}: tensor {name} data_offsets {b},{e} outside the data")
        raw = data[b:e]
        count = int(np.prod(shape)) if shape else 1
        if dtype == "BF16":
            if len(raw) != 2 * count:
                raise ValueError(f"{path}: tensor {name} has {len(raw)} bytes for shape {shape}")
            arr = _bf16_to_f32(raw).reshape(shape)
        elif dtype in _DTYPES:
            dt = _DTYPES[dtype]
            if len(raw) != dt.itemsize * count:
                raise ValueError(f"{path}: tensor {name} has {len(raw)} bytes for {dtype} "
                                 f"shape {list(shape)}")
            arr = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        out[name] = arr
    return out, metadata


def write_shard(path, tokens):
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or (tokens.size and (tokens.min() < 0 or tokens.max() > 65535)):
        raise ValueError("shard tokens must be a 1-D array of values in [0, 65535]")
    header = np.zeros(256, dtype="<i4")
    header[0] = SHARD_MAGIC
    header[1] = SHARD_VERSION
    header[2] = tokens.size
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2").tobytes())
    os.replace(tmp, path)


def read_shard(path):
    with open(path, "rb") as f:
        blob = f.read()
    header = np.frombuffer(blob[:1024], dtype="<i4")
    if header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        raise ValueError(f"{path}: bad shard header")
    n = int(header[2])
    if len(blob) != 1024 + 2 * n:
        raise ValueError(f"{path}: size {len(blob)} != 1024 + 2*{n}")
    return np.frombuffer(blob[1024:], dtype="<u2").copy()
