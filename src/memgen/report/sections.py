"""The report's sections, one function each: (context) -> blocks. The context holds every metric
file the pipeline wrote, read once (see __init__.py)."""
from ..stats import mean_and_spread
from ..steering import ARMS, CONTROL_NAMES, CONTROLS, DIRECTIONS, TARGETED
from . import paper, prose
from .figures import controls_figure, dose_response_panels, layer_panels, lines_figure
from .format import ARROW, pct, point_cell, rate_cell, separated

SETTINGS = {"chosen": "the val-chosen point", "paper": "the paper's setting"}


def header(ctx):
    p = ctx.params
    grid = "; ".join(f"{k} {p.raw(k)}" for k in ("schedule", "site", "vector", "topN", "alpha"))
    steer = p.section("steer")
    return [("h1", "memgen report"), ("p", prose.INTRO),
            ("p", f"seed = {p.raw('seed')}, replicates = {ctx.reps}."),
            ("p", prose.training(ctx.training_parts(), paper.TRAINING)),
            ("p", prose.INTERVENTION),
            ("p", f"The grid searched on val: {grid}; the adaptive ladder {steer.raw('alpha_ladder')}. The rule: "
                  f"{ctx.rule()}. The paper's setting, measured beside it: {paper.SETTING} "
                  f"(steer.paper: {steer.raw('paper')}).")]


def data_section(ctx):
    rows = [[task, *[d["prompts"][part] for part in ("train", "val", "probe", "test")], sum(d["overlap"].values())]
            for task, d in ctx.data.items()]
    return [("h2", "Held-out splits"),
            ("table", ["task", "train prompts", "val", "probe", "test", "prompts shared between parts"], rows)]


def behaviour_section(ctx):
    rows = []
    for n, r in ctx.runs.items():
        sites = r["neurons"]["sites"]
        rows.append([n, r["train"]["chosen_step"], pct(r["probe"]["mem"]), pct(r["probe"]["gen"]),
                     pct(r["probe"]["other"]), pct(r["probe"]["pair_yield"]), r["probe"]["n_pairs"],
                     *[chance_cell(sites[s]) for s in ctx.sites],
                     "yes" if ctx.above_chance(n) else "no (at chance)"])
    return [("h2", "Behaviour, pairs and the ranking's chance level"), ("p", prose.CHANCE),
            ("table", ["run", "checkpoint step", "MEM %", "GEN %", "OTHER %", "pair yield %", "pairs",
                       *[f"{s}: max |rho| / null p95 / above" for s in ctx.sites], "evidence"], rows)]


def chance_cell(site):
    if site["null_p95"] is None:
        return "-"
    return f"{site['max_abs_rho']:.3f} / {site['null_p95']:.3f} / {site['n_above']}"


def operating_point_section(ctx):
    rows = []
    for n, s in ctx.steered.items():
        for d in DIRECTIONS:
            op = s["operating_point"][d]
            val = op["val"]
            if not s["searched"]:
                why = "search off for this family" if s["above_chance"] else "ranking at chance"
                rows.append([n, ARROW[d], f"not searched ({why}): the paper's setting", "-", "-", "-"])
                continue
            rows.append([n, ARROW[d], point_cell(op["point"]), rate_cell(val), pct(val and val["other"]),
                         "yes" if op["within_other"] else "no: least OTHER" if val else "no val probe: paper's"])
    return [("h2", "The operating point, chosen on val"),
            ("table", ["run", "direction", "chosen point", "val success % [95 % CI] (k/n)", "val OTHER %",
                       f"OTHER <= {ctx.max_other():g}"], rows)]


