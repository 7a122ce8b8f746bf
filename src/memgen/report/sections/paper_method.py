"""The report's first screen: the paper's own method (NMD, neurons ranked by |rho|, the paper's site and schedule)
at its single setting and at the point the authors' grid chooses on val, over seeds, beside the paper's numbers,
with a verdict per claim. Our own operating point comes after it (answer.py)."""
from ...steering import DIRECTIONS, SCOPES, scoped_setting
from .. import paper, prose
from ..compute import claim_summary, evidence_groups, replicate_aggregates
from ..document import table
from ..format import ARROW, beats_every_null, pct
from .consistency import seed_cell
from .scope import SCOPE_NAMES

PAPER_SETTINGS = ("paper_grid", "paper")  # the authors' grid (chosen on val) first, then their single setting
TRANSFER_HOLDS = 0.5  # a consistency claim holds where the evaluable cells' mean transfer ratio reaches this


def setting_names(ctx):
    sp = ctx.params.section("steer")
    point, grid = sp.section("paper").data, sp.section("paper_grid").data
    return {"paper_grid": f"the authors' grid (topN {grid['topN']} x alpha {grid['alpha']}), chosen on val",
            "paper": f"the paper's setting (topN {point['topN']:g}, alpha {point['alpha']:g})"}


def paper_method_section(ctx):
    aggregates, names = replicate_aggregates(ctx), setting_names(ctx)
    rows = [[name, names[setting], SCOPE_NAMES[scope], *[seed_cell(agg[f"{scoped_setting(setting, scope)}_{d}"])
                                                        for d in DIRECTIONS]]
            for name, agg in aggregates.items() for setting in PAPER_SETTINGS for scope in SCOPES
            if f"{scoped_setting(setting, scope)}_m2g" in agg]
    ranges = ", ".join(f"{ARROW[d]} {pct(paper.SUCCESS[d][0])}-{pct(paper.SUCCESS[d][1])} %" for d in DIRECTIONS)
    columns = ["family/task", "the paper's method at", "layers",
               *[f"{ARROW[d]} % [95 % interval] (per seed)" for d in DIRECTIONS]]
    return [("h1", "memgen report"), ("p", prose.LEAD), ("h2", "The paper's method"),
            ("p", prose.PAPER_METHOD.format(ranges=ranges, n_seeds=len(ctx.reps))), table(columns, rows, merged=2),
            ("p", "Verdicts, claim by claim (families and tasks whose ranking beats chance on most seeds: "
                  f"{', '.join(evidence_groups(ctx)) or 'none'}):"),
            table(["claim", "the paper", "the paper's method here", "verdict"], verdict_rows(ctx, aggregates))]


def verdict_rows(ctx, aggregates):
    """One row per claim: steering success per direction, beating matched nulls, the asymmetry, intra and inter."""
    counted = {g: aggregates[g] for g in evidence_groups(ctx)}
    rows = [success_row(counted, d) for d in DIRECTIONS]
    runs = [ctx.runs[n]["steer"]["test"]["paper_grid"][d] for g in counted for n in ctx.runs
            if n.startswith(g + "/") and ctx.above_chance(n) for d in DIRECTIONS]
    runs = [t for t in runs if t["targeted"]["n"]]
    above = sum(beats_every_null(t) for t in runs)
    rows.append(["targeted above every matched null (empirical p < 0.05), the authors' grid", paper.CLAIMS["random"],
                 f"{above} of {len(runs)} run-directions", "holds" if runs and above == len(runs) else
                 f"holds in {above} of {len(runs)}" if runs else "no run to judge"])
    means = {g: [agg[f"paper_grid_{d}"]["mean"] for d in DIRECTIONS] for g, agg in counted.items()}
    easier = [g for g, (m2g, g2m) in means.items() if m2g is not None and g2m is not None and m2g > g2m]
    judged = [g for g, m in means.items() if None not in m]
    rows.append(["M->G easier than G->M, the authors' grid", paper.CLAIMS["m2g_easier"],
                 "; ".join(f"{g}: {pct(means[g][0])} vs {pct(means[g][1])} %" for g in judged) or "-",
                 "no family/task to judge" if not judged else "holds" if len(easier) == len(judged) else
                 "reversed" if not easier else f"holds in {len(easier)} of {len(judged)}"])
    return rows + [consistency_row(ctx, kind) for kind in ("intra", "inter")]


def success_row(counted, d):
    """The success claim of one direction: each counted family/task's across-seed mean at the authors' grid, read
    against the paper's range by its interval (below: its upper end under the range; above: its lower end over it)."""
    lo, hi = paper.SUCCESS[d]
    places = {g: place(agg[f"paper_grid_{d}"], lo, hi) for g, agg in counted.items()}
    ours = "; ".join(f"{g}: {seed_cell(counted[g][f'paper_grid_{d}'])}" for g in counted) or "-"
    judged = [p for p in places.values() if p]
    verdict = "no family/task to judge" if not judged else (
        "reproduced" if all(p == "overlaps" for p in judged) else
        f"not reproduced: {judged.count('below')} of {len(judged)} below the paper's range, "
        f"{judged.count('above')} above, {judged.count('overlaps')} overlapping it")
    return [f"{ARROW[d]} success, the authors' grid", f"{pct(lo)}-{pct(hi)} %", ours, verdict]


def place(est, lo, hi):
    if est["mean"] is None:
        return None
    low, high = (est["lo"], est["hi"]) if est["lo"] is not None else (est["mean"], est["mean"])
    return "below" if high < lo else "above" if low > hi else "overlaps"


def consistency_row(ctx, kind):
    """Intra (other seeds' adapters) or inter (other tasks'), at the paper's setting (the comparisons' paper point),
    pooled over directions and families: the evaluable cells' mean transfer ratio and how many beat their control."""
    found = [(f, d, claim_summary(getattr(ctx, kind), f, "paper", d)) for f in ctx.families for d in DIRECTIONS]
    evaluable = [(f, d, c) for f, d, c in found if c]
    what = "other seeds' models" if kind == "intra" else "other tasks' models"
    ours = "; ".join(f"{f} {ARROW[d]}: ratio {c['mean_ratio']:.2f} over {c['evaluable']} of {c['cells']} cells, "
                     f"{c['above_control']} above control" for f, d, c in evaluable) or \
        "no evaluable cell: no target's own steer at the paper's setting beats its matched random control"
    holds = [c["mean_ratio"] >= TRANSFER_HOLDS and 2 * c["above_control"] >= c["evaluable"] for _, _, c in evaluable]
    verdict = "not evaluable" if not holds else "holds" if all(holds) else \
        "does not hold" if not any(holds) else f"holds in {sum(holds)} of {len(holds)} family-directions"
    return [f"{kind}: neurons steer {what}, the paper's setting", paper.CLAIMS[kind], ours, verdict]
