"""Steered decoding of probes with one model in memory, and success rates with their intervals."""
from dataclasses import dataclass

from .behaviour import max_answer_tokens, run_probes
from .sites import shift_last
from .stats import wilson_interval
from .steering import TO_GEN, TO_MEM
from .tasks import GEN, MEM, OTHER

SOURCE = {TO_GEN: MEM, TO_MEM: GEN}   # the unsteered behaviour each direction starts from
TARGET = {TO_GEN: GEN, TO_MEM: MEM}


def rates(labels, direction):
    """Of n steered probes: how many reached the target behaviour (k, share, 95 % Wilson
    interval), and the shares that broke to OTHER or stayed unchanged."""
    n = len(labels)
    count = {b: sum(x == b for x in labels) for b in (MEM, GEN, OTHER)}
    k = count[TARGET[direction]]
    lo, hi = wilson_interval(k, n)
    share = (lambda c: c / n) if n else (lambda c: None)
    return {"n": n, "k": k, "success": share(k), "ci95": [lo, hi],
            "other": share(count[OTHER]), "unchanged": share(count[SOURCE[direction]])}


@dataclass
class Steerer:
    """A trained model with hooks at its site: decode probes under any set of shifts."""
    model: object
    codec: object
    modules: list
    task: object
    batch_size: int
    max_new: int

    @classmethod
    def for_run(cls, run, probes, batch_size):
        model, codec = run.load_model()
        return cls(model, codec, run.site_modules(model), run.task, batch_size, max_answer_tokens(codec, probes))

    def decode(self, probes, shifts, desc=None):
        """(outputs, labels) of the probes with `shifts` added at the last position of every step."""
        if not probes:
            return [], []
        with shift_last(self.modules, shifts):
            return run_probes(self.model, self.codec, self.task, probes, self.batch_size, desc=desc,
                              max_new_tokens=self.max_new)


def split_by_source(probes, labels):
    """{direction: the probes whose unsteered behaviour is where that direction starts}."""
    return {d: [p for p, lab in zip(probes, labels) if lab == SOURCE[d]] for d in (TO_GEN, TO_MEM)}


def read_neurons(path):
    """(nmd, rho, n_pairs) from a neurons stage's store."""
    from .io import read_tensor_metadata, read_tensors, require_keys

    stats = require_keys(read_tensors(path), ["nmd", "rho"], path)
    n_pairs = int(require_keys(read_tensor_metadata(path), ["n_pairs"], path)["n_pairs"])
    return stats["nmd"], stats["rho"], n_pairs
