"""Steered decoding of probes with one model in memory, and success rates with their intervals."""
from dataclasses import dataclass

from .behaviour import max_answer_tokens
from .generate import decode_prompts, read_num_beams
from .sites import shift_last, site_shifts
from .stats import wilson_interval
from .steering import ADAPTIVE, SCHEDULES, TO_GEN, TO_MEM, adaptive
from .tasks import GEN, MEM, OTHER

SOURCE = {TO_GEN: MEM, TO_MEM: GEN}   # the unsteered behaviour each direction starts from
TARGET = {TO_GEN: GEN, TO_MEM: MEM}


def rates(labels, direction):
    """Of n steered probes: how many reached the target answer (k, share, 95 % Wilson interval: the
    paper's measure), how many left the source behaviour at all (the route: target or OTHER), and
    the shares that broke to OTHER or stayed unchanged."""
    n = len(labels)
    count = {b: sum(x == b for x in labels) for b in (MEM, GEN, OTHER)}
    k, left = count[TARGET[direction]], n - count[SOURCE[direction]]
    share = (lambda c: c / n) if n else (lambda c: None)
    return {"n": n, "k": k, "success": share(k), "ci95": list(wilson_interval(k, n)),
            "route_k": left, "route": share(left), "route_ci95": list(wilson_interval(left, n)),
            "other": share(count[OTHER]), "unchanged": share(count[SOURCE[direction]])}


@dataclass
class Steerer:
    """A trained model with hooks at its sites: decode probes under any intervention and schedule."""
    model: object
    codec: object
    modules: dict     # {site: [module per layer]}
    task: object
    batch_size: int
    max_new: int
    num_beams: int = 1   # 1: greedy

    @classmethod
    def for_run(cls, run, probes, batch_size):
        num_beams = read_num_beams(run.params)
        model, codec = run.load_model()
        return cls(model, codec, run.plugin.all_site_modules(model), run.task, batch_size,
                   max_answer_tokens(codec, probes), num_beams)

    def decode(self, probes, shifts=None, site=None, schedule="every_step", desc=None, share=None, accumulate=False):
        """The outputs of the probes with `shifts` ({layer: (neurons, values)}) moving the site's last
        position on the steps the schedule names (no shifts: unsteered). At a residual-stream site
        each layer adds only what the stream does not carry from the layers shifted before it.
        share (None: shifts): the values are targets each neuron moves that share of the way to (sites.shift_last).
        accumulate: at a residual-stream site each layer adds its whole shift (sites.site_shifts)."""
        if not probes:
            return []
        prompts = [p["prompt"] for p in probes]
        if not shifts:
            return decode_prompts(self.model, self.codec, prompts, self.max_new, self.batch_size, self.num_beams, desc)
        step, on = [0], SCHEDULES[schedule]

        def at_step(k):
            step[0] = k
        moved = site_shifts(site, shifts, share, accumulate)
        with shift_last(self.modules[site], moved, active=lambda: on(step[0]), share=share):
            return decode_prompts(self.model, self.codec, prompts, self.max_new, self.batch_size, self.num_beams, desc,
                                  on_step=at_step)

    def labels(self, outputs, probes):
        return [self.task.classify(o, p) for o, p in zip(outputs, probes)]


class Outputs:
    """Steered outputs of a fixed list of probes under one intervention, decoded at most once per
    (alpha, probe): a fixed alpha and the adaptive ladder share what they have decoded."""

    def __init__(self, steerer, probes, intervention, site, schedule, accumulate=False):
        self.steerer, self.probes, self.intervention = steerer, probes, intervention
        self.site, self.schedule, self.accumulate, self.memo = site, schedule, accumulate, {}

    def at(self, alpha, indices=None):
        indices = range(len(self.probes)) if indices is None else indices
        memo = self.memo.setdefault(alpha, {})
        missing = [i for i in indices if i not in memo]
        if missing:
            iv = self.intervention
            outs = self.steerer.decode([self.probes[i] for i in missing], iv.at(alpha), self.site, self.schedule,
                                       share=alpha if iv.to_target else None, accumulate=self.accumulate)
            memo.update(zip(missing, outs))
        return [memo[i] for i in indices]

    def at_each(self, alphas):
        """Each probe decoded at its own alpha (a list as long as the probes)."""
        outputs = [None] * len(alphas)
        for alpha in sorted(set(alphas)):
            idx = [i for i, a in enumerate(alphas) if a == alpha]
            for i, out in zip(idx, self.at(alpha, idx)):
                outputs[i] = out
        return outputs

    def run(self, alpha, unsteered, ladder):
        """(outputs, alpha each prompt moved at): a fixed alpha, or ADAPTIVE along the ladder."""
        if alpha == ADAPTIVE:
            return adaptive(self.at, unsteered, ladder)
        outputs = self.at(alpha)
        return outputs, [alpha if o != u else None for o, u in zip(outputs, unsteered)]


def split_by_source(labels):
    """{direction: indices of the probes whose unsteered behaviour is where that direction starts}."""
    return {d: [i for i, lab in enumerate(labels) if lab == SOURCE[d]] for d in (TO_GEN, TO_MEM)}
