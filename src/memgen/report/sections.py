"""The report's sections, one function each: (context) -> blocks. The context holds every metric
file the pipeline wrote, read once (see __init__.py)."""
import pandas as pd

from ..methods import ARMS as METHOD_ARMS, LABELS as METHOD_LABELS, NAMES as METHOD_NAMES, PAPER
from ..stats import mean_and_spread
from ..steering import CONTROL_NAMES, CONTROLS, DIRECTIONS, TARGETED
from . import paper, prose
from .document import table
from .figures import controls_figure, dose_response_panels, layer_panels, lines_figure
from .format import ARROW, p_cell, pct, point_cell, rate_cell, separated
from .headline import strongest_site

SETTINGS = {"chosen": "the val-chosen point", "paper": "the paper's setting"}


def answer_section(ctx):
    """The report's first screen: per run and direction, did steering work, against what, at which point."""
    rows = [[n, chance_level(run), ARROW[d], *answer_cells(ctx, n, d)] for n, run in ctx.runs.items() for d in DIRECTIONS]
    columns = ["run", "max |rho| vs null p95 (site)", "direction", "chosen point: success % [95 % CI] (k/n)",
               "paper's setting", "paper's range %", "highest control at the chosen point", "p (exact) vs it",
               "verdict"]
    return [("h1", "memgen report"), ("p", prose.LEAD), ("p", tally(ctx)), table(columns, rows, merged=2),
            controls_figure_block(ctx, "chosen")]


def chance_level(run):
    if not run["probe"]["n_pairs"]:
        return "no pairs"
    site, s = strongest_site(run["neurons"])
    if s["null_p95"] is None:
        return f"{s['max_abs_rho']:.3f} ({site}), no null"
    return f"{s['max_abs_rho']:.3f} vs {s['null_p95']:.3f} ({site})" + (
        "" if s["max_abs_rho"] > s["null_p95"] else ": at chance")


def answer_cells(ctx, name, d):
    """Success at both settings, the paper's range, the strongest control and the verdict of one run-direction."""
    span = "-".join(pct(x) for x in paper.SUCCESS[d])
    steer = ctx.runs[name]["steer"]
    if "skipped" in steer or not steer["test"]["chosen"][d][TARGETED]["n"]:
        return ["-", "-", span, "-", "-", verdict(ctx, name, d)]
    chosen = steer["test"]["chosen"][d]
    top = max(CONTROLS, key=lambda c: chosen[c]["success"])
    return [rate_cell(chosen[TARGETED]), rate_cell(steer["test"]["paper"][d][TARGETED]), span,
            f"{CONTROL_NAMES[top]}: {rate_cell(chosen[top])}", p_cell(chosen[top].get("p_exact")),
            verdict(ctx, name, d)]


def verdict(ctx, name, d):
    """One line: the success at the chosen point against the controls, and the paper's setting against the
    paper's range; or why there is nothing to judge."""
    steer = ctx.runs[name]["steer"]
    if "skipped" in steer:
        return "no MEM/GEN pairs: not steered"
    chosen, paper_tests = (steer["test"][setting][d] for setting in SETTINGS)
    if not chosen[TARGETED]["n"]:
        return "no test probe shows the source behaviour: not measured"
    if not ctx.above_chance(name):
        return "ranking at chance: not evidence"
    at_paper = f"the paper's setting {pct(paper_tests[TARGETED]['success'], 0)} %: {in_range(paper_tests, d)}"
    if not steer["searched"]:  # the chosen point is the paper's setting
        return f"not searched; {at_paper}, {against_controls(paper_tests)}"
    return f"chosen {pct(chosen[TARGETED]['success'], 0)} %: {against_controls(chosen)}, {in_range(chosen, d)}; {at_paper}"


def in_range(tests, d):
    lo, hi = paper.SUCCESS[d]
    success = tests[TARGETED]["success"]
    return f"{'below' if success < lo else 'above' if success > hi else 'within'} the paper's range"


def against_controls(tests):
    overlaps = [CONTROL_NAMES[c] for c in CONTROLS if not separated(tests[TARGETED], tests[c])]
    return "above every control" if not overlaps else f"CI overlaps {', '.join(overlaps)}"


