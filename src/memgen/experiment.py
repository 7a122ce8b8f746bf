"""The experiment engine: arms -> their candidates on val -> the rule -> one measurement on test,
beside nulls matched to what was chosen and drawn many times.

An arm is a declaration: the candidates it may take (val chooses among them; a single one is a
fixed point) and the plan of a candidate towards a direction, plus the nulls matched to it. The
steer, methods and localize stages are configurations of it; adding a method or a control is
adding an Arm or a Null.
"""
from dataclasses import dataclass, replace
from typing import Callable

import torch

from .behaviour import shares
from .evaluate import Outputs, rates, split_by_source
from .params import derive_seed
from .progress import progress_bar
from .stats import exact_greater
from .steering import ADAPTIVE, Intervention, random_signs

SIGNIFICANCE = 0.05  # an arm beats a null when its empirical p is below this (needs >= 20 draws to be reachable)


@dataclass(frozen=True)
class Plan:
    """One concrete intervention, ready to decode: what moves (and by how much per unit of alpha),
    at which site, on which decoding steps, at what strength (a number or ADAPTIVE)."""
    intervention: Intervention
    site: str
    schedule: str
    alpha: object
    n_layers: int
    origin: object = None  # a to_target plan's: the source behaviour's mean states [layers, width], where it starts from
    accumulate: bool = False  # at a residual-stream site: each layer adds its whole shift (the authors' code), not increments


@dataclass(frozen=True)
class Outcome:
    """A plan's decodes on one direction's probes: its rates (with specificity), outputs, labels, and the
    alpha each probe moved at (None where it did not)."""
    rates: dict
    outputs: list
    labels: list
    moved_at: list


@dataclass(frozen=True)
class Null:
    """A control matched to the plan an arm chose: draw(plan, generator) gives a random plan like it
    (None where it cannot be matched). counted: False for a baseline reported but not taken as the null."""
    name: str
    draw: Callable
    counted: bool = True


@dataclass(frozen=True)
class Arm:
    """A way to steer: its candidates (frozen dataclasses with an `alpha` field, in the order ties fall
    back to), plan(candidate, direction) -> Plan, and the nulls measured beside it."""
    name: str
    candidates: tuple
    plan: Callable
    nulls: tuple = ()


def choose(rows, max_other):
    """The selection rule, the one place it lives: the highest val success among rows with
    OTHER <= max_other; ties go to fewer neurons, then a smaller alpha, then the candidates' order.
    Without such a row, the least OTHER. (row, whether it kept OTHER within bounds); (None, False)
    without val probes."""
    measured = [(i, r) for i, r in enumerate(rows) if r["n"]]
    if not measured:
        return None, False
    within = [(i, r) for i, r in measured if r["other"] <= max_other]
    if within:
        best = min(within, key=lambda ir: (-ir[1]["success"], ir[1]["n_neurons"], alpha_order(ir[1]["alpha"]), ir[0]))
        return best[1], True
    best = min(measured, key=lambda ir: (ir[1]["other"], -ir[1]["success"], ir[1]["n_neurons"], ir[0]))
    return best[1], False


def alpha_order(alpha):
    """Fixed alphas by size, then adaptive."""
    return (1, 0.0) if alpha == ADAPTIVE else (0, alpha)


def rule_text(max_other):
    return (f"on val probes, the highest success among candidates with OTHER <= {max_other:g}; ties go to fewer "
            f"neurons, then a smaller alpha (adaptive last); without such a candidate, the least OTHER")


class Bench:
    """One split's probes, decoded unsteered once, and under any plan. Decodes of one arm's candidate
    are kept (keyed without the strength), so its fixed alphas and its adaptive ladder never decode a
    probe twice at one alpha."""

    def __init__(self, name, steerer, probes, ladder):
        self.name, self.steerer, self.probes, self.ladder = name, steerer, probes, ladder
        self.outputs = steerer.decode(probes, desc=f"{name}: unsteered")
        self.labels = steerer.labels(self.outputs, probes)
        self.by_source = split_by_source(self.labels)
        self._kept = {}

    def part(self, direction):
        """(probes, unsteered outputs) of the probes the direction starts from."""
        idx = self.by_source[direction]
        return [self.probes[i] for i in idx], [self.outputs[i] for i in idx]

    def shares(self):
        return shares(self.labels)

    def outcome(self, plan, direction, key=None):
        """(outputs, the alpha each probe moved at) of the plan on the direction's probes; every arm
        climbs the same ladder with the same stopping rule under ADAPTIVE."""
        probes, unsteered = self.part(direction)
        key = None if key is None else (key, plan.accumulate)
        outputs = self._kept.get(key) if key is not None else None
        if outputs is None:
            outputs = Outputs(self.steerer, probes, plan.intervention, plan.site, plan.schedule, plan.accumulate)
            if key is not None:
                self._kept[key] = outputs
        return outputs.run(plan.alpha, unsteered, self.ladder)

    def measure(self, plan, direction, key=None):
        """The plan's Outcome on the direction's probes; its rates say how many outputs it changed and the
        share of those that landed on the target (specificity)."""
        outs, moved_at = self.outcome(plan, direction, key)
        labels = self.steerer.labels(outs, self.part(direction)[0])
        return Outcome(with_specificity(rates(labels, direction), moved_at), outs, labels, moved_at)


