"""Neuron selection and the shifts that steer them: targeted, the authors' random baseline,
and the stronger controls (each with as many neurons as the targeted set)."""
import torch

TO_GEN, TO_MEM = "m2g", "g2m"
DIRECTIONS = (TO_GEN, TO_MEM)
DIRECTION_SIGN = {TO_GEN: -1.0, TO_MEM: 1.0}  # towards MEM: h += alpha*NMD; towards GEN: h -= alpha*NMD


def n_selected(shape, top_n):
    """topN as a count: a fraction of all layers x width neurons, at least one."""
    total = shape[0] * shape[1]
    return max(1, min(total, round(top_n * total)))


def select_top(rho, top_n):
    """Flat indices of the top-N neurons by |rho|, globally across layers (stable on ties)."""
    order = torch.argsort(rho.abs().flatten(), descending=True, stable=True)
    return order[: n_selected(rho.shape, top_n)]


def select_bottom(rho, count):
    """Flat indices of the `count` neurons with the lowest |rho| (stable on ties)."""
    return torch.argsort(rho.abs().flatten(), stable=True)[:count]


def random_others(n_total, exclude, count, generator):
    """`count` random flat indices outside `exclude`."""
    outside = torch.ones(n_total, dtype=torch.bool)
    outside[exclude] = False
    candidates = outside.nonzero().flatten()
    return candidates[torch.randperm(len(candidates), generator=generator)[:count]]


def random_signs(count, generator):
    return torch.randint(0, 2, (count,), generator=generator).float() * 2 - 1


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


def control_shifts(nmd, rho, selected, alpha, direction, generator):
    """The controls beside a targeted steer, each over len(selected) neurons:
    random: the authors' baseline (above);
    random_magnitude: random neurons outside the top set, shifted by the top set's alpha*|NMD|
        magnitudes with random signs;
    bottom_rho: the lowest-|rho| neurons, shifted by their own alpha*NMD in the direction's sign;
    random_sign: the top set itself, its alpha*|NMD| magnitudes with random signs."""
    count, width = len(selected), nmd.shape[1]
    magnitudes = alpha * nmd.flatten()[selected].abs()
    others = random_others(nmd.numel(), selected, count, generator)
    return {
        "random": random_shifts(nmd.shape, count, float(nmd.flatten()[selected].abs().max()), generator),
        "random_magnitude": per_layer(others, magnitudes[:len(others)] * random_signs(len(others), generator), width),
        "bottom_rho": targeted_shifts(nmd, select_bottom(rho, count), alpha, direction),
        "random_sign": per_layer(selected, magnitudes * random_signs(count, generator), width),
    }


def layer_shifts(shifts, layer):
    """Only one layer's part of a set of shifts (the per-layer ablation)."""
    return {layer: shifts[layer]} if layer in shifts else {}


def flat_indices(shifts, width):
    """The set of flat neuron indices a set of shifts touches."""
    return {int(layer * width + i) for layer, (idx, _) in shifts.items() for i in idx}