def controls_section(ctx, setting):
    rows, panels = [], {}
    for n, s in ctx.steered.items():
        tests = s["test"][setting]
        panels[n] = tests
        for d in DIRECTIONS:
            t = tests[d]
            point = s["operating_point"][d]["point"] if setting == "chosen" else s["paper_point"]
            rows.append([n, ARROW[d], point_cell(point), *[rate_cell(t[a]) for a in ARMS],
                         pct(t[TARGETED]["other"]), beats_every_control(t),
                         "" if ctx.above_chance(n) else "not evidence (at chance)"])
    figure = f"controls_{setting}.png"
    if panels:
        controls_figure(ctx.figures / figure, panels,
                        f"Test success at {SETTINGS[setting]}: targeted vs controls (95 % Wilson intervals)")
    title = "Steering at the chosen point against the controls" if setting == "chosen" else \
        "The paper's setting against the controls"
    return [("h2", title), ("p", prose.CONTROLS) if setting == "chosen" else ("p", paper.SETTING + "."),
            ("table", ["run", "direction", "point", TARGETED, *[CONTROL_NAMES[c] for c in CONTROLS],
                       "OTHER % (targeted)", "CI above every control", "note"], rows),
            ("img", f"figures/{figure}", f"targeted vs controls at {SETTINGS[setting]}")]


def beats_every_control(tests):
    if not tests[TARGETED]["n"]:
        return "-"
    return "yes" if all(separated(tests[TARGETED], tests[c]) for c in CONTROLS) else "no"


def two_ways_section(ctx):
    rows = [[n, ARROW[d], *[rate_cell(s["test"][setting][d][TARGETED], key) for setting in SETTINGS
                            for key in ("success", "route")]]
            for n, s in ctx.steered.items() for d in DIRECTIONS]
    return [("h2", "Success two ways"), ("p", prose.TWO_WAYS),
            ("table", ["run", "direction", "chosen: exact answer", "chosen: left the source",
                       "paper's: exact answer", "paper's: left the source"], rows)]


def dose_section(ctx):
    searched = {n: s for n, s in ctx.steered.items() if s["searched"]}
    if not searched:
        return []
    lines_figure(ctx.figures / "dose_response.png", "Share of test probes moved (dashed) and moved to the target "
                 "(solid) by alpha", dose_response_panels(searched), "alpha", "%", log_x=True)
    return [("h2", "Dose-response of the adaptive strength"), ("p", prose.DOSE),
            ("img", "figures/dose_response.png", "dose-response")]


def layers_section(ctx):
    rows = [[n, l["layer"], *[f"{l[f'n_neurons_{d}']}: {rate_cell(l[d])}" for d in DIRECTIONS]]
            for n, s in ctx.steered.items() for l in s["layers"]]
    if ctx.steered:
        lines_figure(ctx.figures / "steer_layers.png", "One layer at a time: success by layer",
                     layer_panels(ctx.steered), "layer", "success %")
    return [("h2", "Per-layer ablation"), ("p", prose.LAYERS),
            ("table", ["run", "layer", "M->G: neurons: success", "G->M: neurons: success"], rows),
            ("img", "figures/steer_layers.png", "success by layer")]


def other_section(ctx):
    rows = [[n, ARROW[d], setting, e["prompt"], e["mem"], e["gen"], e["output"]]
            for n, s in ctx.steered.items() for d in DIRECTIONS for setting in SETTINGS
            for e in s["test"][setting][d][TARGETED]["other_examples"]
            if setting == "chosen" or s["searched"]]  # unsearched: the two settings are one
    return [("h2", "Outputs that broke to OTHER"), ("p", prose.OTHER),
            ("table", ["run", "direction", "setting", "prompt", "MEM answer", "GEN answer", "output"],
             rows or [["none"] * 7])]


def search_section(ctx):
    rows = []
    for n, table in ctx.searches.items():
        if not table["searched"]:
            continue
        for d in DIRECTIONS:
            best = {}
            for row in table[d]:
                key = (row["schedule"], row["site"], row["vector"])
                if row["n"] and (key not in best or row["success"] > best[key]["success"]):
                    best[key] = row
            rows += [[n, ARROW[d], *key, f"topN {r['topN']:g}, alpha {r['alpha']}", rate_cell(r), pct(r["other"])]
                     for key, r in best.items()]
    return [("h2", "The design space on val"), ("p", prose.SEARCH),
            ("table", ["run", "direction", "schedule", "site", "vector", "best at", "val success", "OTHER %"], rows)]


