"""Neuron statistics in one vectorised, streamed pass over a site of an activation store, their
chance level, and the intervals and spreads the reports give.

NMD[l,i] = mean over pairs of (h_mem - h_gen); rho[l,i] = Pearson correlation of h[l,i] with
the label (MEM=1, GEN=0) over all 2N states. Rows are read in chunks of a few MiB and merged
with Chan's update of (count, mean, sum of squared deviations), so memory stays flat as N grows.

The chance level of the ranking: swap MEM and GEN within random pairs (a permutation that keeps
every pair one of each), recompute rho for every neuron, and keep the largest |rho|. With each
pair's swap a sign s_p, rho(s) = sum_p s_p d_p / (2 sqrt(SS N/2)), d_p = h_mem - h_gen and SS the
total sum of squares (which no swap changes): one [permutations, pairs] x [pairs, neurons] product.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import binomtest, fisher_exact, hypergeom, norm
from scipy.stats import t as student_t

from .activations import CHUNK_BYTES, stream_site
from .errors import UserError

NULL_QUANTILE = 0.95


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


class SecondMoments:
    """Per layer, the sum of x x^T over every state [layers, width, width] in float64, added in
    place one layer at a time, so memory is that one matrix whatever the number of rows (for the
    discriminant direction)."""

    def __init__(self):
        self.sum = None

    def update(self, rows):
        rows = rows.double()
        if self.sum is None:
            self.sum = torch.zeros(rows.shape[1], rows.shape[2], rows.shape[2], dtype=torch.float64)
        for layer in range(rows.shape[1]):
            x = rows[:, layer]
            self.sum[layer].addmm_(x.T, x)


def total_sum_of_squares(mem, gen):
    """Over all 2N states: the within-group sums plus the between-group term."""
    n1, n0 = mem.n, gen.n
    return mem.m2 + gen.m2 + (mem.mean - gen.mean) ** 2 * (n1 * n0 / (n1 + n0))


def nmd_and_rho(mem, gen):
    """Moments of the MEM and GEN states -> (NMD, rho), both float32 with the states' shape."""
    n1, n0 = mem.n, gen.n
    diff = mem.mean - gen.mean
    ss_x, ss_y = total_sum_of_squares(mem, gen), n1 * n0 / (n1 + n0)
    rho = diff * ss_y / torch.sqrt(ss_x * ss_y)
    rho = torch.where(ss_x > 0, rho, torch.zeros_like(rho))  # a constant neuron carries no signal
    return diff.float(), rho.clamp(-1, 1).float()


def discriminant_direction(mem, gen, second, shrinkage):
    """Per layer, NMD's component along the Fisher discriminant w = (S + lambda I)^-1 NMD, S the pooled
    within-class covariance and lambda = shrinkage x its mean variance: the direction a linear
    classifier reads MEM from GEN by, scaled so that alpha = 1 moves a state by the class means' distance along it.
    With one pair, NMD itself."""
    n = mem.n + gen.n
    if min(mem.n, gen.n) < 2:  # one state per class: no within-class covariance to read
        return (mem.mean - gen.mean).float()
    outer = lambda m: torch.einsum("lw,lv->lwv", m.mean, m.mean) * m.n  # noqa: E731
    cov = (second.sum - outer(mem) - outer(gen)) / n  # sum of x x^T around each class's own mean
    width = cov.shape[-1]
    ridge = (shrinkage * torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)).clamp_min(1e-12)  # [layers]
    cov = cov + ridge[:, None, None] * torch.eye(width, dtype=cov.dtype)
    diff = mem.mean - gen.mean
    # Cholesky: the matrix is symmetric positive definite (and a batched LU under a pinned MKL thread count
    # hangs in torch 2.13); a layer it fails on (no within-class variance) keeps NMD's direction
    factor, info = torch.linalg.cholesky_ex(cov)
    w = torch.where((info == 0)[:, None], torch.cholesky_solve(diff[..., None], factor)[..., 0], diff)
    along = (w * diff).sum(-1, keepdim=True) / (w * w).sum(-1, keepdim=True).clamp_min(1e-30)
    return (w * along).float()


