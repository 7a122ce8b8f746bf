"""How the runs were set up and what they learned: settings, splits, behaviour, prediction, heatmaps."""
from .. import paper, prose
from ..document import table
from ..figures import lines_figure
from ..format import pct


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
    rows = [[task, *[d["prompts"][part] for part in ("train", "val", "probe", "test")], d["holdout_unit"],
             sum(d["overlap"][d["holdout_unit"]].values())] for task, d in ctx.data.items()]
    return [("h2", "Held-out splits"),
            table(["task", "train prompts", "val", "probe", "test", "held out whole", "shared between parts"], rows)]


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
                         f"{best} ({pct(accs[best])})", pct(p["ordered_tokens"])])
            lines[f"state at {site}"] = (list(range(len(accs))), [100 * a for a in accs], f"C{colour}o-")
        layers = list(range(len(next(iter(p["by_layer"].values())))))
        lines["tokens in order"] = (layers, [100 * p["ordered_tokens"]] * len(layers), "k--")
        lines["chance"] = (layers, [100 * p["chance"]] * len(layers), "C7:")
        panels[n] = lines
    lines_figure(ctx.figures / "predict.png", "Held-out accuracy, MEM vs GEN: a classifier on the state, by layer, "
                 "vs on the prompt's tokens in order", panels, "layer", "accuracy %")
    return [("h2", "Behaviour prediction (linear classifiers)"), ("p", prose.PREDICT),
            table(["run", "pairs train/test", "accuracy % by layer", "best layer (%)", "tokens in order %"], rows,
                  merged=2),
            ("img", "figures/predict.png", "behaviour prediction by layer")]


def heatmaps_section(ctx):
    return [("h2", "NMD heatmaps (the paper's site)"),
            *[("img", f"plots/nmd_heatmap/{n.replace('/', '-')}.png", f"{n}: sorted NMD per layer") for n in ctx.runs]]


def notes_section(ctx):
    return [("h2", "Notes"), ("p", prose.NOTES)]
