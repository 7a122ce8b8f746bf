"""Steering: the operating point, its nulls, how it moves outputs, and the methods side by side."""
import pandas as pd

from ...experiment import NULL_NAMES, beats
from ...methods import ARMS as METHOD_ARMS, LABELS as METHOD_LABELS, METHODS, NAMES as METHOD_NAMES, PAPER
from ...steering import DIRECTIONS, TARGETED
from .. import paper, prose
from ..compute import SETTINGS
from ..document import table
from ..figures import controls_figure, dose_response_panels, layer_panels, lines_figure
from ..format import ARROW, beats_every_null, counted_nulls, null_cell, p_cell, pct, point_cell, rate_cell
from .common import not_searched, panel_names
from .scope import SCOPE_NAMES


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


def controls_figure_block(ctx, setting):
    names = panel_names(ctx)
    panels = {names[n]: r["steer"]["test"][setting] if "skipped" not in r["steer"] else "no MEM/GEN pairs: not steered"
              for n, r in ctx.runs.items()}
    figure = f"controls_{setting}.png"
    controls_figure(ctx.figures / figure, panels,
                    f"Test success at {SETTINGS[setting]}: targeted (95 % Wilson interval) vs its matched nulls "
                    "(mean of the draws, central 95 % of them)")
    return ("img", f"figures/{figure}", f"targeted vs controls at {SETTINGS[setting]}")


def controls_section(ctx, setting):
    rows = []
    for n, s in ctx.steered.items():
        tests = s["test"][setting]
        for d in DIRECTIONS:
            t = tests[d]
            point = s["operating_point"][d]["point"] if setting == "chosen" else s["paper_point"]
            rows.append([n, ARROW[d], point_cell(point), rate_cell(t[TARGETED]), specificity_cell(t[TARGETED]),
                         *[null_cell(t.get(c)) for c in NULL_NAMES], pct(t[TARGETED]["other"]), beats_cell(t),
                         "" if ctx.above_chance(n) else "not evidence (at chance)"])
    if setting == "chosen":
        title, lead, figure = ("Steering at the chosen point against the controls",
                               prose.CONTROLS + " The figure is at the top.", [])
    else:
        title, lead, figure = "The paper's setting against the controls", paper.SETTING + ".", [
            controls_figure_block(ctx, setting)]
    return [("h2", title), ("p", lead),
            table(["run", "direction", "point", TARGETED, "specificity % (target / changed)",
                   *NULL_NAMES.values(), "OTHER % (targeted)", "above every counted null", "note"], rows, merged=1),
            *figure]


def specificity_cell(r):
    return "-" if r.get("specificity") is None else f"{pct(r['specificity'])} ({r['k']}/{r['changed']})"


def beats_cell(tests):
    if not tests[TARGETED]["n"]:
        return "-"
    if not counted_nulls(tests):
        return "no null can fail here"
    return "yes" if beats_every_null(tests) else "no"


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


def methods_section(ctx):
    """The steering methods side by side on each run (stage methods), with the figure."""
    rows, panels = [], {}
    names = panel_names(ctx)
    runs = {name: run for name, run in ctx.runs.items() if "methods" in run}  # runs.side_replicates
    for name, run in runs.items():
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
                             specificity_cell(r), p_cell(r.get("p_above_nmd")), p_cell(r.get("p_below_nmd")),
                             null_cell(r.get("nulls", {}).get("random_direction")),
                             "" if ctx.above_chance(name) else "ranking at chance"])
    if not panels:
        return []
    controls_figure(ctx.figures / "methods.png", panels, "Steering methods on held-out test probes, each at its own "
                    "val-chosen point (95 % Wilson intervals)", arms=METHOD_ARMS, labels=METHOD_LABELS, xlabel="method")
    first = next(iter(runs.values()))["methods"]
    budget = ", ".join(f"{m} {n}" for m, n in first["budget"].items()) if first.get("budget") else "-"
    return [("h2", "Steering methods side by side"),
            ("p", f"{prose.METHODS} Site of the methods: {first['site']}. Val candidates per method (the search "
                  f"budget): {budget}."),
            ("img", "figures/methods.png", "steering methods side by side"),
            table(["run", "direction", "method", "val-chosen point", "test success", "OTHER %", "specificity %",
                   "p > NMD shift", "p < NMD shift", "its random direction: success, p method > it", "note"], rows,
                  merged=2), *methods_scope_blocks(runs)]


def methods_scope_blocks(runs):
    """Each method searched again within every scope of steer.scopes: its test success per scope, marked where
    it beats its own random direction (which can fail)."""
    scoped = {name: run["methods"] for name, run in runs.items() if run["methods"].get("scopes")}
    scopes = ["all", *dict.fromkeys(s for m in scoped.values() for s in m["scopes"])]
    rows = []
    for name, m in scoped.items():
        for d in DIRECTIONS:
            for method in METHODS:
                tests = [m["test"][d] if scope == "all" else m["scopes"].get(scope, {}).get(d) for scope in scopes]
                rows.append([name, ARROW[d], METHOD_NAMES[method],
                             *[method_scope_cell(t[method]) if t else "-" for t in tests]])
    if not rows:
        return []
    return [("p", prose.METHODS_SCOPES),
            table(["run", "direction", "method", *[f"{SCOPE_NAMES[s]}: test success" for s in scopes]], rows, merged=2)]


def method_scope_cell(r):
    """A method's test success at its val-chosen candidate, and whether it beats its random direction."""
    if not r.get("n"):
        return "-"
    null = r.get("nulls", {}).get("random_direction", {})
    mark = " (no null can fail here)" if null.get("can_fail") is False else \
        " (beats its random direction)" if beats(r, null) else ""
    return f"{rate_cell(r)}, {r.get('label', '')}{mark}"
