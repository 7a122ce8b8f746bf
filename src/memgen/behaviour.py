"""Probe outcomes: behaviour rates, pair yield, and the MEM/GEN pairs that drive the statistics."""
from collections import defaultdict

from .errors import UserError
from .generate import decode_prompts, first_tokens
from .tasks import BEHAVIOURS, GEN, MEM, OTHER


def first_groups(probes, n):
    """The probes of the first n groups (groups are numbered from 0 in file order)."""
    return [p for p in probes if p["group"] < n]


def leading_groups(probes, n):
    """The first n groups, in file order."""
    return set(list(dict.fromkeys(p["group"] for p in probes))[:n])


def read_screen(probe_params, num_beams):
    """(screen, check_groups) from families.<f>.probe: whether the probe stage (and the train stage's
    checkpoints) screen routes, and how many groups they decode in full beside (0 without the screen)."""
    screen = probe_params.bool("screen", default=False)
    if screen and num_beams > 1:
        raise UserError(f"params: '{probe_params.prefix}.screen' needs greedy decoding (decode.num_beams 1): a beam "
                        "search may start with another token than the argmax the screen reads")
    return screen, probe_params.int("check_groups", lo=1) if screen else 0


def max_answer_tokens(codec, probes):
    """Room for the longest answer (and EOS), so decoding never cuts a right answer short."""
    longest = max(len(codec.target_ids(p.get(key, ""))) for p in probes for key in ("mem", "gen", "gen_target"))
    return longest + 2  # a pretrained tokenizer may cut the model's own answer into more pieces


def run_probes(model, codec, task, probes, batch_size, desc=None, max_new_tokens=None, num_beams=1):
    """Decode every probe (greedy, or beam search with num_beams > 1); return (outputs, labels)."""
    max_new = max_new_tokens or max_answer_tokens(codec, probes)
    outputs = decode_prompts(model, codec, [p["prompt"] for p in probes], max_new, batch_size, num_beams, desc)
    return outputs, [task.classify(o, p) for o, p in zip(outputs, probes)]


def screen_routes(codec, task, probes, first):
    """Each probe's route from its greedy first answer token (`first`, one per probe): MEM where it
    starts the MEM answer, GEN where it starts the GEN answer, OTHER where it starts neither, and
    None where both answers start with the same token (the screen cannot tell)."""
    routes = []
    for probe, token in zip(probes, first):
        mem, gen = (codec.target_ids(answer)[0] for answer in task.answer_targets(probe))
        routes.append(None if mem == gen else MEM if token == mem else GEN if token == gen else OTHER)
    return routes


def groups_that_can_pair(probes, routes):
    """The groups that can hold a MEM/GEN pair under greedy decoding, which writes the screened first
    token: a prompt that can end MEM (routed MEM, or untold) and another that can end GEN."""
    routes_of = defaultdict(list)
    for probe, route in zip(probes, routes):
        routes_of[probe["group"]].append(route)
    return {g for g, rs in routes_of.items()
            if any(r in (MEM, None) for r in rs) and any(r in (GEN, None) for r in rs)
            and sum(r != OTHER for r in rs) >= 2}


def screened_probes(model, codec, task, probes, batch_size, check_groups, desc=None):
    """Probe with the route screen: every prompt's first token from one forward pass, then full decoding
    of the groups that can pair and of the first `check_groups` groups (the rates, and the screen's check).
    Returns (indices of the decoded probes, their outputs, their labels, every probe's route, can-pair groups)."""
    first = first_tokens(model, codec, [p["prompt"] for p in probes], batch_size, desc=desc and f"screen {desc}")
    routes = screen_routes(codec, task, probes, first)
    can_pair = groups_that_can_pair(probes, routes)
    full = leading_groups(probes, check_groups)
    decoded = [i for i, p in enumerate(probes) if p["group"] in can_pair or p["group"] in full]
    kept = [probes[i] for i in decoded]
    outputs, labels = run_probes(model, codec, task, kept, batch_size, desc=desc) if kept else ([], [])
    return decoded, outputs, labels, routes, can_pair


def screened_summary(probes, decoded, labels, check_groups):
    """summarise() for screened probes: the rates from the groups decoded in full, the pairs and
    their yield from every group (a group the screen skipped holds none)."""
    full = leading_groups(probes, check_groups)
    checked = [k for k, i in enumerate(decoded) if probes[i]["group"] in full]
    kept = [probes[i] for i in decoded]
    pairs = find_pairs(kept, labels)
    n_groups = len({p["group"] for p in probes})
    return {**summarise([kept[k] for k in checked], [labels[k] for k in checked]), "n_groups": n_groups,
            "pair_yield": len({kept[m]["group"] for m, _ in pairs}) / n_groups, "n_pairs": len(pairs)}


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