def swap_signs(n_permutations, n_pairs, seed):
    """[permutations, pairs] of +-1: which pairs have MEM and GEN swapped in each permutation."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n_permutations, n_pairs), generator=g).double() * 2 - 1


@dataclass
class SiteStats:
    nmd: torch.Tensor          # [layers, width]
    rho: torch.Tensor          # [layers, width]
    n_pairs: int
    null_max: torch.Tensor     # [permutations]: the largest |rho| of all neurons in each permutation
    discriminant: torch.Tensor  # [layers, width]: discriminant_direction, or zeros

    @property
    def chance(self):
        """The null's 95th percentile of max |rho| and how many neurons lie above it (None without a null)."""
        if not len(self.null_max):
            return {"null_p95": None, "n_above": None, "n_permutations": 0}
        p95 = float(torch.quantile(self.null_max.double(), NULL_QUANTILE))
        return {"null_p95": p95, "n_above": int((self.rho.abs() > p95).sum()), "n_permutations": len(self.null_max)}


def site_stats(path, site, n_permutations=0, seed=0, shrinkage=0.1, chunk_bytes=CHUNK_BYTES):
    """NMD, rho, the permutation null and (shrinkage not None) the discriminant direction of one site of the
    activation store at `path`, in one pass. The discriminant holds [layers, width, width] second
    moments in float64: 8 bytes x layers x width^2.

    A store without pairs (no probe group showed both behaviours) gives zeros: no evidence.
    """
    moments = {"mem": RunningMoments(), "gen": RunningMoments()}
    second = SecondMoments() if shrinkage is not None else None
    signed, signs, shape = None, None, None
    for condition, shape, start, rows in stream_site(path, site, chunk_bytes):
        if rows is None:
            continue
        moments[condition].update(rows)
        if second:
            second.update(rows)
        if n_permutations:
            if signs is None:
                signs = swap_signs(n_permutations, shape[0], seed)
                signed = torch.zeros(n_permutations, math.prod(shape[1:]), dtype=torch.float64)
            part = signs[:, start:start + len(rows)] @ rows.reshape(len(rows), -1).double()
            signed += part if condition == "mem" else -part  # sum_p s_p (h_mem - h_gen)
    mem, gen = moments["mem"], moments["gen"]
    if mem.n == 0:
        return SiteStats(torch.zeros(shape[1:]), torch.zeros(shape[1:]), 0, torch.zeros(0), torch.zeros(shape[1:]))
    if mem.n != gen.n:
        raise UserError(f"{path}: site {site!r} holds {mem.n} MEM and {gen.n} GEN rows; it is not a paired store")
    nmd, rho = nmd_and_rho(mem, gen)
    null_max = torch.zeros(0)
    if n_permutations:
        scale = 2 * torch.sqrt(total_sum_of_squares(mem, gen).flatten() * mem.n / 2)
        null_rho = torch.where(scale > 0, signed / scale, torch.zeros_like(signed))
        null_max = null_rho.abs().amax(1).float()
    discriminant = discriminant_direction(mem, gen, second, shrinkage) if second else torch.zeros_like(nmd)
    return SiteStats(nmd, rho, mem.n, null_max, discriminant)


def wilson_interval(k, n):
    """The 95 % Wilson score interval of a proportion k/n; (None, None) when n = 0."""
    if n == 0:
        return None, None
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def exact_greater(k1, n1, k2, n2):
    """One-sided Fisher exact p-value that the success rate k1/n1 exceeds k2/n2 (None when either n is 0):
    exact at the probe counts a steer is measured on, where intervals overlap easily."""
    if n1 == 0 or n2 == 0:
        return None
    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="greater").pvalue)


def mean_and_spread(values):
    """Mean and sample standard deviation of the values that are not None (no spread for one: None)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return {"mean": mean, "std": std, "n": len(values)}


def t_interval(values, level=0.95, bounds=(-math.inf, math.inf)):
    """Mean of the values that are not None and its Student-t interval (a few independent draws: the planted
    models), clipped to the values' range `bounds` (a share: (0, 1)); lo/hi None for fewer than two."""
    values = [v for v in values if v is not None]
    spread = mean_and_spread(values)
    if spread["std"] is None:
        return {**spread, "lo": None, "hi": None}
    half = float(student_t.ppf((1 + level) / 2, len(values) - 1)) * spread["std"] / math.sqrt(len(values))
    return {**spread, "lo": max(bounds[0], spread["mean"] - half), "hi": min(bounds[1], spread["mean"] + half)}


def power_to_detect(p, difference, n, level=0.05):
    """The power of a two-sided two-proportion z test at `level` to tell a success rate p from one `difference`
    below it (above it where p < difference) with n prompts in each arm (normal approximation, pooled variance
    under the null); None without prompts. Arms decoded on the same prompts only gain from the pairing, so this
    is what the probe count guarantees at least."""
    if not n or p is None:
        return None
    q = p - difference if p >= difference else p + difference
    mean = (p + q) / 2
    under_null, under_alternative = math.sqrt(2 * mean * (1 - mean) / n), math.sqrt((p * (1 - p) + q * (1 - q)) / n)
    z = float(norm.ppf(1 - level / 2))
    return float(norm.cdf((difference - z * under_null) / under_alternative))


