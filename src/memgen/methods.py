"""Steering methods side by side: the paper's per-neuron NMD shift beside the methods a researcher
would try instead, each a family of interventions at one site that the methods stage chooses one
member of on val probes (steer.max_other's rule), then measures once on held-out test probes.

nmd: the top-N neurons by |rho| over every layer, each shifted by alpha x NMD (the paper's method);
mean_difference: every neuron of one layer shifted by alpha x NMD, the dense difference of the two
    behaviours' mean states (contrastive activation addition);
probe: every neuron of one layer shifted by alpha x the discriminant direction, the direction a linear
    probe reads MEM from GEN by (inference-time intervention), scaled so that alpha = 1 moves a state
    by the class means' distance along it;
patch: every neuron of one layer pulled a share alpha of the way to the target behaviour's mean state
    (patching to the mean), at the prompt end only: the means are prompt-end states.
The control beside them: a random direction at the mean difference's chosen layer, with its norm.
"""
from dataclasses import asdict, dataclass

import torch

from .errors import UserError
from .params import is_number
from .steering import DIRECTION_SIGN, SCHEDULES, TO_GEN, Intervention, select_top, targeted

METHODS = ("nmd", "mean_difference", "probe", "patch")
PAPER, RANDOM = "paper", "random_direction"  # measured beside the methods on test: the paper's setting, the control
ARMS = (PAPER, *METHODS, RANDOM)
NAMES = {PAPER: "the paper's setting (not chosen)", "nmd": "NMD shift, top-N neurons (the paper's method)",
         "mean_difference": "mean difference, one layer (CAA)", "probe": "probe direction, one layer (ITI)",
         "patch": "patch to the target's mean, one layer", RANDOM: "random direction (control)"}
LABELS = {PAPER: "paper's setting", "nmd": "NMD top-N", "mean_difference": "mean diff.", "probe": "probe dir.",
          "patch": "patch to mean", RANDOM: "random dir."}  # as the figure labels them
PATCH_SCHEDULE = "prompt_end"


@dataclass(frozen=True)
class Candidate:
    method: str
    schedule: str
    layer: object   # the one layer of a dense method; None for nmd (every layer)
    topN: object    # nmd: the share of all neurons moved; None for the dense methods
    alpha: float    # strength; patch: the share of the way to the mean

    def as_dict(self):
        return asdict(self)

    def label(self):
        where = f"topN {self.topN:g}" if self.layer is None else f"layer {self.layer}"
        strength = "share" if self.method == "patch" else "alpha"
        return f"{self.schedule}, {where}, {strength} {self.alpha:g}"


def read_methods(section, n_layers, family_sites):
    """The methods section, checked: {site, schedules, alphas, shares, layers}."""
    site = section.str("site", choices=tuple(family_sites))
    schedules = section.one_or_list("schedule")
    for s in schedules:
        if s not in SCHEDULES:
            raise UserError(f"params: '{section.prefix}.schedule' holds {s!r}, not among {', '.join(SCHEDULES)}")
    alphas, shares = section.numbers("alpha"), section.numbers("share")
    if any(a <= 0 for a in alphas) or any(not 0 < s <= 1 for s in shares):
        raise UserError(f"params: '{section.prefix}.alpha' must hold numbers > 0 and '.share' shares in (0, 1]")
    layers = list(range(n_layers)) if section.raw("layers") is None else section.list("layers", unique=True)
    if any(not (is_number(l) and l == int(l) and 0 <= l < n_layers) for l in layers):
        raise UserError(f"params: '{section.prefix}.layers' must hold layers 0..{n_layers - 1} (or be null), got {layers}")
    return {"site": site, "schedules": schedules, "alphas": [float(a) for a in alphas],
            "shares": [float(s) for s in shares], "layers": [int(l) for l in layers]}


def candidates(method, settings, top_ns):
    """Every member of one method's family, in the order ties fall back to."""
    s = settings
    if method == "nmd":
        return [Candidate(method, sch, None, t, a) for sch in s["schedules"] for t in top_ns for a in s["alphas"]]
    if method == "patch":
        return [Candidate(method, PATCH_SCHEDULE, l, None, a) for l in s["layers"] for a in s["shares"]]
    return [Candidate(method, sch, l, None, a) for sch in s["schedules"] for l in s["layers"] for a in s["alphas"]]


def whole_layer(values, layer, pull=False):
    """Every neuron of one layer, with per-neuron values ([width])."""
    width = len(values)
    return Intervention(layer * width + torch.arange(width), values.clone(), width, pull=pull)


def build(candidate, site, means, direction):
    """The intervention of one candidate towards the direction's target. site: SiteNeurons at the
    methods' site; means: {"mem", "gen"} mean states [layers, width]."""
    sign, layer = DIRECTION_SIGN[direction], candidate.layer
    if candidate.method == "nmd":
        return targeted(site.nmd, select_top(site.rho, candidate.topN), direction)
    if candidate.method == "mean_difference":
        return whole_layer(sign * site.nmd[layer], layer)
    if candidate.method == "probe":
        return whole_layer(sign * site.discriminant[layer], layer)
    if candidate.method == "patch":
        return whole_layer(means["gen" if direction == TO_GEN else "mem"][layer], layer, pull=True)
    raise ValueError(candidate.method)


def random_direction(like, generator):
    """A dense intervention along a random direction with the norm of `like` (a whole-layer shift)."""
    v = torch.randn(len(like.per_alpha), generator=generator)
    return Intervention(like.idx, v * like.per_alpha.norm() / v.norm(), like.width)