def tally(ctx):
    """The report's second line: how many runs count as evidence and what they show."""
    evidence = [s for n, s in ctx.steered.items() if ctx.above_chance(n)]
    measured = [(d, s["test"]) for s in evidence for d in DIRECTIONS if s["test"]["chosen"][d][TARGETED]["n"]]
    above = sum(all(separated(t["chosen"][d][TARGETED], t["chosen"][d][c]) for c in CONTROLS) for d, t in measured)
    within = sum(paper.SUCCESS[d][0] <= t["paper"][d][TARGETED]["success"] <= paper.SUCCESS[d][1] for d, t in measured)
    return (f"{len(evidence)} of {len(ctx.runs)} runs rank neurons above chance (the others are reported, not "
            f"counted). Of their {len(measured)} run-directions, {above} beat every control at the chosen point (95 % "
            f"CIs apart) and {within} reach the paper's range at the paper's setting.")


def setup_section(ctx):
    p = ctx.params
    grid = "; ".join(f"{k} {p.raw(k)}" for k in ("schedule", "site", "vector", "topN", "alpha"))
    steer = p.section("steer")
    return [("h2", "Setup"), ("p", prose.INTRO),
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
            table(["task", "train prompts", "val", "probe", "test", "prompts shared between parts"], rows)]


def behaviour_section(ctx):
    rows = []
    for n, r in ctx.runs.items():
        sites = r["neurons"]["sites"]
        rows.append([n, r["train"]["chosen_step"], pct(r["probe"]["mem"]), pct(r["probe"]["gen"]),
                     pct(r["probe"]["other"]), pct(r["probe"]["pair_yield"]), r["probe"]["n_pairs"],
                     *[chance_cell(sites[s]) for s in ctx.sites],
                     "yes" if ctx.above_chance(n) else "no (at chance)"])
    return [("h2", "Behaviour, pairs and the ranking's chance level"), ("p", prose.CHANCE),
            table(["run", "checkpoint step", "MEM %", "GEN %", "OTHER %", "pair yield %", "pairs",
                   *[f"{s}: max |rho| / null p95 / above" for s in ctx.sites], "evidence"], rows),
            *[("p", screen_note(n, r["probe"])) for n, r in ctx.runs.items() if "screen" in r["probe"]]]


def screen_note(name, probe):
    """What the route screen of a run's probe stage did, and how it agreed with full decoding."""
    s = probe["screen"]
    agree = "none decoded MEM or GEN" if s["routes_agree"] is None else \
        f"{pct(s['routes_agree'])} % of the {s['check_prompts_told']} decoded MEM or GEN were screened to that route"
    return (f"{name}: the route screen read the first answer token of {s['prompts_screened']} prompts and decoded in "
            f"full the {s['groups_can_pair']} of {probe['n_groups']} groups that can pair, and the first "
            f"{s['check_groups']} (whose {probe['n_prompts']} prompts give the MEM/GEN/OTHER shares). On those: "
            f"{agree}; {s['pairs_missed']} of their {s['check_pairs']} pairs lay in a group the screen would skip.")


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
                rows.append([n, ARROW[d], f"not searched ({not_searched(s)}): the paper's setting", "-", "-", "-"])
                continue
            rows.append([n, ARROW[d], point_cell(op["point"]), rate_cell(val), pct(val and val["other"]),
                         "yes" if op["within_other"] else "no: least OTHER" if val else "no val probe: paper's"])
    return [("h2", "The operating point, chosen on val"),
            table(["run", "direction", "chosen point", "val success % [95 % CI] (k/n)", "val OTHER %",
                   f"OTHER <= {ctx.max_other():g}"], rows, merged=1)]


def not_searched(steer):
    return "search off for this family" if steer["above_chance"] else "ranking at chance"


def panel_names(ctx):
    """{run: its panel title}: a run whose ranking is at chance says so on its panel."""
    return {n: n if "skipped" in r["steer"] or ctx.above_chance(n) else f"{n} (ranking at chance)"
            for n, r in ctx.runs.items()}


