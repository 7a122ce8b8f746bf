"""Ground truth: the ranking, the field's localizers, deletion and steering against memories planted in known
units, over the planted draws, beside Chang et al.'s published GPT-2 numbers."""
from ...experiment import NULL_NAMES
from ...stats import t_interval
from .. import paper, prose
from ..document import table
from ..figures import lines_figure
from ..format import ARROW, null_cell, p_cell, pct, rate_cell

SCORE_NAMES = {"abs_rho": "|rho| (the paper's)", "abs_nmd": "|NMD|", "discriminant": "probe weight",
               "grad_x_act": "gradient x activation", "attribution": "attribution patching",
               "activations": "activations", "zero_out": "zero-out", "integrated_gradients": "integrated gradients",
               "slimming": "slimming", "hard_concrete": "hard concrete"}
PLANTED_ARMS = {"oracle": "planted units (oracle)", "ranked": "top k by |rho|"}
FOUND_SETTINGS = {"paper": "the paper's setting", "oracle_point": "the oracle's val-chosen point"}
# A planting strong enough to judge a localizer on: most val probes answered from memory, the rule kept on fresh
# prompts, and enough MEM/GEN pairs for the paper's ranking
STRONG = {"mem": 0.8, "rule_drop": 0.05, "pairs": 100}


def planted_section(ctx):
    """The planted draws, then per task (the default's, and any side run's): the localizers over its draws, the
    oracle against |rho| and what each score found, steered."""
    runs = {**ctx.planted, **ctx.planted_side}
    if not runs:
        return []
    measured = {name: run for name, run in runs.items() if "skipped" not in run["localize"]}
    panels = {name: recall_lines(run["localize"]) if name in measured else "no MEM/GEN pairs on the planted model"
              for name, run in runs.items()}
    lines_figure(ctx.figures / "planted_recall.png", "Planted units found in the top k, by score (k log scale)", panels,
                 "k (units taken from the top)", "% of planted units found", log_x=True)
    sides = sorted({run["side"] for run in runs.values() if "side" in run})
    bar = {"mem": pct(STRONG["mem"], 0), "rule_drop": pct(STRONG["rule_drop"], 0), "pairs": STRONG["pairs"]}
    blocks = [("h2", "Ground truth: memories planted in known units"), ("p", prose.PLANTED.format(**bar)),
              table(["planted run", "planted units", "rule model GEN / planted MEM / OTHER (val %)",
                     "rule accuracy, fresh prompts: rule model / planted %", "pairs", "strong planting",
                     "random ranking: recall / AUROC 95 %", "top k by |rho|, units per layer"],
                    [draw_row(name, run) for name, run in runs.items()]),
              *([("p", prose.PLANTED_SIDE.format(commands="; ".join(f"`{c}`" for c in sides)))] if sides else []),
              *variants_section(ctx.sweeps),
              ("img", "figures/planted_recall.png", "planted units found in the top k"),
              ("p", prose.LOCALIZERS), ("p", prose.PLANTED_STEER), ("p", prose.PLANTED_FOUND)]
    for task, task_runs in by_task(measured).items():
        side = " (side run)" if any("side" in run for run in task_runs.values()) else ""
        blocks += [("h3", f"{task}: {len(task_runs)} planted draw(s){side}"),
                   table(["score", "recall in the top k %: mean [95 % t interval] (per draw)",
                          "AUROC: mean [95 % interval]", "deletion: MEM kept % (mean)", "deletion: GEN kept % (mean)",
                          "Chang et al., GPT-2: recall %"], localizer_rows(task_runs)),
                   table(["planted run", "direction", *[f"{v}: success" for v in PLANTED_ARMS.values()],
                          f"{NULL_NAMES['random_neurons']} (beside the ranked units): success, p ranked > it",
                          *[f"{v}: OTHER %" for v in PLANTED_ARMS.values()], "p oracle > ranked",
                          "val-chosen schedule and alpha"], steer_rows(task_runs), merged=1),
                   *found_section(task_runs)]
    return blocks


def by_task(runs):
    """{task: {name: run}} in the runs' order (a planted run's name ends with its task)."""
    grouped = {}
    for name, run in runs.items():
        grouped.setdefault(name.rsplit("/", 1)[1], {})[name] = run
    return grouped


