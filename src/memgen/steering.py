"""Interventions: which neurons move (selection), by how much per unit of alpha, and when during
decoding (the schedule); and the adaptive strength. The controls matched to them: memgen.experiment.

An intervention is a set of flat neuron indices into [layers, width] with a shift per unit of
alpha; `at(alpha)` gives the per-layer shifts the hooks add.
"""
from dataclasses import dataclass

import torch

from .names import (ADAPTIVE, DIRECTIONS, SCHEDULE_NAMES, TO_GEN, TO_MEM, UNIT_SITE,  # noqa: F401 (names used from here)
                    VECTORS)

DIRECTION_SIGN = {TO_GEN: -1.0, TO_MEM: 1.0}  # towards MEM: h += alpha*NMD; towards GEN: h -= alpha*NMD

# When the shift is applied, by decoding step (0: the forward call over the prompt, whose last
# position is the prompt end; k: the call that reads the k-th generated token).
SCHEDULES = dict(zip(SCHEDULE_NAMES, (
    lambda step: True,        # every_step: the paper: the prompt end and every generated token
    lambda step: step == 0,   # prompt_end: the last prompt position only
    lambda step: step <= 1,   # prompt_end_and_first: the prompt end and the first answer token
)))
TARGETED = "targeted"


def n_selected(shape, top_n):
    """topN as a count: a fraction of all layers x width neurons, at least one."""
    total = shape[0] * shape[1]
    return max(1, min(total, round(top_n * total)))


def select_top(rho, top_n, layers=None):
    """Flat indices of the top-N neurons by |rho|, globally across layers (stable on ties). layers: the
    layers they may come from (None: all); topN stays a fraction of every layer's neurons, so a scope that
    leaves layers out moves as many neurons as one that does not."""
    order = torch.argsort(rho.abs().flatten(), descending=True, stable=True)
    if layers is not None:
        order = order[torch.isin(order // rho.shape[1], torch.as_tensor(list(layers)))]
    return order[: n_selected(rho.shape, top_n)]


# Where an intervention may act. "all": every layer; "before_readout": not at the last block's output nor
# inside it (its output goes straight to the final norm and the unembedding, in both built-in families);
# "mlp_hidden": the same point at the MLP's hidden units (the paper's word "neuron" taken literally), every layer.
SCOPES = ("all", "before_readout", UNIT_SITE)
SCOPE_SITE = {UNIT_SITE: UNIT_SITE}  # scopes that move the point to a site of their own


def scoped_setting(setting, scope):
    """The name a setting's measurement goes by within a scope: its own for "all", else `<setting>_<scope>`."""
    return setting if scope == "all" else f"{setting}_{scope}"


def scope_layers(scope, n_layers):
    """The layers a scope lets an intervention touch (None: all)."""
    return range(n_layers - 1) if scope == "before_readout" else None


def random_signs(count, generator):
    return torch.randint(0, 2, (count,), generator=generator).float() * 2 - 1


@dataclass
class Intervention:
    idx: torch.Tensor          # flat indices into [layers, width]
    per_alpha: torch.Tensor    # the shift of each at alpha = 1
    width: int
    to_target: bool = False    # True: per_alpha holds targets, alpha the share of the way each neuron moves to its own

    def at(self, alpha):
        """{layer: (neuron indices, values)} at strength alpha (to_target: the targets themselves)."""
        values = self.per_alpha if self.to_target else self.per_alpha * alpha
        layers = self.idx // self.width
        return {int(l): (self.idx[layers == l] % self.width, values[layers == l]) for l in torch.unique(layers)}

    def only_layer(self, layer):
        """The part of this intervention in one layer (the per-layer ablation)."""
        keep = self.idx // self.width == layer
        return Intervention(self.idx[keep], self.per_alpha[keep], self.width, self.to_target)


def targeted(nmd, selected, direction):
    """The selected neurons, each shifted by alpha*NMD towards the direction's target."""
    return Intervention(selected, DIRECTION_SIGN[direction] * nmd.flatten()[selected], nmd.shape[1])


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