def group_tally(groups, hits):
    """[[hits, prompts]] per probe group, in order of first appearance: what a cluster bootstrap
    resamples (a group's near-identical prompts share their memory and are not independent)."""
    tally = {}
    for group, hit in zip(groups, hits):
        counts = tally.setdefault(group, [0, 0])
        counts[0] += int(hit)
        counts[1] += 1
    return list(tally.values())


BOOTSTRAP_RESAMPLES = 2000


def cluster_bootstrap(seeds, n_resamples=BOOTSTRAP_RESAMPLES, seed=0):
    """Across-seed estimate of a success rate from `seeds`: per seed, its [[hits, prompts]] per probe
    group. The estimate is the mean of the seeds' rates; its 95 % percentile interval comes from a
    two-stage bootstrap: draw as many seeds as there are, with replacement, then within each drawn seed
    its groups, with replacement (each draw its own). Seeds with no prompts are left out. Returns the
    per-seed values, mean, interval (None with no seed), the seeds' sample spread (None for one seed)."""
    tallies = [np.asarray(t, dtype=float).reshape(-1, 2) for t in seeds]
    tallies = [t for t in tallies if t[:, 1].sum() > 0]
    values = [float(t[:, 0].sum() / t[:, 1].sum()) for t in tallies]
    out = {"values": values, "n_seeds": len(values), "n_resamples": n_resamples,
           "mean": float(np.mean(values)) if values else None, "lo": None, "hi": None,
           "spread": float(np.std(values, ddof=1)) if len(values) > 1 else None}
    if not values:
        return out
    rng = np.random.default_rng(seed)
    n = len(tallies)
    # rates[s, b, j]: seed s with its groups resampled, for slot j of resample b
    rates = np.empty((n, n_resamples, n))
    for s, t in enumerate(tallies):
        idx = rng.integers(0, len(t), size=(n_resamples, n, len(t)))
        hits, prompts = t[idx, 0].sum(-1), t[idx, 1].sum(-1)
        rates[s] = np.divide(hits, prompts, out=np.zeros_like(hits), where=prompts > 0)
    picked = rng.integers(0, n, size=(n_resamples, n))
    means = rates[picked, np.arange(n_resamples)[:, None], np.arange(n)[None, :]].mean(1)
    out["lo"], out["hi"] = (float(q) for q in np.quantile(means, [0.025, 0.975]))
    return out


def ratio_bootstrap(num, den, n_resamples=BOOTSTRAP_RESAMPLES, seed=0):
    """A transfer ratio, success(num) / success(den), where num and den were measured on the same probes:
    their [[hits, prompts]] per probe group, in the same group order. Its 95 % percentile interval resamples
    the probe groups (paired: one draw serves both); a resample whose denominator hit nothing is left out.
    {ratio, lo, hi}: None where the denominator hit nothing."""
    num, den = np.asarray(num, dtype=float).reshape(-1, 2), np.asarray(den, dtype=float).reshape(-1, 2)
    if len(num) != len(den) or (num[:, 1] != den[:, 1]).any():
        raise ValueError("a transfer ratio needs both measurements on the same probe groups")
    out = {"ratio": None, "lo": None, "hi": None, "n_resamples": n_resamples}
    if not den[:, 0].sum():
        return out
    out["ratio"] = float(num[:, 0].sum() / den[:, 0].sum())
    idx = np.random.default_rng(seed).integers(0, len(num), size=(n_resamples, len(num)))
    top, bottom = num[idx, 0].sum(1), den[idx, 0].sum(1)
    ratios = top[bottom > 0] / bottom[bottom > 0]
    out["lo"], out["hi"] = (float(q) for q in np.quantile(ratios, [0.025, 0.975]))
    return out


def jaccard_chance(n_total, k, k2=None):
    """The expected Jaccard overlap of two sets of k and k2 (default k) units drawn at random from n_total: the
    shared count is hypergeometric, J = shared / (k + k2 - shared)."""
    k2 = k if k2 is None else k2
    if k == 0 or k2 == 0:
        return None
    shared = np.arange(min(k, k2) + 1)
    return float((hypergeom.pmf(shared, n_total, k, k2) * shared / (k + k2 - shared)).sum())
