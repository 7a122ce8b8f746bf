"""Across seeds and tasks: the across-seed estimates, intra- and inter-task transfer."""
from ...stats import BOOTSTRAP_RESAMPLES
from ...steering import DIRECTIONS
from .. import prose
from ..compute import (COMPARISON_SETTINGS, MIN_EVALUABLE, claim_summary, replicate_aggregates, scoped_view,
                       transfer_summary)
from ..document import table
from ..format import ARROW, pct, rate_cell
from .scope import SCOPE_NAMES


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


def claim_rows(ctx, kind):
    """One row per comparison, setting and direction: what its off-diagonal cells show (transfer_summary)."""
    rows = []
    for name, comp in getattr(ctx, kind).items():
        for setting in COMPARISON_SETTINGS:
            for d in DIRECTIONS:
                t = transfer_summary(comp, setting, d)
                ratio = "-" if t["mean_ratio"] is None else \
                    f"{t['mean_ratio']:.2f} ({t['min_ratio']:.2f}-{t['max_ratio']:.2f})"
                rows.append([name, setting, ARROW[d], pct(t["diagonal"]), f"{t['evaluable']} of {t['cells']}", ratio,
                             f"{t['above_control']} of {t['evaluable']}"])
    return rows


def comparison_section(ctx, kind):
    blocks = [("h2", "Consistency across replicate seeds (intra)" if kind == "intra" else "Transfer across tasks (inter)"),
              ("p", (prose.INTRA if kind == "intra" else prose.INTER) + " " + prose.COMPARISON_POINTS)]
    if kind == "intra" and len(ctx.reps) == 1:
        blocks.append(("p", "One replicate: each matrix is its diagonal, the run's own steer at the two points."))
    rows = claim_rows(ctx, kind)
    if rows:
        blocks.append(table(["comparison", "setting", "direction", "own success % (diagonal mean)",
                             "evaluable off-diagonal cells (the column's own steer above its control)",
                             "transfer ratio: mean (range)",
                             "cells above the matched random control's 95th percentile"], rows))
    blocks += scope_blocks(ctx, kind)
    for name, comp in getattr(ctx, kind).items():
        tables = [b for scope in ("all", *(comp.get("scopes") or {})) for setting, label in COMPARISON_SETTINGS.items()
                  for b in matrix_blocks(scoped_view(comp, scope), setting,
                                         f"{name} at {label}" + ("" if scope == "all" else f", {SCOPE_NAMES[scope]}"))]
        blocks.append(("details", name if kind == "intra" else f"{name} ({comp['model']})", tables))
    return blocks


def scope_blocks(ctx, kind):
    """Where the transfer lives: per family, setting and direction, the off-diagonal transfer pooled over the
    comparisons (claim_summary) at every layer and within each scope the comparisons were measured in."""
    comparisons = getattr(ctx, kind)
    scopes = list(dict.fromkeys(sc for c in comparisons.values() for sc in c.get("scopes") or {}))
    if not scopes:
        return []
    rows = []
    for family in dict.fromkeys(c["family"] for c in comparisons.values()):
        for setting in COMPARISON_SETTINGS:
            for d in DIRECTIONS:
                cells = [pooled_cell(comparisons, family, setting, d, scope) for scope in ("all", *scopes)]
                rows.append([family, COMPARISON_SETTINGS[setting], ARROW[d], *cells])
    return [("p", f"Where the {kind} transfer lives: the evaluable off-diagonal cells pooled over the comparisons, "
                  "their mean transfer ratio and how many beat the column's matched random control, with the source's "
                  "neurons at every layer, kept out of the last block, or taken at the MLP's hidden units (the "
                  "column's own steer and its control measured in the same scope)."),
            table(["family", "setting", "direction", *[SCOPE_NAMES.get(sc, sc) for sc in ("all", *scopes)]], rows)]


def pooled_cell(comparisons, family, setting, direction, scope):
    views = {n: scoped_view(c, scope) for n, c in comparisons.items() if scope == "all" or scope in (c.get("scopes") or {})}
    c = claim_summary(views, family, setting, direction)
    if c is None:
        return "no evaluable cell"
    return f"{c['mean_ratio']:.2f} ({c['evaluable']} of {c['cells']}; {c['above_control']} above control)"


def matrix_blocks(comparison, setting, label):
    """Tables of one intra/inter comparison at one setting, per direction: success (source rows -> target
    columns) with the matched random control's row, the transfer ratios, and the Jaccard overlaps."""
    names, result = comparison["runs"], comparison[setting]
    header = ["neurons from \\ model of", *names]
    blocks = []
    for d in DIRECTIONS:
        rows = [[s, *[transfer_cell(result[d][s][t]) for t in names]] for s in names]
        rows.append(["random control (matched to the column's own)",
                     *[control_cell(result["control"][d].get(t)) for t in names]])
        ratios = [[s, *[ratio_cell(result["ratio"][d][s][t]) for t in names]] for s in names]
        jac = [[s, *[jaccard_cell(result["jaccard"][d][s][t], result["jaccard_chance"][d][s][t]) for t in names]]
               for s in names]
        blocks += [("p", f"{label}: {ARROW[d]} success % [95 % CI] (k/n)"), table(header, rows),
                   ("p", f"{label}: {ARROW[d]} transfer ratio (success / the column's own) [95 % interval over "
                         "its probe groups]"), table(header, ratios),
                   ("p", f"{label}: {ARROW[d]} Jaccard overlap of the selected neuron sets (two random sets of "
                         "the same sizes)"), table(header, jac)]
    return blocks


def transfer_cell(r):
    """rate_cell, or 'not evaluable (n=12)' where fewer than MIN_EVALUABLE test prompts could move."""
    if r and "skipped" not in r and r.get("n") is not None and r["n"] < MIN_EVALUABLE:
        return f"not evaluable (n={r['n']})"
    return rate_cell(r)


def control_cell(r):
    """A random control's mean success and 95th percentile over its draws; '-' where not measured."""
    if not r or r.get("success") is None or r.get("p95") is None:
        return "-"
    return f"{pct(r['success'])} (p95 {pct(r['p95'])}, {r['draws']} draws)"


def ratio_cell(r):
    if not r or r["ratio"] is None:
        return "-"
    return f"{r['ratio']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"


def jaccard_cell(value, chance):
    if value is None:
        return "-"
    return f"{value:.2f}" + ("" if chance is None else f" ({chance:.3f})")
