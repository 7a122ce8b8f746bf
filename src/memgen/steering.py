"""Neuron selection and the shifts that steer them: targeted, and the random baseline."""
import torch

TO_GEN, TO_MEM = "m2g", "g2m"
DIRECTION_SIGN = {TO_GEN: -1.0, TO_MEM: 1.0}  # towards MEM: h += alpha*NMD; towards GEN: h -= alpha*NMD


def n_selected(shape, top_n):
    """topN as a count: a fraction of all layers x width neurons, at least one."""
    total = shape[0] * shape[1]
    return max(1, min(total, round(top_n * total)))


def select_top(rho, top_n):
    """Flat indices of the top-N neurons by |rho|, globally across layers (stable on ties)."""
    order = torch.argsort(rho.abs().flatten(), descending=True, stable=True)
    return order[: n_selected(rho.shape, top_n)]


def per_layer(flat_idx, values, width):
    """{layer: (neuron indices, values)} from flat indices into [layers, width]."""
    layers = flat_idx // width
    return {int(l): (flat_idx[layers == l] % width, values[layers == l]) for l in torch.unique(layers)}


def targeted_shifts(nmd, flat_idx, alpha, direction):
    values = DIRECTION_SIGN[direction] * alpha * nmd.flatten()[flat_idx]
    return per_layer(flat_idx, values, nmd.shape[1])


def random_shifts(shape, count, max_abs, generator):
    """The authors' baseline: `count` random neurons, each shifted by U(-max_abs, max_abs),
    max_abs being the largest |NMD| among the selected neurons (not scaled by alpha)."""
    flat_idx = torch.randperm(shape[0] * shape[1], generator=generator)[:count]
    values = max_abs * (2 * torch.rand(count, generator=generator) - 1)
    return per_layer(flat_idx, values, shape[1])
