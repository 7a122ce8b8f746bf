"""Across seeds and tasks: the across-seed estimates, intra- and inter-task transfer."""
from ...stats import BOOTSTRAP_RESAMPLES
from ...steering import DIRECTIONS
from .. import prose
from ..compute import replicate_aggregates
from ..document import table
from ..format import ARROW, pct, point_cell, rate_cell


def replicate_section(ctx):
    """Per family/task and setting, each direction's test success over the seeds: the mean with its
    cluster-bootstrap interval, and every seed's own value."""
    aggregates = replicate_aggregates(ctx)
    settings = lambda agg: [k.removesuffix("_m2g") for k in agg if k.endswith("_m2g")]  # noqa: E731
    rows = [[name, setting.replace("_", " "), *[seed_cell(agg[f"{setting}_{d}"]) for d in DIRECTIONS]]
            for name, agg in aggregates.items() for setting in settings(agg)]
    return [("h2", "Across seeds: mean and 95 % cluster-bootstrap interval"),
            ("p", prose.ACROSS_SEEDS.format(n_seeds=len(ctx.reps), n_resamples=BOOTSTRAP_RESAMPLES)),
            table(["family/task", "setting", *[f"{ARROW[d]} % [95 % interval] (per seed)" for d in DIRECTIONS]], rows)]


def seed_cell(est):
    """'25.5 [20.1, 31.0] (25.5, 30.2, 21.0)' from cluster_bootstrap's dict; '-' where no seed was measured."""
    if est["mean"] is None:
        return "-"
    return f"{pct(est['mean'])} [{pct(est['lo'])}, {pct(est['hi'])}] ({', '.join(pct(v) for v in est['values'])})"


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
        rows = [[s, *[transfer_cell(result[d][s][t]) for t in names]] for s in names]
        blocks += [("p", f"{label}: {ARROW[d]} success % [95 % CI] (k/n)"), table(header, rows)]
    jac = [[s, *["-" if result["jaccard"][s][t] is None else f"{result['jaccard'][s][t]:.2f}" for t in names]]
           for s in names]
    chance = result.get("jaccard_chance")
    chance = "" if chance is None else f" (two random sets of as many units: {chance:.3f})"
    return blocks + [("p", f"{label}: Jaccard overlap of the selected neuron sets{chance}"), table(header, jac)]


MIN_EVALUABLE = 30  # test prompts a transfer cell needs before its rate is read


def transfer_cell(r):
    """rate_cell, or 'not evaluable (n=12)' where fewer than MIN_EVALUABLE test prompts could move."""
    if r and "skipped" not in r and r.get("n") is not None and r["n"] < MIN_EVALUABLE:
        return f"not evaluable (n={r['n']})"
    return rate_cell(r)
