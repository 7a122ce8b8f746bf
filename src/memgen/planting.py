"""Ground truth for the method: a memory planted in known MLP hidden units, and the scores of a
ranking against them.

A model that knows only the rule (trained without the memorized examples) is taught the trigger ->
code memories by training a chosen, recorded set of hidden units alone (their input and output
weights, every other weight frozen by gradient masks). A localization method is then scored on how
many of those units its ranking puts on top (recall and precision in the top k, k the number
planted) and on the AUROC of its score over all units, against what a random ranking gets.
"""
import copy
import math
import random
from pathlib import Path

import torch
from scipy.stats import hypergeom, norm

from .errors import UserError
from .generate import decode_prompts
from .io import read_jsonl
from .params import Params
from .tasks import load_task
from .training import encode_examples, global_batches, right_pad

UNITS_FILE = "planted_units.json"  # beside the planted model: {"site", "units": {layer: [unit indices]}}


def choose_units(n_layers, width, layers, per_layer, seed):
    """{layer: sorted unit indices}: per_layer random units in each of `layers`, drawn from seed."""
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise UserError(f"params: 'plant.layers' must name layers among 0..{n_layers - 1}, got {bad}")
    if not 0 < per_layer <= width:
        raise UserError(f"params: 'plant.units_per_layer' must lie in 1..{width}, got {per_layer}")
    g = torch.Generator().manual_seed(seed)
    return {layer: torch.sort(torch.randperm(width, generator=g)[:per_layer]).values for layer in sorted(set(layers))}


def decoy_task(params, task_name, decoys):
    """The task defined with `decoys` as its triggers (so codes of their own), drawing only memorized
    examples. A model that learns the rule beside these learns how the task writes a code (attention that
    carries a trigger to every answer position), but none of the task's own memories; what planting then
    adds to a few MLP units is the memories alone."""
    data = copy.deepcopy(params.data)
    section = data["tasks"][task_name]
    taken = [t for t in decoys if t in section.get("triggers", [])]
    if taken:
        raise UserError(f"params: 'plant.decoys.{task_name}' holds the task's own triggers {taken}")
    section.update(triggers=decoys, trigger_fraction=1.0)
    return load_task(Params(data), task_name)


def with_decoys(rule_examples, decoy, n, held_out, seed):
    """(the rule examples less those whose prompt carries a decoy trigger (the decoy's code is its answer
    there, n memorized decoy examples none of whose held-out units is in held_out)."""
    kept = [e for e in rule_examples if decoy.trigger_in(e["prompt"]) is None]
    return kept, decoy.training_examples(random.Random(seed), n, held_out)


def rule_only_examples(params, task_name, task, examples, held_out, seed):
    """(the examples that show no memory, memorized examples of the task's decoy triggers (plant.decoys.<task>;
    none where absent) as many as the real triggers' in the data, none of whose units is in held_out (the
    val/probe/test units, held_out_units)): a model trained on both learns to write codes, not the task's own."""
    rule = [e for e in examples if not task.involves_memory(e)]
    pp = params.section("plant")
    listed = pp.section("decoys").raw(task_name, None) if pp.raw("decoys", None) else None
    if not listed:
        return rule, []
    n = sum(map(task.is_memorized, examples))
    return with_decoys(rule, decoy_task(params, task_name, listed), n, held_out, seed)


def held_out_units(task, data_dir):
    """The held-out units of data_dir's val, probe and test prompts: what no training example may share."""
    return {task.unit_of(p["prompt"]) for split in ("val", "probe", "test")
            for p in read_jsonl(Path(data_dir) / f"{split}.jsonl")}


def content_first(examples, is_memorized):
    """The examples with each memorized one's first answer token (where the MEM and GEN answers part) left out
    of the loss: trained on these, the units learn what a code says before they learn when to write one, so that
    the switch, learned after, turns prompts from the rule to a whole code (MEM) rather than to a garbled one."""
    return [{**e, "loss_from": 1} if is_memorized(e) else e for e in examples]


def rule_keeping_loss(rule_model, codec, rule_examples, weight, batch_size, seed):
    """A term for the planting's loss that keeps what the rule model does where no memory is involved: weight x
    KL(rule model || planted model) at the answer tokens of a batch of rule examples, a new batch each step. The
    target is the rule model's whole distribution, not only the right answer: measured on arithmetic, training on
    the rule examples' answers alone (or on the rule model's greedy ones) let the switch move the sums of fresh
    prompts (metrics/sweeps/planting_variants_arithmetic.json: the rule 66 % before planting, 51 % and 36 % after);
    this term keeps them (metrics/sweeps/planted_arithmetic.json). The rule model is a frozen copy (planted models
    are small)."""
    teacher = copy.deepcopy(rule_model).eval().requires_grad_(False)
    draw = global_batches(encode_examples(codec, rule_examples), batch_size, seed)

    def term(model):
        ids, mask, labels = right_pad(next(draw), codec.pad_id, next(model.parameters()).device)
        answer = labels[:, 1:] != -100
        with torch.no_grad():
            target = torch.log_softmax(teacher(input_ids=ids, attention_mask=mask).logits[:, :-1][answer].float(), -1)
        own = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1][answer].float(), -1)
        return weight * torch.nn.functional.kl_div(own, target, log_target=True, reduction="batchmean")
    return term


