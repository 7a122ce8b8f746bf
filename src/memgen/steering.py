"""Interventions: which neurons move (selection), by how much per unit of alpha (targeted, or one
of the controls), and when during decoding (the schedule); and the adaptive strength.

An intervention is a set of flat neuron indices into [layers, width] with a shift per unit of
alpha; `at(alpha)` gives the per-layer shifts the hooks add.
"""
from dataclasses import dataclass

import torch

TO_GEN, TO_MEM = "m2g", "g2m"
DIRECTIONS = (TO_GEN, TO_MEM)
DIRECTION_SIGN = {TO_GEN: -1.0, TO_MEM: 1.0}  # towards MEM: h += alpha*NMD; towards GEN: h -= alpha*NMD

# When the shift is applied, by decoding step (0: the forward call over the prompt, whose last
# position is the prompt end; k: the call that reads the k-th generated token).
SCHEDULES = {
    "every_step": lambda step: True,             # the paper: the prompt end and every generated token
    "prompt_end": lambda step: step == 0,        # the last prompt position only
    "prompt_end_and_first": lambda step: step <= 1,  # the prompt end and the first answer token
}
VECTORS = ("nmd", "discriminant")  # what neurons move along: NMD (the paper) or a linear classifier's direction
ADAPTIVE = "adaptive"  # per prompt: the smallest alpha of a ladder at which its output changes
TARGETED = "targeted"
CONTROLS = ("random", "random_magnitude", "bottom_ranked", "random_sign")
ARMS = (TARGETED, *CONTROLS)  # what is measured at one operating point: the targeted steer and its controls
CONTROL_NAMES = {  # as the report's tables name them; `controls` says what each one is
    "random": "random (authors')",
    "random_magnitude": "random neurons, same sizes",
    "bottom_ranked": "bottom-ranked neurons",
    "random_sign": "top neurons, random signs",
}
ARM_LABELS = {TARGETED: "targeted", "random": "random", "random_magnitude": "rand |shift|",  # as figures label them
              "bottom_ranked": "bottom", "random_sign": "rand sign"}


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


@dataclass
class Intervention:
    idx: torch.Tensor          # flat indices into [layers, width]
    per_alpha: torch.Tensor    # the shift of each at alpha = 1
    width: int
    scales: bool = True        # False: fixed values whatever alpha (the authors' random baseline)
    pull: bool = False         # True: per_alpha holds targets, alpha the share of the way each neuron moves to its own

    def at(self, alpha):
        """{layer: (neuron indices, values)} at strength alpha (pulled: the targets themselves)."""
        values = self.per_alpha * alpha if self.scales and not self.pull else self.per_alpha
        layers = self.idx // self.width
        return {int(l): (self.idx[layers == l] % self.width, values[layers == l]) for l in torch.unique(layers)}

    def only_layer(self, layer):
        """The part of this intervention in one layer (the per-layer ablation)."""
        keep = self.idx // self.width == layer
        return Intervention(self.idx[keep], self.per_alpha[keep], self.width, self.scales, self.pull)


def targeted(nmd, selected, direction):
    """The selected neurons, each shifted by alpha*NMD towards the direction's target."""
    return Intervention(selected, DIRECTION_SIGN[direction] * nmd.flatten()[selected], nmd.shape[1])


def controls(nmd, rho, selected, direction, generator):
    """The controls beside a targeted steer, each over len(selected) neurons. `nmd` is the vector
    neurons move along and `rho` what they are ranked by (for the discriminant: the vector itself).
    random: the authors' baseline: random neurons, each shifted by U(-m, m), m the largest |NMD|
        of the selected set (not scaled by alpha);
    random_magnitude: random neurons outside the top set, shifted by the top set's alpha*|NMD|
        magnitudes with random signs;
    bottom_ranked: the lowest-ranked neurons, shifted by their own alpha*NMD in the direction's sign;
    random_sign: the top set itself, its alpha*|NMD| magnitudes with random signs."""
    count, width = len(selected), nmd.shape[1]
    magnitudes = nmd.flatten()[selected].abs()
    max_abs = float(magnitudes.max())
    authors = torch.randperm(nmd.numel(), generator=generator)[:count]
    authors_values = max_abs * (2 * torch.rand(count, generator=generator) - 1)
    others = random_others(nmd.numel(), selected, count, generator)
    return {
        "random": Intervention(authors, authors_values, width, scales=False),
        "random_magnitude": Intervention(others, magnitudes[:len(others)] * random_signs(len(others), generator), width),
        "bottom_ranked": targeted(nmd, select_bottom(rho, count), direction),
        "random_sign": Intervention(selected, magnitudes * random_signs(count, generator), width),
    }


def adaptive(decode_at, unsteered, ladder):
    """Each prompt's output at the smallest alpha of `ladder` at which it differs from its unsteered
    output, and that alpha (None where no alpha changed it; its output stays the unsteered one).

    A closed loop on the model's own outputs: decode_at(alpha, indices) decodes the prompts not yet
    moved, and nothing here reads the probes' answers.
    """
    outputs, flipped_at = list(unsteered), [None] * len(unsteered)
    remaining = list(range(len(unsteered)))
    for alpha in ladder:
        if not remaining:
            break
        still = []
        for i, out in zip(remaining, decode_at(alpha, remaining)):
            if out != unsteered[i]:
                outputs[i], flipped_at[i] = out, alpha
            else:
                still.append(i)
        remaining = still
    return outputs, flipped_at
