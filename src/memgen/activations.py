"""The activation store: for every site, the state at the last prompt token of both prompts of
each MEM/GEN pair, [pair, layer, neuron] float32, in one safetensors file. Written by the extract
stage; read whole (the predict stage's classifiers) or streamed a few rows at a time (neuron statistics).
"""
import json
import math
import os
import struct

import torch

from .errors import UserError
from .io import read_tensor_metadata, read_tensors, write_tensors

PAIR_SIDES = ("mem", "gen")  # the label: MEM = 1, GEN = 0
STORE_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}
CHUNK_BYTES = 2 << 20  # about 2 MiB a read: small temporaries, few page faults


def tensor_name(site, condition):
    return f"{site}/{condition}"


def write_activations(path, states, metadata):
    """states: {site: {"mem": [pairs, layers, width], "gen": ...}}."""
    tensors = {tensor_name(site, c): by_condition[c] for site, by_condition in states.items() for c in PAIR_SIDES}
    write_tensors(path, tensors, metadata={**metadata, "sites": sorted(states),
                                           "layout": "[pair, layer, neuron]; label MEM=1 for 'mem', GEN=0 for 'gen'"})


def store_sites(path):
    """The sites a store holds, from its metadata."""
    sites = read_tensor_metadata(path).get("sites")
    if not isinstance(sites, list) or not sites:
        raise UserError(f"{path}: not an activation store with sites (re-run the extract stage)")
    return sites


def read_site(path, site):
    """(mem, gen) states of one site, whole."""
    tensors = read_tensors(path)
    names = [tensor_name(site, c) for c in PAIR_SIDES]
    if any(n not in tensors for n in names):
        raise UserError(f"{path}: holds no site {site!r} (re-run the extract stage)")
    return tuple(tensors[n] for n in names)


def read_header(f):
    """The safetensors header of the open file f, and where its data starts; checked against the file size."""
    size = os.fstat(f.fileno()).st_size
    raw = f.read(8)
    if len(raw) < 8:
        raise ValueError("shorter than a safetensors header")
    n = struct.unpack("<Q", raw)[0]
    if n > size - 8:
        raise ValueError("header runs past the end of the file")
    header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        count = math.prod(entry["shape"]) * STORE_DTYPES[entry["dtype"]].itemsize
        if end - begin != count or 8 + n + end > size:
            raise ValueError(f"tensor {name!r} is cut short or inconsistent (truncated file?)")
    return header, 8 + n


def _stream_rows(path, names, chunk_bytes):
    """Yield (name, shape, first row index, rows) for the named tensors, a few rows at a time, with
    plain file reads into one reused buffer: no memory map, so the resident set stays flat however
    large the store. A tensor with no rows yields once with rows None."""
    with open(path, "rb") as f:
        header, data_start = read_header(f)
        for name in names:
            entry = header[name]
            shape, dtype = entry["shape"], STORE_DTYPES[entry["dtype"]]
            row_elems = math.prod(shape[1:])
            row_bytes = row_elems * dtype.itemsize
            chunk_rows = max(1, chunk_bytes // max(1, row_bytes))
            buffer = bytearray(chunk_rows * row_bytes)
            f.seek(data_start + entry["data_offsets"][0])
            if shape[0] == 0:
                yield name, shape, 0, None
            for start in range(0, shape[0], chunk_rows):
                n = min(chunk_rows, shape[0] - start)
                f.readinto(memoryview(buffer)[: n * row_bytes])
                rows = torch.frombuffer(buffer, dtype=dtype, count=n * row_elems).view(n, *shape[1:])
                yield name, shape, start, rows


def stream_site(path, site, chunk_bytes=CHUNK_BYTES):
    """Yield (condition, shape, first row index, rows) over one site's two tensors; a missing,
    truncated or corrupted store is one line naming it."""
    names = {tensor_name(site, c): c for c in PAIR_SIDES}
    try:
        for name, shape, start, rows in _stream_rows(path, list(names), chunk_bytes):
            yield names[name], shape, start, rows
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the extract stage first)") from None
    except KeyError as err:
        raise UserError(f"{path}: not a readable activation store (no tensor {err}; re-run the extract stage)") from None
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"{path}: not a readable activation store ({err})") from None