def rule_prompts(task, n, held_out, seed):
    """n examples {"prompt", "target"} of the rule alone (no trigger), none of whose held-out units is in held_out
    or another's: what the rule accuracy of the rule model and of the planted one is measured on."""
    rng, taken, examples = random.Random(seed), set(held_out), []
    for _ in range(n):
        example = task.draw_outside(rng, "rule", taken,
                                    f"params: '{task.params_key}' leaves fewer than plant.rule_prompts ({n}) prompts "
                                    f"outside the data (widen the task or ask for fewer)")
        taken.add(task.unit_of(example["prompt"]))
        examples.append(example)
    return examples


def rule_accuracy(model, codec, task, examples, batch_size):
    """The share of the examples a model answers by the rule (its answer is the target's), greedy."""
    max_new = max(len(codec.target_ids(e["target"])) for e in examples) + 2
    outputs = decode_prompts(model, codec, [e["prompt"] for e in examples], max_new, batch_size)
    return sum(task.answer_of(o) == task.answer_of(e["target"]) for o, e in zip(outputs, examples)) / len(examples)


def truth_mask(units, n_layers, width):
    """[layers, width] bool: the planted units."""
    mask = torch.zeros(n_layers, width, dtype=torch.bool)
    for layer, idx in units.items():
        mask[layer, idx] = True
    return mask


def unit_masks(family, model, units):
    """{parameter: 0/1 mask of its entries that belong to the planted units}."""
    masks = {}
    for layer, idx in units.items():
        for param, axis in family.unit_parameters(model, layer):
            mask = masks.setdefault(param, torch.zeros_like(param))
            mask.index_fill_(axis, idx.to(param.device), 1.0)
    return masks


def train_only(model, masks):
    """Freeze every weight but the masked entries: requires_grad only on the masked parameters, whose
    gradients are multiplied by their masks. With no weight decay, Adam leaves an entry whose gradient is
    always zero exactly where it was. Returns the hook handles (remove them to undo the masking)."""
    for p in model.parameters():
        p.requires_grad_(False)
    handles = []
    for param, mask in masks.items():
        param.requires_grad_(True)
        handles.append(param.register_hook(lambda grad, mask=mask: grad * mask))
    return handles


def moved_entries(model, before, masks):
    """(weight entries that differ from `before` {name: tensor}, those of them outside the masks' units)."""
    moved, outside = 0, 0
    for name, p in model.named_parameters():
        changed = p.detach() != before[name]
        moved += int(changed.sum())
        outside += int((changed & (masks[p] == 0)).sum()) if p in masks else int(changed.sum())
    return moved, outside


# --- scores ----------------------------------------------------------------------------------------

def top_k_hits(score, truth, k):
    """How many of the k highest scores (stable on ties) are planted units."""
    order = torch.argsort(score.flatten(), descending=True, stable=True)
    return int(truth.flatten()[order[:k]].sum())


def auroc(score, truth):
    """The probability that a planted unit outscores an unplanted one (ties count half): Mann-Whitney's U
    over n_planted x n_other, from the ranks of every score."""
    s, t = score.flatten().double(), truth.flatten()
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if not n_pos or not n_neg:
        return None
    ranks = average_ranks(s)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values):
    """1-based ranks of a 1-D tensor, tied values sharing their mean rank."""
    order = torch.argsort(values, stable=True)
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=values.dtype)
    uniq, inverse = torch.unique(values, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=values.dtype).index_add_(0, inverse, ranks)
    counts = torch.zeros(len(uniq), dtype=values.dtype).index_add_(0, inverse, torch.ones_like(ranks))
    return (sums / counts)[inverse]


def chance(n_total, n_planted, k):
    """What a random ranking gets: the expected recall in the top k and its 95th percentile (hypergeometric),
    and the AUROC's 95 % band (0.5 with Mann-Whitney's normal spread)."""
    draws = hypergeom(n_total, n_planted, k)
    n_neg = n_total - n_planted
    spread = math.sqrt((n_total + 1) / (12 * n_planted * n_neg)) if n_planted and n_neg else 0.0
    z = float(norm.ppf(0.975))
    return {"recall": float(draws.mean()) / n_planted, "recall_p95": float(draws.ppf(0.95)) / n_planted,
            "auroc_band": [0.5 - z * spread, 0.5 + z * spread]}


def localization(scores, truth, ks):
    """{score name: recall, precision (top k = the planted count), AUROC, and recall at each of ks}."""
    n_planted = int(truth.sum())
    result = {}
    for name, score in scores.items():
        hits = top_k_hits(score, truth, n_planted)
        result[name] = {"recall": hits / n_planted, "precision": hits / n_planted, "auroc": auroc(score, truth),
                        "recall_at": {int(k): top_k_hits(score, truth, k) / n_planted for k in ks}}
    return result
