"""Neuron statistics in one vectorised, streamed pass over an activation store.

NMD[l,i] = mean over pairs of (h_mem - h_gen); rho[l,i] = Pearson correlation of h[l,i] with
the label (MEM=1, GEN=0) over all 2N states. Rows are read in chunks and merged with Chan's
update of (count, mean, sum of squared deviations), so memory stays flat as N grows.
"""
import torch
from safetensors import SafetensorError, safe_open

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


def store_moments(path, chunk_rows=256):
    """Stream the store at `path`: moments of its "mem" and "gen" tensors [N, layers, width], and their shape."""
    moments = {c: RunningMoments() for c in CONDITIONS}
    try:
        with safe_open(str(path), framework="pt") as f:
            for cond in CONDITIONS:
                sliced = f.get_slice(cond)
                shape = sliced.get_shape()
                n_rows = shape[0]
                for start in range(0, n_rows, chunk_rows):
                    moments[cond].update(sliced[start:start + chunk_rows])
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the extract stage first)") from None
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise UserError(f"{path}: not a readable activation store ({err})") from None
    return moments, shape


def neuron_stats(path, chunk_rows=256):
    """NMD and rho [layers, width] of the activation store at `path`, and the number of pairs.

    A store without pairs (no probe group showed both behaviours) gives zeros: no evidence.
    """
    moments, shape = store_moments(path, chunk_rows)
    if moments["mem"].n == 0:
        return torch.zeros(shape[1:]), torch.zeros(shape[1:]), 0
    if moments["mem"].n != moments["gen"].n:
        raise UserError(f"{path}: 'mem' and 'gen' hold different numbers of rows; it is not a paired store")
    return (*nmd_and_rho(moments["mem"], moments["gen"]), moments["mem"].n)