def found_section(measured):
    """Each score's top k steered at the paper's setting and at the oracle's point, over the draws."""
    locs = [run["localize"] for run in measured.values() if run["localize"].get("found")]
    if not locs:
        return []
    return [table(["setting", "direction", "units steered", "success %: mean [95 % t interval] (per draw)",
                   "OTHER %: mean", "p oracle > it (per draw)", "test probes per draw (power for 10 points)"],
                  found_rows(locs), merged=2)]


def found_rows(locs):
    rows = []
    for setting, label in FOUND_SETTINGS.items():
        for d in ARROW:
            cells = [loc["found"][setting][d] for loc in locs]
            for arm in ("oracle", *SCORE_NAMES, "random_neurons"):
                runs = [c[arm] for c in cells if c[arm].get("n")]
                success = [r["success"] for r in runs]
                name = {"oracle": PLANTED_ARMS["oracle"], "random_neurons": NULL_NAMES["random_neurons"] +
                        " as the oracle's"}.get(arm, SCORE_NAMES.get(arm))
                power = ", ".join(f"{c['n']} ({pct(c['power_10_points'], 0)} %)" if c["n"] else "0" for c in cells)
                rows.append([label, ARROW[d], name,
                             f"{interval_cell(t_interval(success, bounds=(0, 1)), 100)} "
                             f"({', '.join(pct(v, 0) for v in success)})" if runs else "-",
                             mean_cell(runs, "other"),
                             ", ".join(p_cell(r.get("p_oracle_greater")) for r in runs) if arm in SCORE_NAMES else "-",
                             power if arm == "oracle" else ""])
    return rows


def draw_row(name, run):
    loc, plant = run["localize"], run["plant"]
    rule, taught, c = plant["rule"], plant["plant"], loc["chance"]
    layers = ", ".join(map(str, plant["layers"]))
    accuracy = plant.get("rule_accuracy")
    head = [name + (" (side run)" if "side" in run else ""), f"{loc['n_planted']} of {loc['n_units']} (layers {layers})",
            f"{pct(rule['gen'])} / {pct(taught['mem'])} / {pct(taught['other'])}",
            f"{pct(accuracy['rule_model'])} / {pct(accuracy['planted'])}" if accuracy else "-", loc["n_pairs"],
            strength(taught["mem"], accuracy, loc["n_pairs"])]
    if "skipped" in loc:
        return head + ["-", "-"]
    return head + [f"{pct(c['recall'], 1)} % (p95 {pct(c['recall_p95'], 0)} %) / {c['auroc_band'][0]:.2f}-"
                   f"{c['auroc_band'][1]:.2f}", f"{', '.join(map(str, loc['scores']['abs_rho']['top_k_by_layer']))} "
                   f"(planted: {', '.join(map(str, loc['planted_by_layer']))})"]


def strength(mem, accuracy, n_pairs):
    """Whether a planting meets STRONG, or what it misses."""
    missed = [f"val MEM under {pct(STRONG['mem'], 0)} %"] if mem < STRONG["mem"] else []
    if accuracy is None:
        missed.append("rule accuracy not measured")
    elif accuracy["rule_model"] - accuracy["planted"] > STRONG["rule_drop"]:
        missed.append(f"rule accuracy down more than {pct(STRONG['rule_drop'], 0)} points")
    if n_pairs < STRONG["pairs"]:
        missed.append(f"under {STRONG['pairs']} pairs")
    return "yes" if not missed else "no: " + "; ".join(missed)


def variants_section(sweeps):
    """Per task with a metrics/sweeps/planting_variants_<task>.json: the planting done several ways from one rule
    model, what each keeps of the rule (experiments/planting_variants.py)."""
    blocks = []
    for stem, sweep in sweeps.items():
        if stem.startswith("planting_variants_"):
            task = stem.removeprefix("planting_variants_")
            blocks += [("h3", f"{task}: the planting done several ways from one rule model (draw {sweep['draw']}, "
                              "side run)"),
                       ("p", prose.PLANTING_VARIANTS.format(command=sweep["command"])),
                       table(["planting", "val MEM / OTHER % (chosen step)", "rule accuracy after the content phase %",
                              "rule accuracy over the when-to-write checkpoints %: lowest / highest",
                              "rule accuracy, planted %", "misses: a code / a sum one off"], variant_rows(sweep))]
    return blocks