def controls_figure_block(ctx, setting):
    names = panel_names(ctx)
    panels = {names[n]: r["steer"]["test"][setting] if "skipped" not in r["steer"] else "no MEM/GEN pairs: not steered"
              for n, r in ctx.runs.items()}
    figure = f"controls_{setting}.png"
    controls_figure(ctx.figures / figure, panels,
                    f"Test success at {SETTINGS[setting]}: targeted vs the 4 controls (95 % Wilson intervals)")
    return ("img", f"figures/{figure}", f"targeted vs controls at {SETTINGS[setting]}")


def controls_section(ctx, setting):
    rows = []
    for n, s in ctx.steered.items():
        tests = s["test"][setting]
        for d in DIRECTIONS:
            t = tests[d]
            point = s["operating_point"][d]["point"] if setting == "chosen" else s["paper_point"]
            rows.append([n, ARROW[d], point_cell(point), rate_cell(t[TARGETED]), *[control_cell(t[c]) for c in CONTROLS],
                         pct(t[TARGETED]["other"]), beats_every_control(t),
                         "" if ctx.above_chance(n) else "not evidence (at chance)"])
    if setting == "chosen":
        title, lead, figure = ("Steering at the chosen point against the controls",
                               prose.CONTROLS + " The figure is at the top.", [])
    else:
        title, lead, figure = "The paper's setting against the controls", paper.SETTING + ".", [
            controls_figure_block(ctx, setting)]
    return [("h2", title), ("p", lead),
            table(["run", "direction", "point", TARGETED, *[CONTROL_NAMES[c] for c in CONTROLS],
                   "OTHER % (targeted)", "CI above every control", "note"], rows, merged=1), *figure]


def control_cell(rates):
    """A control's rate with the exact test's p-value that the targeted steer beats it."""
    cell = rate_cell(rates)
    return cell if cell == "-" or rates.get("p_exact") is None else f"{cell}, p {p_cell(rates['p_exact'])}"


def beats_every_control(tests):
    if not tests[TARGETED]["n"]:
        return "-"
    return "yes" if all(separated(tests[TARGETED], tests[c]) for c in CONTROLS) else "no"


def two_ways_section(ctx):
    rows = [[n, ARROW[d], *[rate_cell(s["test"][setting][d][TARGETED], key) for setting in SETTINGS
                            for key in ("success", "route")]]
            for n, s in ctx.steered.items() for d in DIRECTIONS]
    return [("h2", "Success two ways"), ("p", prose.TWO_WAYS),
            table(["run", "direction", "chosen: exact answer", "chosen: left the source",
                   "paper's: exact answer", "paper's: left the source"], rows, merged=1)]


def dose_section(ctx):
    names = panel_names(ctx)
    panels, notes = dose_response_panels({names[n]: s for n, s in ctx.steered.items() if s["searched"]})
    for n, r in ctx.runs.items():  # why a run has no curve, in its panel
        steer = r["steer"]
        if "skipped" in steer:
            panels[names[n]] = "no MEM/GEN pairs: not steered"
        elif not steer["searched"]:
            panels[names[n]] = f"{not_searched(steer)}: not searched, no adaptive ladder"
    panels = {names[n]: panels[names[n]] for n in ctx.runs}  # in the runs' order
    lines_figure(ctx.figures / "dose_response.png", "Share of test probes moved (dashed) and moved to the target "
                 "(solid) by alpha", panels, "alpha (the adaptive ladder, log scale)", "% of test probes", log_x=True,
                 notes=notes)
    return [("h2", "Dose-response of the adaptive strength"), ("p", prose.DOSE),
            ("img", "figures/dose_response.png", "dose-response")]


def layers_section(ctx):
    rows = [[n, l["layer"], *[f"{l[f'n_neurons_{d}']}: {rate_cell(l[d])}" if l[f"n_neurons_{d}"] else "-"
                              for d in DIRECTIONS]]
            for n, s in ctx.steered.items() for l in s["layers"]]
    frame = pd.DataFrame(rows, columns=["run", "layer", "M->G: neurons: success", "G->M: neurons: success"])
    empty = (frame.iloc[:, 2:] == "-").all(axis=1)  # no neuron of either direction at that layer
    left_out = "; ".join(f"{n}: {', '.join(map(str, g['layer']))}" for n, g in frame[empty].groupby("run", sort=False))
    names = panel_names(ctx)
    panels, notes = layer_panels({names[n]: s for n, s in ctx.steered.items()})
    panels.update({names[n]: "no MEM/GEN pairs: not steered" for n, r in ctx.runs.items() if "skipped" in r["steer"]})
    lines_figure(ctx.figures / "steer_layers.png", "One layer at a time: test success by layer (95 % Wilson "
                 "intervals)", {names[n]: panels[names[n]] for n in ctx.runs}, "layer", "success %", notes=notes)
    return [("h2", "Per-layer ablation"), ("p", prose.LAYERS),
            ("img", "figures/steer_layers.png", "success by layer"),
            ("details", f"Per-layer table ({int((~empty).sum())} rows)", [
                ("p", f"Layers where neither direction selected a neuron are left out: {left_out}." if left_out
                 else "Every layer holds selected neurons."),
                ("table", frame[~empty], 1)])]


