"""The neuron store: per site, NMD, rho and the discriminant direction for every (layer, neuron)
[layers, width], with the number of pairs and the permutation null's chance level. Written by the
neurons stage, read by steering."""
from dataclasses import dataclass

import torch

from .io import read_tensor_metadata, read_tensors, require_keys, write_tensors

FIELDS = ("nmd", "rho", "discriminant")


@dataclass
class SiteNeurons:
    nmd: torch.Tensor
    rho: torch.Tensor
    discriminant: torch.Tensor
    chance: dict     # {"null_p95", "n_above", "n_permutations"}

    @property
    def above_chance(self):
        """Whether any neuron's |rho| beats the null's 95th percentile of max |rho| (None: no null)."""
        return None if self.chance["n_above"] is None else self.chance["n_above"] > 0


def write_neurons(path, stats_by_site):
    """stats_by_site: {site: stats.SiteStats}, all from one store (so one number of pairs)."""
    n_pairs = {s.n_pairs for s in stats_by_site.values()}.pop()
    tensors = {f"{site}/{name}": getattr(s, name) for site, s in stats_by_site.items() for name in FIELDS}
    write_tensors(path, tensors, metadata={
        "layout": "[layer, neuron] per site", "rho": "Pearson r with label MEM=1, GEN=0", "n_pairs": n_pairs,
        "chance": {site: s.chance for site, s in stats_by_site.items()}})


def read_neurons(path):
    """({site: SiteNeurons}, n_pairs)."""
    meta = require_keys(read_tensor_metadata(path), ["n_pairs", "chance"], path)
    tensors = read_tensors(path)
    sites = {}
    for site, chance in meta["chance"].items():
        t = require_keys(tensors, [f"{site}/{name}" for name in FIELDS], path)
        sites[site] = SiteNeurons(*[t[f"{site}/{name}"] for name in FIELDS], chance)
    return sites, int(meta["n_pairs"])