def replicate_section(ctx):
    rows = []
    for family in ctx.families:
        for task in ctx.tasks:
            group = [ctx.runs[f"{family}/{task}/r{r}"] for r in ctx.reps]
            agg = {"pair_yield": mean_and_spread([g["probe"]["pair_yield"] for g in group])}
            for setting in SETTINGS:
                for d in DIRECTIONS:
                    agg[f"{setting}_{d}"] = mean_and_spread(
                        [g["steer"]["test"][setting][d][TARGETED]["success"] for g in group if "test" in g["steer"]])
            ctx.aggregate[f"{family}/{task}"] = agg
            rows.append([f"{family}/{task}", len(group), spread_cell(agg["pair_yield"]),
                         *[spread_cell(agg[f"{s}_{d}"]) for s in SETTINGS for d in DIRECTIONS]])
    return [("h2", "Replicate seeds (mean ± sd)"),
            ("table", ["family/task", "replicates", "pair yield %",
                       *[f"{s} {ARROW[d]} %" for s in SETTINGS for d in DIRECTIONS]], rows)]


def spread_cell(s):
    """'12.3 ± 4.5 (n=3)' from mean_and_spread's dict."""
    return "-" if s["mean"] is None else f"{pct(s['mean'])} ± {pct(s['std'])} (n={s['n']})"


def comparison_section(ctx, kind):
    blocks = [("h2", "Consistency across replicate seeds (intra)" if kind == "intra" else "Transfer across tasks (inter)"),
              ("p", (prose.INTRA if kind == "intra" else prose.INTER) + " " + prose.COMPARISON_POINTS)]
    for name, comp in getattr(ctx, kind).items():
        blocks.append(("h3", name if kind == "intra" else f"{name} ({comp['model']})"))
        for setting in ("paper", "transfer"):
            blocks += matrix_blocks(comp, setting, f"{name} at {point_cell(comp[setting]['point'])}")
    return blocks


def matrix_blocks(comparison, setting, label):
    """Tables of one intra/inter comparison at one point: success (source rows -> target columns) and Jaccard."""
    names, result = comparison["runs"], comparison[setting]
    header = ["neurons from \\ model of", *names]
    blocks = []
    for d in DIRECTIONS:
        rows = [[s, *[rate_cell(result[d][s][t]) for t in names]] for s in names]
        blocks += [("p", f"{label}: {ARROW[d]} success % [95 % CI] (k/n)"), ("table", header, rows)]
    jac = [[s, *["-" if result["jaccard"][s][t] is None else f"{result['jaccard'][s][t]:.2f}" for t in names]]
           for s in names]
    return blocks + [("p", f"{label}: Jaccard overlap of the selected neuron sets"), ("table", header, jac)]


def predict_section(ctx):
    rows, panels = [], {}
    for n, r in ctx.runs.items():
        p = r["predict"]
        if "skipped" in p:
            rows.append([n, p["n_pairs"], p["skipped"], "", ""])
            continue
        family, rest = n.split("/", 1)
        for site, accs in p["by_layer"].items():
            best = max(range(len(accs)), key=lambda i: accs[i])
            rows.append([n, f"{p['n_train_pairs']}/{p['n_test_pairs']}", f"{site}: " + " ".join(pct(a, 0) for a in accs),
                         f"{best} ({pct(accs[best])})", pct(p["bag_of_tokens"])])
            panels.setdefault(family, {})[f"{rest} {site}"] = (list(range(len(accs))), [100 * a for a in accs], "o-")
        layers = list(range(len(next(iter(p["by_layer"].values())))))
        panels[family][f"{rest} tokens"] = (layers, [100 * p["bag_of_tokens"]] * len(layers), "--")
    blocks = [("h2", "Behaviour prediction (linear classifiers)"), ("p", prose.PREDICT),
              ("table", ["run", "pairs train/test", "accuracy % by layer", "best layer (%)", "bag of tokens %"], rows)]
    if panels:
        lines_figure(ctx.figures / "predict.png", "Held-out accuracy: state classifier by layer vs bag of tokens", panels,
                     "layer", "accuracy %")
        blocks.append(("img", "figures/predict.png", "behaviour prediction by layer"))
    return blocks