def other_section(ctx):
    rows = [[n, ARROW[d], setting, e["prompt"], e["mem"], e["gen"], e["output"]]
            for n, s in ctx.steered.items() for d in DIRECTIONS for setting in SETTINGS
            for e in s["test"][setting][d][TARGETED]["other_examples"]
            if setting == "chosen" or s["searched"]]  # unsearched: the two settings are one
    blocks = [("h2", "Outputs that broke to OTHER"), ("p", prose.OTHER)]
    if not rows:
        return blocks + [("p", "None: no targeted steer gave an output that is neither answer.")]
    return blocks + [("details", f"{len(rows)} examples", [
        table(["run", "direction", "setting", "prompt", "MEM answer", "GEN answer", "output"], rows, merged=3)])]


def search_section(ctx):
    blocks = [("h2", "The design space on val"), ("p", prose.SEARCH)]
    rows = [{"run": n, "direction": ARROW[d], **row} for n, t in ctx.searches.items() if t["searched"]
            for d in DIRECTIONS for row in t[d] if row["n"]]
    if not rows:
        return blocks + [("p", "No run was searched.")]
    frame = pd.DataFrame(rows)
    keys = ["run", "direction", "schedule", "site", "vector"]
    best = frame.loc[frame.groupby(keys, sort=False)["success"].idxmax()]  # the first of equal bests
    shown = [[*(row[k] for k in keys), f"topN {row['topN']:g}, alpha {row['alpha']}", rate_cell(row), pct(row["other"])]
             for row in best.to_dict("records")]
    return blocks + [("details", f"Best val success per schedule, site and vector ({len(shown)} rows)", [
        table([*keys, "best at", "val success", "OTHER %"], shown, merged=2)])]


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
    if len(ctx.reps) == 1:
        return [("h2", "Replicate seeds"), ("p", "One replicate per family and task: no spread across seeds to show.")]
    return [("h2", "Replicate seeds (mean ± sd)"),
            table(["family/task", "replicates", "pair yield %",
                   *[f"{s} {ARROW[d]} %" for s in SETTINGS for d in DIRECTIONS]], rows)]


def spread_cell(s):
    """'12.3 ± 4.5 (n=3)' from mean_and_spread's dict."""
    return "-" if s["mean"] is None else f"{pct(s['mean'])} ± {pct(s['std'])} (n={s['n']})"


def comparison_section(ctx, kind):
    blocks = [("h2", "Consistency across replicate seeds (intra)" if kind == "intra" else "Transfer across tasks (inter)"),
              ("p", (prose.INTRA if kind == "intra" else prose.INTER) + " " + prose.COMPARISON_POINTS)]
    if kind == "intra" and len(ctx.reps) == 1:
        blocks.append(("p", "One replicate: each matrix is its diagonal, the run's own steer at the two points."))
    for name, comp in getattr(ctx, kind).items():
        tables = [b for setting in ("paper", "transfer")
                  for b in matrix_blocks(comp, setting, f"{name} at {point_cell(comp[setting]['point'])}")]
        blocks.append(("details", name if kind == "intra" else f"{name} ({comp['model']})", tables))
    return blocks


