"""Steering methods side by side: the paper's per-neuron NMD shift beside the methods a researcher
would try instead, each an arm of the experiment engine (memgen.experiment) at one site: the methods
stage chooses one member of each on val probes (the engine's rule), then measures it once on held-out
test probes beside a random direction matched to it.

nmd: the top-N neurons by |rho| over every layer, each shifted by alpha x NMD (the paper's method);
mean_difference: every neuron of one layer shifted by alpha x NMD, the dense difference of the two
    behaviours' mean states (contrastive activation addition);
probe: every neuron of one layer shifted by alpha x the discriminant direction, the direction a linear
    probe reads MEM from GEN by (inference-time intervention), scaled so that alpha = 1 moves a state
    by the class means' distance along it;
patch: every neuron of one layer pulled a share of the way to the target behaviour's mean state
    (patching to the mean; shares above 1 overshoot it), on the schedule's steps.
Each method's null: a random direction at its chosen layers, with its norm, schedule and dose (for
patching, a random target as far from the source's mean state as the target's mean is).
Equal footing: the default params give each method the same number of val candidates (24).
"""
from dataclasses import asdict, dataclass

import torch

from .errors import UserError
from .evaluate import SOURCE
from .experiment import RANDOM_DIRECTION, Arm, Plan
from .params import is_number
from .steering import DIRECTION_SIGN, SCHEDULES, TO_GEN, Intervention, select_top, targeted
from .tasks import MEM

METHODS = ("nmd", "mean_difference", "linear_probe", "patch")
PAPER = "paper"  # measured beside the methods on test: the paper's setting, not chosen
ARMS = (PAPER, *METHODS)
NAMES = {PAPER: "the paper's setting (not chosen)", "nmd": "NMD shift, top-N neurons (the paper's method)",
         "mean_difference": "mean difference, one layer (CAA)", "linear_probe": "linear-probe direction, one layer (ITI)",
         "patch": "patch to the target's mean, one layer"}
LABELS = {PAPER: "paper's setting", "nmd": "NMD top-N", "mean_difference": "mean diff.", "linear_probe": "probe dir.",
          "patch": "patch to mean"}  # as the figure labels them


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
    """The methods section, checked: {site, schedules, alphas (nmd), layer_alphas (the one-layer shifts),
    shares (patch), layers}."""
    site = section.str("site", choices=tuple(family_sites))
    schedules = section.one_or_list("schedule")
    for s in schedules:
        if s not in SCHEDULES:
            raise UserError(f"params: '{section.prefix}.schedule' holds {s!r}, not among {', '.join(SCHEDULES)}")
    strengths = {key: section.numbers(key) for key in ("alpha", "layer_alpha", "share")}
    for key, values in strengths.items():
        if any(v <= 0 for v in values):
            raise UserError(f"params: '{section.prefix}.{key}' must hold numbers > 0, got {values}")
    layers = list(range(n_layers)) if section.raw("layers") is None else section.list("layers", unique=True)
    if any(not (is_number(l) and l == int(l) and 0 <= l < n_layers) for l in layers):
        raise UserError(f"params: '{section.prefix}.layers' must hold layers 0..{n_layers - 1} (or be null), got {layers}")
    return {"site": site, "schedules": schedules, "alphas": [float(a) for a in strengths["alpha"]],
            "layer_alphas": [float(a) for a in strengths["layer_alpha"]],
            "shares": [float(s) for s in strengths["share"]], "layers": [int(l) for l in layers]}


def candidates(method, settings, top_ns, layers=None):
    """Every member of one method's family, in the order ties fall back to; a one-layer method's layers among
    `layers` (None: all)."""
    s = settings
    if method == "nmd":
        return [Candidate(method, sch, None, t, a) for sch in s["schedules"] for t in top_ns for a in s["alphas"]]
    strengths = s["shares"] if method == "patch" else s["layer_alphas"]
    return [Candidate(method, sch, l, None, a) for sch in s["schedules"] for l in s["layers"]
            if layers is None or l in layers for a in strengths]


def whole_layer(values, layer, to_target=False):
    """Every neuron of one layer, with per-neuron values ([width])."""
    width = len(values)
    return Intervention(layer * width + torch.arange(width), values.clone(), width, to_target=to_target)


def build(candidate, site, means, direction, layers=None):
    """The intervention of one candidate towards the direction's target. site: SiteNeurons at the
    methods' site; means: {"mem", "gen"} mean states [layers, width]; layers: where nmd selects (None: all)."""
    sign, layer = DIRECTION_SIGN[direction], candidate.layer
    if candidate.method == "nmd":
        return targeted(site.nmd, select_top(site.rho, candidate.topN, layers), direction)
    if candidate.method == "mean_difference":
        return whole_layer(sign * site.nmd[layer], layer)
    if candidate.method == "linear_probe":
        return whole_layer(sign * site.discriminant[layer], layer)
    if candidate.method == "patch":
        return whole_layer(means["gen" if direction == TO_GEN else "mem"][layer], layer, to_target=True)
    raise ValueError(candidate.method)


def method_arms(settings, top_ns, site, means, site_name=None, layers=None):
    """{method: its Arm}: candidates from the settings, each planned at site_name (None: the methods' site) within
    `layers` (None: all; a scope's) with its random direction as the null. site: SiteNeurons there; means: {"mem",
    "gen"} mean states [layers, width]."""
    n_layers, site_name = site.nmd.shape[0], site_name or settings["site"]

    def planner(method):
        def plan(c, direction):
            origin = means["mem" if SOURCE[direction] == MEM else "gen"] if method == "patch" else None
            return Plan(build(c, site, means, direction, layers), site_name, c.schedule, c.alpha, n_layers, origin)
        return plan
    return {m: Arm(m, tuple(candidates(m, settings, top_ns, layers)), planner(m), (RANDOM_DIRECTION,)) for m in METHODS}
