"""Stage plant: the ground-truth model of one task. A model of the family learns the rule alone (trained
without any example that shows a memory), then the task's trigger -> code memories are taught to a
chosen, recorded set of MLP hidden units only (their input and output weights; every other weight
frozen by gradient masks): first what each code says (plant.content_steps, the first answer token out of
the loss), then when to write it (at plant.switch_lr), the checkpoint chosen by pair yield among those that
answer at least plant.min_mem of the val probes from memory (and, where plant.max_rule_drop is set, keep the rule
model's accuracy on val rule prompts within it). Where plant.keep is above 0, both phases add to the
loss plant.keep x the KL from the rule model at rule examples' answers. The rule accuracy (fresh prompts without a
trigger, answered by the rule) is measured before and after. The planted units are the truth the localize
stage scores the ranking against. Run as `plant FAMILY planted REP TASK`."""
from memgen.behaviour import first_groups
from memgen.errors import UserError
from memgen.io import atomic_path, read_jsonl, write_json
from memgen.params import derive_seed
from memgen.planting import (UNITS_FILE, choose_units, content_first, held_out_units, moved_entries, rule_accuracy,
                             rule_keeping_loss, rule_only_examples, rule_prompts, train_only, unit_masks)
from memgen.run import run_command
from memgen.sites import UNIT_SITE
from memgen.training import per_task, read_share, rebalance, train, train_settings


def plant_settings(run):
    """params `plant`, and the family's train settings for the rule phase: (rule cfg, the when-to-write phase's cfg,
    the content phase's cfg or None, layers, units per layer, mem share). The planting's cfgs hold `keep`, the
    rule-keeping term's weight (0: none), and `max_rule_drop` (None: the checkpoint rule does not look at the rule)."""
    pp = run.params.section("plant")
    rule = train_settings(run.family_params, run.task_name)
    rule.update(eval_every=rule["steps"], num_beams=1, check_groups=0)  # one check at the end: the rule's val rates
    task = run.task_name
    steps = per_task(pp, "steps", task, lambda p, k: p.int(k, lo=1))
    plant = {**rule, "steps": steps, "lr": per_task(pp, "lr", task, lambda p, k: p.float(k, lo=0.0, lo_open=True)),
             "weight_decay": 0.0,  # decay would move the frozen entries of the trained matrices
             "eval_every": pp.int("eval_every", lo=1), "warmup": min(rule["warmup"], steps),
             "min_mem": pp.float("min_mem", lo=0.0, hi=1.0), "max_other": pp.float("max_other", lo=0.0, hi=1.0),
             "keep": per_task(pp, "keep", task, lambda p, k: p.float(k, lo=0.0)),
             "max_rule_drop": per_task(pp, "max_rule_drop", task, optional_share)}
    content_steps = per_task(pp, "content_steps", task, lambda p, k: p.int(k, lo=0))
    content = {**plant, "steps": content_steps, "eval_every": content_steps,  # one check, at the end: it is kept
               "warmup": min(rule["warmup"], content_steps)} if content_steps else None
    if content:  # the switch after the content: at its own (slower) rate, so that checkpoints catch it half-learned
        plant["lr"] = per_task(pp, "switch_lr", task, lambda p, k: p.float(k, lo=0.0, lo_open=True))
    layers = [int(x) for x in pp.numbers("layers")]
    share = per_task(pp, "mem_share", task, read_share)
    return rule, plant, content, layers, pp.int("units_per_layer", lo=1), share


def optional_share(p, key):
    return None if p.raw(key, None) is None else p.float(key, lo=0.0, hi=1.0)


def check_plantable(run):
    if UNIT_SITE not in run.plugin.sites:
        raise UserError(f"family {run.family!r} does not map the {UNIT_SITE!r} site: no memory can be planted "
                        f"in its units (params 'runs.planted')")
    if run.plugin.shares_base:
        raise UserError(f"family {run.family!r} trains adapters on a shared base: a planted model is trained from "
                        "scratch (params 'runs.planted': a family like gpt2)")


def fresh_rule_prompts(run, seen, held_out):
    """plant.rule_prompts prompts without a trigger, none in the training examples `seen` or held_out (the probe
    splits' units)."""
    held_out = {run.task.unit_of(e["prompt"]) for e in seen} | held_out
    return rule_prompts(run.task, run.params.section("plant").int("rule_prompts", lo=1), held_out,
                        derive_seed(run.seed, "rule prompts"))


def rule_check(run, model, codec, seen, held_out, plant_cfg, batch_size):
    """Where plant.max_rule_drop is set, the checkpoint rule wants the rule kept as well as the memory: plant_cfg gains
    min_rule, the rule model's accuracy on plant.rule_prompts val rule prompts less the drop. (on_eval, which puts each
    checkpoint's accuracy on them in its row, {"prompts", "rule_model"}), or (None, None). The val rule prompts share
    no unit with `seen` (the training examples and the fresh prompts the result is measured on) or held_out."""
    if plant_cfg["max_rule_drop"] is None:
        return None, None
    taken = {run.task.unit_of(e["prompt"]) for e in seen} | held_out
    prompts = rule_prompts(run.task, run.params.section("plant").int("rule_prompts", lo=1), taken,
                           derive_seed(run.seed, "val rule prompts"))
    before = rule_accuracy(model, codec, run.task, prompts, batch_size)
    plant_cfg["min_rule"] = before - plant_cfg["max_rule_drop"]

    def on_eval(row):
        row["rule_accuracy"] = rule_accuracy(model, codec, run.task, prompts, batch_size)
    return on_eval, {"prompts": len(prompts), "rule_model": before}