def matrix_blocks(comparison, setting, label):
    """Tables of one intra/inter comparison at one point: success (source rows -> target columns) and Jaccard."""
    names, result = comparison["runs"], comparison[setting]
    header = ["neurons from \\ model of", *names]
    blocks = []
    for d in DIRECTIONS:
        rows = [[s, *[rate_cell(result[d][s][t]) for t in names]] for s in names]
        blocks += [("p", f"{label}: {ARROW[d]} success % [95 % CI] (k/n)"), table(header, rows)]
    jac = [[s, *["-" if result["jaccard"][s][t] is None else f"{result['jaccard'][s][t]:.2f}" for t in names]]
           for s in names]
    return blocks + [("p", f"{label}: Jaccard overlap of the selected neuron sets"), table(header, jac)]


def predict_section(ctx):
    rows, panels = [], {}
    for n, r in ctx.runs.items():
        p = r["predict"]
        if "skipped" in p:
            rows.append([n, p["n_pairs"], p["skipped"], "", ""])
            panels[n] = f"not fitted: {p['skipped']}"
            continue
        lines = {}
        for colour, (site, accs) in enumerate(p["by_layer"].items()):
            best = max(range(len(accs)), key=lambda i: accs[i])
            rows.append([n, f"{p['n_train_pairs']}/{p['n_test_pairs']}", f"{site}: " + " ".join(pct(a, 0) for a in accs),
                         f"{best} ({pct(accs[best])})", pct(p["bag_of_tokens"])])
            lines[f"state at {site}"] = (list(range(len(accs))), [100 * a for a in accs], f"C{colour}o-")
        layers = list(range(len(next(iter(p["by_layer"].values())))))
        lines["bag of tokens"] = (layers, [100 * p["bag_of_tokens"]] * len(layers), "k--")
        lines["chance"] = (layers, [100 * p["chance"]] * len(layers), "C7:")
        panels[n] = lines
    lines_figure(ctx.figures / "predict.png", "Held-out accuracy, MEM vs GEN: a classifier on the state, by layer, "
                 "vs on the prompt's bag of tokens", panels, "layer", "accuracy %")
    return [("h2", "Behaviour prediction (linear classifiers)"), ("p", prose.PREDICT),
            table(["run", "pairs train/test", "accuracy % by layer", "best layer (%)", "bag of tokens %"], rows,
                  merged=2),
            ("img", "figures/predict.png", "behaviour prediction by layer")]


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
    return [("h2", "Against the paper"), table(["claim", "paper", "ours"], rows), ("p", " ".join(lines)),
            ("p", note)]


SCORE_NAMES = {"abs_rho": "|rho| (the paper's)", "abs_nmd": "|NMD|", "nmd_over_sd": "|NMD| / spread",
               "discriminant": "probe weight", "grad_x_act": "gradient x activation",
               "attribution": "attribution patching"}
PLANTED_ARMS = {"oracle": "planted units (oracle)", "ranked": "top k by |rho|", "random": "random units"}


