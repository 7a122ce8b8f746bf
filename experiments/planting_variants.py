"""Why a planted task loses its rule: one rule model of the plant stage (one draw, the planted side run's settings),
then the planting done several ways from that same model, each measured by its val probes (MEM, OTHER at the chosen
checkpoint), the rule accuracy on the plant stage's fresh prompts (before, after the content phase, at every
when-to-write checkpoint, after), and what the missed fresh prompts were answered with (a code, or a sum one off).
A random move of the planted units' weights as large as the planting's own says how fragile the rule is to any
change of those units. Written to metrics/sweeps/planting_variants_<task>.json (about 35 min for arithmetic on
2 CPU cores):

    .venv/bin/python experiments/planting_variants.py --task arithmetic
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import click
import torch
import yaml

# the side run's settings before the rule-keeping term (params plant.keep): the starting point of every variant
SETTINGS = {"arithmetic": {"plant.layers": "[0,1,2,3]", "plant.mem_share.arithmetic": "0.5",
                           "plant.steps.arithmetic": "400", "plant.switch_lr.arithmetic": "0.015",
                           "plant.keep.arithmetic": "0"}}

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
import plant  # noqa: E402 (stages/plant.py: the stage's own settings and fresh prompts)
from memgen.behaviour import first_groups  # noqa: E402
from memgen.generate import decode_prompts  # noqa: E402
from memgen.io import read_jsonl  # noqa: E402
from memgen.params import derive_seed  # noqa: E402
from memgen.planting import (choose_units, content_first, held_out_units, rule_accuracy,  # noqa: E402
                             rule_only_examples, train_only, unit_masks)
from memgen.run import Run  # noqa: E402
from memgen.sites import UNIT_SITE, capture_prompt_ends  # noqa: E402
from memgen.training import rebalance, train  # noqa: E402

# name -> what differs from the side run's planting (lr: the content phase's rate; switch_lr, steps: the when-to-write
# phase's; content_steps 0: one phase; units quiet: drawn among each layer's quarter least active on rule prompts;
# repeat: the memorized share reached by repeating memorized examples, every rule example kept; own_targets: the rule
# examples' targets are the rule model's own greedy answers, so planting is asked to keep the rule model, not mend it)
VARIANTS = {"as run": {}, "content lr 0.01": {"lr": 0.01},
            "switch lr 0.004, 800 steps": {"lr": 0.01, "switch_lr": 0.004, "steps": 800},
            "one phase (900 steps at 0.03)": {"content_steps": 0, "switch_lr": 0.03, "steps": 900},
            "least active units": {"units": "quiet"}, "memorized repeated": {"repeat": True},
            "rule model's own targets": {"own_targets": True}}
TRACK_PROMPTS = 150  # fresh prompts decoded at each checkpoint (all of them before and after)


def open_run(family, task, draw):
    """The planted run with the side run's settings (a params file of its own)."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    changes = {"runs.planted": f"[{family}]", "plant.tasks": f"[{task}]", **SETTINGS[task]}
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    path = Path(tempfile.mkdtemp()) / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return Run.open(family, "planted", draw, task, params_path=path), changes


