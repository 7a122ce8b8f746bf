"""A task's dataset: training examples and three held-out splits of probe groups, disjoint by construction.

val chooses (the checkpoint, the steering operating point), probe finds the MEM/GEN pairs, test
measures steering once. No held-out unit (a prompt; for arithmetic its addend multiset, in any order) is in
two parts: train, val, probe and test are disjoint by construction.
"""
import itertools
import random

from .errors import UserError
from .params import derive_seed

SPLITS = ("val", "probe", "test")  # checkpoint and operating-point choice / pair finding / held-out steering


def draw_dataset(task, n_train, n_groups, seed):
    """{"train": examples, split: probes} for n_groups[split] groups per split; the splits take their
    held-out units in turn, each avoiding those taken before, and training avoids all of them."""
    capacity, wanted = task.max_groups(), sum(n_groups.values())
    if capacity is not None and wanted > capacity:
        raise UserError(f"params: '{task.params_key}' allows {capacity} probe groups with no {task.holdout_unit} "
                        f"in common, but n_val_groups + n_probe_groups + n_test_groups ask for {wanted}")
    taken, data = set(), {}
    for split in SPLITS:
        rng = random.Random(derive_seed(seed, "data", task.name, split))
        data[split] = task.probe_groups(rng, n_groups[split], taken, split)
    rng = random.Random(derive_seed(seed, "data", task.name, "train"))
    data["train"] = task.training_examples(rng, n_train, held_out=frozenset(taken))
    return data


def overlaps(data, unit_of=lambda prompt: prompt):
    """How many distinct held-out units (by default prompts) each pair of parts shares ({"train&val": 0, ...}):
    all must be 0."""
    units = {part: {unit_of(row["prompt"]) for row in rows} for part, rows in data.items()}
    return {f"{a}&{b}": len(units[a] & units[b]) for a, b in itertools.combinations(["train", *SPLITS], 2)}
