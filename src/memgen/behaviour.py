"""Probe outcomes: behaviour rates, pair yield, and the MEM/GEN pairs that drive the statistics."""
from collections import defaultdict

from .generate import decode_prompts
from .tasks import BEHAVIOURS, GEN, MEM


def first_groups(probes, n):
    """The probes of the first n groups (groups are numbered from 0 in file order)."""
    return [p for p in probes if p["group"] < n]


def max_answer_tokens(codec, probes):
    """Room for the longest answer (and EOS), so decoding never cuts a right answer short."""
    longest = max(len(codec.target_ids(p.get(key, ""))) for p in probes for key in ("mem", "gen", "gen_target"))
    return longest + 2  # a pretrained tokenizer may cut the model's own answer into more pieces


def run_probes(model, codec, task, probes, batch_size, desc=None, max_new_tokens=None, num_beams=1):
    """Decode every probe (greedy, or beam search with num_beams > 1); return (outputs, labels)."""
    max_new = max_new_tokens or max_answer_tokens(codec, probes)
    outputs = decode_prompts(model, codec, [p["prompt"] for p in probes], max_new, batch_size, num_beams, desc)
    return outputs, [task.classify(o, p) for o, p in zip(outputs, probes)]


def find_pairs(probes, labels):
    """Within each group, MEM prompts zipped with GEN prompts: (mem index, gen index) pairs."""
    by_group = defaultdict(lambda: {MEM: [], GEN: []})
    for i, (probe, label) in enumerate(zip(probes, labels)):
        if label in (MEM, GEN):
            by_group[probe["group"]][label].append(i)
    return [pair for g in sorted(by_group) for pair in zip(by_group[g][MEM], by_group[g][GEN])]


def shares(labels):
    """{"mem", "gen", "other": share of the labels}."""
    return {b.lower(): sum(label == b for label in labels) / len(labels) for b in BEHAVIOURS}


def summarise(probes, labels):
    """Behaviour rates over prompts, pair yield over groups, and the number of pairs."""
    n = len(labels)
    rates = shares(labels)
    pairs = find_pairs(probes, labels)
    n_groups = len({p["group"] for p in probes})
    n_pair_groups = len({probes[m]["group"] for m, _ in pairs})
    return {**rates, "n_prompts": n, "n_groups": n_groups,
            "pair_yield": n_pair_groups / n_groups, "n_pairs": len(pairs)}