def against_paper_section(ctx):
    """Ours beside the paper's headline numbers, counting only runs whose ranking beats chance."""
    evidence = {n: s for n, s in ctx.steered.items() if ctx.above_chance(n)}
    left_out = [n for n in ctx.steered if n not in evidence]
    rows, lines = [], []
    for setting in SETTINGS:
        for d in DIRECTIONS:
            measured = [(n, s["test"][setting][d][TARGETED]) for n, s in evidence.items()
                        if s["test"][setting][d][TARGETED]["n"]]
            values = [r["success"] for _, r in measured]
            lo, hi = paper.SUCCESS[d]
            ours = f"{pct(min(values))}-{pct(max(values))} % over {len(values)} runs" if values else "no runs"
            rows.append([f"{ARROW[d]} success, {SETTINGS[setting]}", f"{pct(lo)}-{pct(hi)} %", ours])
            if values:
                within = [f"{n} ({r['k']}/{r['n']})" for n, r in measured if lo <= r["success"] <= hi]
                lines.append(f"{ARROW[d]} at {SETTINGS[setting]}: {sum(v < lo for v in values)} of {len(values)} runs "
                             f"fall below the paper's range, {sum(v > hi for v in values)} above, {len(within)} within"
                             + (f" ({', '.join(within)})." if within else "."))
        pairs = [(s["test"][setting][d]) for s in evidence.values() for d in DIRECTIONS
                 if s["test"][setting][d][TARGETED]["n"]]
        above = sum(all(separated(t[TARGETED], t[c]) for c in CONTROLS) for t in pairs)
        rows.append([f"targeted above every control (95 % CIs apart), {SETTINGS[setting]}",
                     paper.CLAIMS["random"], f"{above} of {len(pairs)} run-directions"])
        both = [s["test"][setting] for s in evidence.values() if all(s["test"][setting][d][TARGETED]["n"]
                                                                    for d in DIRECTIONS)]
        easier = sum(t["m2g"][TARGETED]["success"] > t["g2m"][TARGETED]["success"] for t in both)
        rows.append([f"M->G easier than G->M, {SETTINGS[setting]}", paper.CLAIMS["m2g_easier"], f"{easier} of {len(both)} runs"])
    for task, value in paper.PAIR_YIELD.items():
        ours = [r["probe"]["pair_yield"] for n, r in ctx.runs.items() if n.split("/")[1] == task]
        rows.append([f"pair yield, {task}", f"~{pct(value)} % (earlier version)", ", ".join(f"{pct(v)} %" for v in ours)
                     or "no runs"])
    note = (f"Left out as not evidence (selection at chance): {', '.join(left_out)}." if left_out else
            "Every steered run's selection beats chance.")
    return [("h2", "Against the paper"), ("table", ["claim", "paper", "ours"], rows), ("p", " ".join(lines)),
            ("p", note)]


def heatmaps_section(ctx):
    return [("h2", "NMD heatmaps (the paper's site)"),
            *[("img", f"plots/nmd_heatmap/{n.replace('/', '-')}.png", f"{n}: sorted NMD per layer") for n in ctx.runs]]


def notes_section(ctx):
    return [("h2", "Notes"), ("p", prose.NOTES)]


SECTIONS = (header, data_section, behaviour_section, operating_point_section,
            lambda ctx: controls_section(ctx, "chosen"), lambda ctx: controls_section(ctx, "paper"),
            two_ways_section, dose_section, layers_section, other_section, search_section, replicate_section,
            lambda ctx: comparison_section(ctx, "intra"), lambda ctx: comparison_section(ctx, "inter"),
            predict_section, against_paper_section, heatmaps_section, notes_section)