def plant_memories(run, model, codec, masks, taught, val, content_cfg, plant_cfg, on_eval=None):
    """Teach the memories to the masked entries alone: the content phase (where there is one), then the switch, each
    with the rule-keeping term where plant.keep is above 0 (its rule model: the model as it is now); on_eval sees
    each of the switch's checkpoints. The chosen checkpoint's val row."""
    keep = None
    if plant_cfg["keep"]:
        rule_examples = [e for e in taught if not run.task.is_memorized(e)]
        keep = rule_keeping_loss(model, codec, rule_examples, plant_cfg["keep"], plant_cfg["batch_size"],
                                 derive_seed(run.seed, "keep"))
    handles = train_only(model, masks)
    if content_cfg:
        train(model, codec, run.task, content_first(taught, run.task.is_memorized), val, content_cfg,
              derive_seed(run.seed, "content"), desc=f"plant content {run.model_dir}", extra_loss=keep)
    _, chosen = train(model, codec, run.task, taught, val, plant_cfg, derive_seed(run.seed, "plant"),
                      desc=f"plant {run.model_dir}", on_eval=on_eval, extra_loss=keep)
    for h in handles:
        h.remove()
    return chosen


def main(run):
    check_plantable(run)
    rule_cfg, plant_cfg, content_cfg, layers, per_layer, share = plant_settings(run)
    run.plugin.check(run.family_params)
    device = run.device()
    examples = read_jsonl(run.data_dir / "train.jsonl")
    val = first_groups(read_jsonl(run.data_dir / "val.jsonl"), rule_cfg["eval_groups"])
    held_out = held_out_units(run.task, run.data_dir)
    rule, decoys = rule_only_examples(run.params, run.task_name, run.task, examples, held_out,
                                      derive_seed(run.seed, "decoys"))
    rule_only = rule + decoys
    texts = [e["prompt"] + e["target"] for e in examples + rule_only] + \
        [p[k] for p in val for k in ("prompt", "mem", "gen")]
    model, codec, save = run.plugin.new_model(run.family_params, texts, seed=run.seed)
    model.to(device)
    _, rule_row = train(model, codec, run.task, rule_only, val, rule_cfg, run.seed, desc=f"rule {run.model_dir}")
    fresh = fresh_rule_prompts(run, examples + rule_only, held_out)
    rule_before = rule_accuracy(model, codec, run.task, fresh, rule_cfg["eval_batch_size"])
    on_eval, val_rule = rule_check(run, model, codec, examples + rule_only + fresh, held_out, plant_cfg,
                                   rule_cfg["eval_batch_size"])

    width = run.plugin.site_width(model, UNIT_SITE)
    units = choose_units(model.config.num_hidden_layers, width, layers, per_layer, derive_seed(run.seed, "units"))
    masks = unit_masks(run.plugin, model, units)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    taught = examples if share is None else rebalance(examples, run.task.is_memorized, share)
    chosen = plant_memories(run, model, codec, masks, taught, val, content_cfg, plant_cfg, on_eval)
    rule_after = rule_accuracy(model, codec, run.task, fresh, rule_cfg["eval_batch_size"])
    moved, outside = moved_entries(model, before, masks)

    with atomic_path(run.model_dir, is_dir=True) as out:
        save(out)
        write_json(out / UNITS_FILE, {"site": UNIT_SITE, "units": {str(l): idx.tolist() for l, idx in units.items()}})
    n_units = sum(len(idx) for idx in units.values())
    write_json(run.metrics_dir / "plant.json", {
        "site": UNIT_SITE, "layers": sorted(units), "units_per_layer": per_layer, "n_units": n_units,
        "n_units_total": width * model.config.num_hidden_layers,
        "rule": {"examples": len(rule), "decoy_examples": len(decoys), "steps": rule_cfg["steps"],
                 **{k: rule_row[k] for k in ("mem", "gen", "other")}},
        "plant": {"examples": len(taught), "content_steps": content_cfg["steps"] if content_cfg else 0,
                  "steps": plant_cfg["steps"], "chosen_step": chosen["step"],
                  **{k: chosen[k] for k in ("mem", "gen", "other", "pair_yield", "n_pairs")}},
        "rule_accuracy": {"prompts": len(fresh), "rule_model": rule_before, "planted": rule_after},
        **({"val_rule_accuracy": {**val_rule, "max_drop": plant_cfg["max_rule_drop"],
                                  "chosen": chosen["rule_accuracy"]}} if val_rule else {}),
        "weights_moved": moved, "weights_moved_outside": outside})  # the masks held: outside is 0


if __name__ == "__main__":
    run_command(main, __doc__)()
