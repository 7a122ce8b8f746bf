"""Neuron statistics in one vectorised, streamed pass over an activation store.

NMD[l,i] = mean over pairs of (h_mem - h_gen); rho[l,i] = Pearson correlation of h[l,i] with
the label (MEM=1, GEN=0) over all 2N states. Rows are read in chunks of a few MiB and merged
with Chan's update of (count, mean, sum of squared deviations), so memory stays flat as N grows.
"""
import json
import math
import os
import struct

import torch

from .errors import UserError

CONDITIONS = ("mem", "gen")


class RunningMoments:
    """Count, mean and sum of squared deviations per neuron, in float64."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def update(self, rows):
        rows = rows.double()
        n_b, mean_b = rows.shape[0], rows.mean(0)
        m2_b = ((rows - mean_b) ** 2).sum(0)
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (self.n * n_b / n)
        self.n = n


def nmd_and_rho(mem, gen):
    """Moments of the MEM and GEN states -> (NMD, rho), both float32 with the states' shape."""
    n1, n0 = mem.n, gen.n
    n = n1 + n0
    diff = mem.mean - gen.mean
    # total sum of squares = within-group sums + between-group term
    ss_x = mem.m2 + gen.m2 + diff ** 2 * (n1 * n0 / n)
    ss_y = n1 * n0 / n
    rho = diff * ss_y / torch.sqrt(ss_x * ss_y)
    rho = torch.where(ss_x > 0, rho, torch.zeros_like(rho))  # a constant neuron carries no signal
    return diff.float(), rho.clamp(-1, 1).float()


DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}
CHUNK_BYTES = 2 << 20  # about 2 MiB a read: small temporaries, few page faults


def read_header(f, path):
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
        count = math.prod(entry["shape"]) * DTYPES[entry["dtype"]].itemsize
        if end - begin != count or 8 + n + end > size:
            raise ValueError(f"tensor {name!r} is cut short or inconsistent (truncated file?)")
    return header, 8 + n


def stream_rows(path, names, chunk_bytes=CHUNK_BYTES):
    """Yield (name, shape, rows) for the named tensors, a few rows at a time, with plain file reads
    into one reused buffer: no memory map, so the resident set stays flat however large the store."""
    with open(path, "rb") as f:
        header, data_start = read_header(f, path)
        for name in names:
            entry = header[name]
            shape, dtype = entry["shape"], DTYPES[entry["dtype"]]
            row_elems = math.prod(shape[1:])
            row_bytes = row_elems * dtype.itemsize
            chunk_rows = max(1, chunk_bytes // max(1, row_bytes))
            buffer = bytearray(chunk_rows * row_bytes)
            f.seek(data_start + entry["data_offsets"][0])
            if shape[0] == 0:
                yield name, shape, None
            for start in range(0, shape[0], chunk_rows):
                n = min(chunk_rows, shape[0] - start)
                f.readinto(memoryview(buffer)[: n * row_bytes])
                rows = torch.frombuffer(buffer, dtype=dtype, count=n * row_elems).view(n, *shape[1:])
                yield name, shape, rows


def store_moments(path, chunk_bytes=CHUNK_BYTES):
    """Stream the store at `path`: moments of its "mem" and "gen" tensors [N, layers, width], and their shape."""
    moments = {c: RunningMoments() for c in CONDITIONS}
    shape = None
    try:
        for name, shape, rows in stream_rows(path, CONDITIONS, chunk_bytes):
            if rows is not None:
                moments[name].update(rows)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the extract stage first)") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a readable activation store ({err})") from None
    return moments, shape


def neuron_stats(path, chunk_bytes=CHUNK_BYTES):
    """NMD and rho [layers, width] of the activation store at `path`, and the number of pairs.

    A store without pairs (no probe group showed both behaviours) gives zeros: no evidence.
    """
    moments, shape = store_moments(path, chunk_bytes)
    if moments["mem"].n == 0:
        return torch.zeros(shape[1:]), torch.zeros(shape[1:]), 0
    if moments["mem"].n != moments["gen"].n:
        raise UserError(f"{path}: 'mem' and 'gen' hold different numbers of rows; it is not a paired store")
    return (*nmd_and_rho(moments["mem"], moments["gen"]), moments["mem"].n)


def wilson_interval(k, n, z=1.959964):
    """The 95 % Wilson score interval of a proportion k/n; (None, None) when n = 0."""
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_and_spread(values):
    """Mean and sample standard deviation of the values that are not None (spread 0 for one)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return {"mean": mean, "std": math.sqrt(var), "n": len(values)}