def planted_section(ctx):
    if not ctx.planted:
        return []
    loc_rows, steer_rows, panels = [], [], {}
    for name, run in ctx.planted.items():
        loc, plant = run["localize"], run["plant"]
        rule, taught = plant["rule"], plant["plant"]
        head = [name, f"{loc['n_planted']} of {loc['n_units']} (layers {', '.join(map(str, plant['layers']))})",
                f"{pct(rule['gen'])} / {pct(taught['mem'])} / {pct(taught['other'])}", loc["n_pairs"]]
        c = loc["chance"]
        if "skipped" in loc:
            loc_rows.append(head + ["-"] * (len(SCORE_NAMES) + 2))
            panels[name] = "no MEM/GEN pairs on the planted model"
            continue
        loc_rows.append(head + [f"{pct(sc['recall'], 0)} % / {sc['auroc']:.3f}" for sc in
                                (loc["scores"][key] for key in SCORE_NAMES)] +
                        [f"{pct(c['recall'], 1)} % (p95 {pct(c['recall_p95'], 0)} %) / "
                         f"{c['auroc_band'][0]:.2f}-{c['auroc_band'][1]:.2f}",
                         f"{', '.join(map(str, loc['scores']['abs_rho']['top_k_by_layer']))} "
                         f"(planted: {', '.join(map(str, loc['planted_by_layer']))})"])
        ks = sorted(int(k) for k in loc["chance_at"])
        panels[name] = {**{SCORE_NAMES[key]: (ks, [100 * loc["scores"][key]["recall_at"][str(k)] for k in ks],
                                              f"C{i}o-") for i, key in enumerate(SCORE_NAMES)},
                        "random ranking": (ks, [100 * loc["chance_at"][str(k)] for k in ks], "k--")}
        for d, arms in loc["steering"].items():
            points = ", ".join(f"{arm} {p['schedule']} alpha {p['alpha']}" for arm, p in arms["point"].items())
            steer_rows.append([name, ARROW[d], *[rate_cell(arms[a]) for a in PLANTED_ARMS],
                               *[pct(arms[a]["other"]) for a in PLANTED_ARMS],
                               p_cell(arms["ranked"]["p_oracle_greater"]), p_cell(arms["ranked"]["p_greater_than_random"]),
                               points])
    lines_figure(ctx.figures / "planted_recall.png", "Planted units found in the top k, by score (k log scale)", panels,
                 "k (units taken from the top)", "% of planted units found", log_x=True)
    return [("h2", "Ground truth: memories planted in known units"), ("p", prose.PLANTED),
            table(["planted run", "planted units", "rule model GEN / planted MEM / OTHER (val %)", "pairs",
                   *[f"{v}: recall / AUROC" for v in SCORE_NAMES.values()], "random ranking: recall / AUROC 95 %",
                   "top k by |rho|, units per layer"],
                  loc_rows),
            ("img", "figures/planted_recall.png", "planted units found in the top k"),
            ("p", prose.PLANTED_STEER),
            table(["planted run", "direction", *[f"{v}: success" for v in PLANTED_ARMS.values()],
                   *[f"{v}: OTHER %" for v in PLANTED_ARMS.values()], "p oracle > ranked", "p ranked > random",
                   "val-chosen schedule and alpha"], steer_rows, merged=1)]


def methods_section(ctx):
    """The steering methods side by side on each run (stage methods), with the figure."""
    rows, panels = [], {}
    names = panel_names(ctx)
    for name, run in ctx.runs.items():
        m = run["methods"]
        if "skipped" in m:
            panels[names[name]] = "no MEM/GEN pairs: not steered"
            continue
        panels[names[name]] = m["test"]
        for d in DIRECTIONS:
            tests = m["test"][d]
            for arm in METHOD_ARMS:
                r = tests[arm]
                chosen = point_cell(r["point"]) if arm == PAPER else r.get("label", "not chosen: no val probe")
                rows.append([name, ARROW[d], METHOD_NAMES[arm], chosen, rate_cell(r), pct(r["other"]),
                             p_cell(r.get("p_above_nmd")), p_cell(r.get("p_below_nmd")), p_cell(r.get("p_above_random")),
                             "" if ctx.above_chance(name) else "ranking at chance"])
    if not panels:
        return []
    controls_figure(ctx.figures / "methods.png", panels, "Steering methods on held-out test probes, each at its own "
                    "val-chosen point (95 % Wilson intervals)", arms=METHOD_ARMS, labels=METHOD_LABELS, xlabel="method")
    site = next(iter(ctx.runs.values()))["methods"]["site"]
    return [("h2", "Steering methods side by side"), ("p", f"{prose.METHODS} Site of the methods: {site}."),
            ("img", "figures/methods.png", "steering methods side by side"),
            table(["run", "direction", "method", "val-chosen point", "test success", "OTHER %", "p > NMD shift",
                   "p < NMD shift", "p > random direction", "note"], rows, merged=2)]


def heatmaps_section(ctx):
    return [("h2", "NMD heatmaps (the paper's site)"),
            *[("img", f"plots/nmd_heatmap/{n.replace('/', '-')}.png", f"{n}: sorted NMD per layer") for n in ctx.runs]]


def notes_section(ctx):
    return [("h2", "Notes"), ("p", prose.NOTES)]


SECTIONS = (answer_section, setup_section, data_section, behaviour_section, operating_point_section,
            lambda ctx: controls_section(ctx, "chosen"), lambda ctx: controls_section(ctx, "paper"),
            two_ways_section, dose_section, layers_section, other_section, search_section, replicate_section,
            lambda ctx: comparison_section(ctx, "intra"), lambda ctx: comparison_section(ctx, "inter"),
            predict_section, methods_section, planted_section, against_paper_section, heatmaps_section, notes_section)