def variant_rows(sweep):
    base = sweep["rule_model"]
    rows = [["the rule model (no planting)", "-", "-", "-", pct(base["rule_accuracy"]),
             f"{base['missed_codes']} / {base['missed_one_off']} of {base['missed']}"]]
    for name, v in sweep["variants"].items():
        after, chosen, track = v["after"], v["chosen"], [t["rule_accuracy"] for t in v["track"]]
        rows.append([name, f"{pct(chosen['mem'])} / {pct(chosen['other'])} (step {chosen['step']})",
                     pct(v["rule_accuracy_after_content"]) if v["variant"].get("content_steps", 1) else "- (one phase)",
                     f"{pct(min(track))} / {pct(max(track))}",
                     pct(after["rule_accuracy"]),
                     f"{after['missed_codes']} / {after['missed_one_off']} of {after['missed']}"])
    moved = sweep["random_move_rule_accuracy"]
    rows.append([f"no planting: the planted entries moved at random, as far as the 'as run' planting moved them "
                 f"({len(moved)} draws)", "-", "-", "-",
                 f"{pct(sum(moved) / len(moved))} (range {pct(min(moved))}-{pct(max(moved))})", "-"])
    return rows


def localizer_rows(measured):
    """Per score over the draws: recall and AUROC with t intervals, the deletion test's means; then the planted
    units themselves and random sets of k units in the deletion test, and a random ranking's recall."""
    locs = [run["localize"] for run in measured.values()]
    rows = []
    for key, name in SCORE_NAMES.items():
        recall = t_interval([loc["scores"].get(key, {}).get("recall") for loc in locs], bounds=(0, 1))
        auroc = t_interval([loc["scores"].get(key, {}).get("auroc") for loc in locs], bounds=(0, 1))
        kept = [loc.get("deletion", {}).get("arms", {}).get(key, {}) for loc in locs]
        rows.append([name, f"{interval_cell(recall, 100)} ({', '.join(pct(v, 0) for v in recall_values(locs, key))})",
                     interval_cell(auroc, 1, 3), mean_cell(kept, "mem_kept"), mean_cell(kept, "gen_kept"),
                     paper.CHANG_GPT2_RECALL.get(key, "-")])
    planted = [loc.get("deletion", {}).get("arms", {}).get("planted", {}) for loc in locs]
    rows.append(["the planted units (knocked out)", "-", "-", mean_cell(planted, "mem_kept"),
                 mean_cell(planted, "gen_kept"), "-"])
    random = [{k: sum(v) / len(v) for k, v in loc["deletion"]["random"].items() if v}
              for loc in locs if loc.get("deletion")]
    chance = t_interval([loc["chance"]["recall"] for loc in locs], bounds=(0, 1))
    rows.append(["random (ranking; k random units knocked out)", interval_cell(chance, 100), "0.500",
                 mean_cell(random, "mem_kept"), mean_cell(random, "gen_kept"), paper.CHANG_GPT2_RECALL["random"]])
    return rows


def recall_values(locs, key):
    return [loc["scores"][key]["recall"] for loc in locs if key in loc["scores"]]


def interval_cell(est, scale, digits=1):
    if est["mean"] is None:
        return "-"
    fmt = (lambda x: f"{scale * x:.{digits}f}")
    return fmt(est["mean"]) + ("" if est["lo"] is None else f" [{fmt(est['lo'])}, {fmt(est['hi'])}]")


def mean_cell(dicts, key):
    values = [d[key] for d in dicts if d.get(key) is not None]
    return pct(sum(values) / len(values)) if values else "-"


def recall_lines(loc):
    ks = sorted(int(k) for k in loc["chance_at"])
    return {**{SCORE_NAMES[key]: (ks, [100 * loc["scores"][key]["recall_at"][str(k)] for k in ks], f"C{i % 10}o-")
               for i, key in enumerate(SCORE_NAMES) if key in loc["scores"]},
            "random ranking": (ks, [100 * loc["chance_at"][str(k)] for k in ks], "k--")}


def steer_rows(measured):
    rows = []
    for name, run in measured.items():
        for d, arms in run["localize"]["steering"].items():
            points = ", ".join(f"{arm} {p['schedule']} alpha {p['alpha']}" for arm, p in arms["point"].items())
            rows.append([name, ARROW[d], *[rate_cell(arms[a]) for a in PLANTED_ARMS],
                         null_cell(arms.get("random_neurons")), *[pct(arms[a]["other"]) for a in PLANTED_ARMS],
                         p_cell(arms["ranked"]["p_oracle_greater"]), points])
    return rows