def quiet_units(run, model, codec, prompts, layers, per_layer, seed):
    """per_layer units of each layer drawn among its quarter with the least mean |activation| on the prompts."""
    model.eval()
    with torch.no_grad():
        states = capture_prompt_ends(model, codec, {UNIT_SITE: run.plugin.site_modules(model, UNIT_SITE)}, prompts, 128)
    quiet = torch.argsort(states[UNIT_SITE].abs().mean(0), dim=1)[:, :states[UNIT_SITE].shape[2] // 4]
    g = torch.Generator().manual_seed(seed)
    return {layer: torch.sort(quiet[layer][torch.randperm(quiet.shape[1], generator=g)[:per_layer]]).values
            for layer in sorted(set(layers))}


def misses(run, model, codec, fresh):
    """The rule accuracy on the fresh prompts and what its misses were: a code, or a sum one off."""
    outputs = decode_prompts(model, codec, [e["prompt"] for e in fresh], 8, 200)
    codes = {run.task.answer_of(c) for c in run.task.codes.values()}
    missed = [(run.task.answer_of(o), run.task.answer_of(e["target"])) for o, e in zip(outputs, fresh)
              if run.task.answer_of(o) != run.task.answer_of(e["target"])]
    one_off = sum(a.isdigit() and abs(int(a) - int(t)) == 1 for a, t in missed)
    return {"rule_accuracy": 1 - len(missed) / len(fresh), "missed": len(missed),
            "missed_codes": sum(a in codes for a, _ in missed), "missed_one_off": one_off}


def taught_examples(run, model, codec, examples, share, variant):
    """The planting's examples: the memorized share by dropping rule examples (as the stage does) or by repeating
    memorized ones; the rule examples' targets the data's or the rule model's own."""
    if variant.get("repeat"):
        mem = [e for e in examples if run.task.is_memorized(e)]
        rule = [e for e in examples if not run.task.is_memorized(e)]
        taught = [mem[i % len(mem)] for i in range(round(len(rule) * share / (1 - share)))] + rule
    else:
        taught = rebalance(examples, run.task.is_memorized, share)
    if variant.get("own_targets"):
        rule_at = [i for i, e in enumerate(taught) if not run.task.is_memorized(e)]
        answers = decode_prompts(model, codec, [taught[i]["prompt"] for i in rule_at], 8, 200)
        for i, answer in zip(rule_at, answers):
            taught[i] = {**taught[i], "target": answer}
    return taught


def plant_variant(run, model, codec, examples, val, fresh, variant, rule):
    """Plant from the rule model (loaded beforehand) one way; its measurements."""
    _, plant_cfg, content_cfg, layers, per_layer, share = plant.plant_settings(run)
    content_cfg = {**content_cfg, "lr": variant.get("lr", content_cfg["lr"])}
    content_cfg["steps"] = content_cfg["eval_every"] = variant.get("content_steps", content_cfg["steps"])
    plant_cfg = {**plant_cfg, "lr": variant.get("switch_lr", plant_cfg["lr"]),
                 "steps": variant.get("steps", plant_cfg["steps"])}
    seed = derive_seed(run.seed, "units")
    units = quiet_units(run, model, codec, [e["prompt"] for e in rule[:512]], layers, per_layer, seed) \
        if variant.get("units") == "quiet" else \
        choose_units(model.config.num_hidden_layers, run.plugin.site_width(model, UNIT_SITE), layers, per_layer, seed)
    taught = taught_examples(run, model, codec, examples, share, variant)
    handles = train_only(model, unit_masks(run.plugin, model, units))
    if content_cfg["steps"]:
        train(model, codec, run.task, content_first(taught, run.task.is_memorized), val, content_cfg,
              derive_seed(run.seed, "content"), desc="content")
    after_content = rule_accuracy(model, codec, run.task, fresh[:TRACK_PROMPTS], 200)
    track = []

    def on_eval(row):  # the rule at each checkpoint of the when-to-write phase
        model.eval()
        track.append({"step": row["step"], "mem": row["mem"],
                      "rule_accuracy": rule_accuracy(model, codec, run.task, fresh[:TRACK_PROMPTS], 200)})
        model.train()
    _, chosen = train(model, codec, run.task, taught, val, plant_cfg, derive_seed(run.seed, "plant"), desc="plant",
                      on_eval=on_eval)
    for h in handles:
        h.remove()
    return {"variant": variant, "chosen": {k: chosen[k] for k in ("step", "mem", "gen", "other", "n_pairs")},
            "rule_accuracy_after_content": after_content, "track": track, "after": misses(run, model, codec, fresh)}


def random_move(model, state, planted_state, fresh, run, codec, draws=5):
    """The rule after moving the planted entries by random noise as large (per weight matrix) as the planting's move."""
    rates = []
    for d in range(draws):
        g = torch.Generator().manual_seed(d)
        with torch.no_grad():
            for name, p in model.named_parameters():
                delta = planted_state[name] - state[name]
                noise = torch.randn(delta.shape, generator=g) * (delta != 0)
                scale = delta.norm() / noise.norm() if noise.norm() > 0 else 0.0
                p.copy_(state[name] + noise * scale)
        rates.append(rule_accuracy(model, codec, run.task, fresh, 200))
    return rates


@click.command()
@click.option("--family", default="gpt2", show_default=True)
@click.option("--task", default="arithmetic", show_default=True, type=click.Choice(sorted(SETTINGS)))
@click.option("--draw", default=0, show_default=True)
@click.option("--out", default=None, help="default: metrics/sweeps/planting_variants_<task>.json")
def main(family, task, draw, out):
    started = time.monotonic()
    run, changes = open_run(family, task, draw)
    rule_cfg = plant.plant_settings(run)[0]
    examples = read_jsonl(run.data_dir / "train.jsonl")
    val = first_groups(read_jsonl(run.data_dir / "val.jsonl"), rule_cfg["eval_groups"])
    held_out = held_out_units(run.task, run.data_dir)
    rule, decoys = rule_only_examples(run.params, task, run.task, examples, held_out, derive_seed(run.seed, "decoys"))
    texts = [e["prompt"] + e["target"] for e in examples + rule + decoys] + \
        [p[k] for p in val for k in ("prompt", "mem", "gen")]
    model, codec, _ = run.plugin.new_model(run.family_params, texts, seed=run.seed)
    train(model, codec, run.task, rule + decoys, val, rule_cfg, run.seed, desc="rule")
    fresh = plant.fresh_rule_prompts(run, examples + rule + decoys, held_out)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    result = {"command": f"python experiments/planting_variants.py --task {task} --draw {draw}", "draw": draw,
              "changes": changes, "rule_model": misses(run, model, codec, fresh), "variants": {}}
    for name, variant in VARIANTS.items():
        model.load_state_dict(state)
        result["variants"][name] = plant_variant(run, model, codec, examples, val, fresh, variant, rule)
        if name == "as run":
            planted_state = {k: v.clone() for k, v in model.state_dict().items()}
        print(name, json.dumps(result["variants"][name]["after"]), flush=True)
    result["random_move_rule_accuracy"] = random_move(model, state, planted_state, fresh, run, codec)
    result["seconds"] = round(time.monotonic() - started, 1)
    Path(out or f"metrics/sweeps/planting_variants_{task}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
