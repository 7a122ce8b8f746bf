"""Across seeds and tasks: replicate spread, intra- and inter-task transfer."""
from ...steering import DIRECTIONS
from .. import prose
from ..compute import SETTINGS, replicate_aggregates
from ..document import table
from ..format import ARROW, pct, point_cell, rate_cell


def replicate_section(ctx):
    aggregates = replicate_aggregates(ctx)
    rows = [[name, len(ctx.reps), spread_cell(agg["pair_yield"]),
             *[spread_cell(agg[f"{s}_{d}"]) for s in SETTINGS for d in DIRECTIONS]] for name, agg in aggregates.items()]
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