def with_specificity(r, moved_at):
    changed = sum(a is not None for a in moved_at) if r["n"] else 0
    return {**r, "changed": changed, "specificity": r["k"] / changed if changed else None}


def candidate_key(arm, candidate, direction):
    return arm.name, replace(candidate, alpha=None), direction


def search(bench, arm, direction, max_other):
    """Every candidate of the arm on the bench's probes, and the rule's choice: (candidate or None,
    its row, within the OTHER bound), rows."""
    rows = []
    with progress_bar(f"{bench.name}: {arm.name} {direction}", total=len(arm.candidates)) as advance:
        for c in arm.candidates:
            plan = arm.plan(c, direction)
            r = bench.measure(plan, direction, candidate_key(arm, c, direction)).rates
            rows.append({**c.as_dict(), "n_neurons": len(plan.intervention.idx), **r})
            advance(1)
    row, within = choose(rows, max_other)
    return (arm.candidates[rows.index(row)] if row else None, row, within), rows


def null_summary(targeted, draws):
    """The distribution of a null's K draws beside the targeted rates: mean, central 95 % range and 95th
    percentile of success, the empirical p = (1 + #draws >= targeted) / (K + 1), and the one-sided Fisher
    exact p against the median draw (a typical single draw)."""
    success = [d["success"] for d in draws]
    n, k_draws = targeted["n"], len(draws)
    if not n or not draws:
        return {**rates([], "m2g"), "draws": k_draws, "success_draws": success, "p95": None, "p_empirical": None,
                "p_exact": None, "changed": 0, "specificity": None}
    s = torch.tensor(success, dtype=torch.float64)
    q = torch.quantile(s, torch.tensor([0.025, 0.5, 0.95, 0.975], dtype=torch.float64)).tolist()
    median = sorted(draws, key=lambda d: d["k"])[(k_draws - 1) // 2]
    changed = sum(d["changed"] for d in draws)
    mean = lambda key: sum(d[key] for d in draws) / k_draws  # noqa: E731
    return {"n": n, "k": mean("k"), "success": mean("success"), "ci95": [q[0], q[3]], "p95": q[2],
            "route_k": mean("route_k"), "route": mean("route"), "route_ci95": None, "other": mean("other"),
            "unchanged": mean("unchanged"), "draws": k_draws, "success_draws": success,
            "p_empirical": (1 + sum(x >= targeted["success"] for x in success)) / (k_draws + 1),
            "p_exact": exact_greater(targeted["k"], n, median["k"], median["n"]),
            "changed": changed, "specificity": sum(d["k"] for d in draws) / changed if changed else None}


def measure_null(bench, plan, null, direction, draws, generator, targeted):
    """A null's K draws at the chosen plan on the direction's probes, summarised (null_summary)."""
    results = []
    for _ in range(draws):
        drawn = null.draw(plan, generator)
        if drawn is None:
            return {"skipped": f"{null.name} cannot be matched to this plan", "counted": null.counted}
        results.append(bench.measure(drawn, direction).rates)
    return {**null_summary(targeted, results), "counted": null.counted}


def can_fail(bench, plan, null, direction, draws, generator):
    """Whether any of up to `draws` draws of the null changes any output of the bench's probes (it stops at
    the first that does); None where the bench has no probe in the direction or the null cannot be matched.
    A null that changes nothing cannot fail: it is flagged, never counted as evidence."""
    if not bench.part(direction)[0]:
        return None
    for _ in range(draws):
        drawn = null.draw(plan, generator)
        if drawn is None:
            return None
        if any(a is not None for a in bench.outcome(drawn, direction)[1]):
            return True
    return False


def beats(arm_rates, null_rates):
    """Whether the arm beats a null: its empirical p below SIGNIFICANCE (False where either was not measured)."""
    p = null_rates.get("p_empirical")
    return bool(arm_rates.get("n") and p is not None and p < SIGNIFICANCE)


# --- the nulls, each matched to the chosen plan (same layers, count per layer, norm, schedule, dose) ---

def _by_layer(iv):
    layers = iv.idx // iv.width
    return [(int(l), layers == l) for l in torch.unique(layers)]


def draw_random_neurons(plan, generator):
    """As many random neurons in each layer as the plan moves there (any of the layer's units: a plan may hold
    most of a layer), each with one of that layer's shift sizes and a random sign (None for a to_target plan)."""
    iv, idx, values = plan.intervention, [], []
    if iv.to_target:
        return None
    for layer, mine in _by_layer(iv):
        count = int(mine.sum())
        idx.append(layer * iv.width + torch.randperm(iv.width, generator=generator)[:count])
        values.append(iv.per_alpha[mine].abs() * random_signs(count, generator))
    return replace(plan, intervention=Intervention(torch.cat(idx), torch.cat(values), iv.width))


def draw_random_direction(plan, generator):
    """A dense random direction over every unit of the plan's layers, with its shift's norm in each layer.
    A to_target plan (patching, which is dense) is pulled instead to a random target as far from the source's mean
    state as its own target is."""
    iv, idx, values = plan.intervention, [], []
    for layer, mine in _by_layer(iv):
        v = torch.randn(iv.width, generator=generator)
        idx.append(layer * iv.width + torch.arange(iv.width))
        if iv.to_target:
            origin = plan.origin[layer]
            values.append(origin + v * (iv.per_alpha[mine] - origin).norm() / v.norm())
        else:
            values.append(v * iv.per_alpha[mine].norm() / v.norm())
    return replace(plan, intervention=Intervention(torch.cat(idx), torch.cat(values), iv.width, iv.to_target))


def draw_random_sign(plan, generator):
    """The plan's own neurons and shift sizes, each with a random sign (None for a to_target plan)."""
    iv = plan.intervention
    if iv.to_target:
        return None
    return replace(plan, intervention=Intervention(iv.idx, iv.per_alpha.abs() * random_signs(len(iv.idx), generator),
                                                   iv.width))


def draw_authors_baseline(plan, generator):
    """The authors' random baseline, as their code runs it: as many random neurons (any layer), each shifted
    by U(-m, m) with m the plan's largest shift, times alpha like every arm (None for a to_target plan)."""
    iv = plan.intervention
    if iv.to_target:
        return None
    count, m = len(iv.idx), float(iv.per_alpha.abs().max())
    idx = torch.randperm(plan.n_layers * iv.width, generator=generator)[:count]
    return replace(plan, intervention=Intervention(idx, m * (2 * torch.rand(count, generator=generator) - 1), iv.width))


RANDOM_NEURONS = Null("random_neurons", draw_random_neurons)
RANDOM_DIRECTION = Null("random_direction", draw_random_direction)
RANDOM_SIGN = Null("random_sign", draw_random_sign)
AUTHORS_BASELINE = Null("authors_baseline", draw_authors_baseline, counted=False)
NEURON_NULLS = (RANDOM_NEURONS, RANDOM_DIRECTION, RANDOM_SIGN, AUTHORS_BASELINE)  # beside a neuron-set steer
NULL_NAMES = {"random_neurons": "random neurons, same count per layer and sizes", "random_direction":
              "random direction, same layers and norm", "random_sign": "same neurons, random signs",
              "authors_baseline": "the authors' random baseline (not the null)"}


def measure(bench, val, arm, plan, direction, draws, seed, key=None):
    """({arm.name: the plan's rates, null: its summary}, the plan's Outcome) on the bench's probes of the
    direction; each null drawn `draws` times from its own seed (derived from `seed`), and checked on the val
    bench for whether it can change an output at all (can_fail: None where val has no probe in the direction)."""
    outcome = bench.measure(plan, direction, key)
    found = {arm.name: outcome.rates}
    for null in arm.nulls:
        found[null.name] = measure_null(bench, plan, null, direction, draws, _generator(seed, null.name), outcome.rates)
        found[null.name]["can_fail"] = None if val is None else \
            can_fail(val, plan, null, direction, draws, _generator(seed, null.name, "val"))
    return found, outcome


def _generator(seed, *names):
    return torch.Generator().manual_seed(derive_seed(seed, *names))
