"""The numbers the report computes that no metric file holds, as pure functions of the context (so
summary.json does not depend on which section runs first)."""
from ..stats import cluster_bootstrap, mean_and_spread
from ..steering import DIRECTIONS, TARGETED

SETTINGS = {"chosen": "the val-chosen point", "paper": "the paper's setting"}


def replicate_aggregates(ctx):
    """{family/task: {pair_yield: mean and spread over the replicates; <setting>_<direction>: the
    across-seed estimate of its test success (per-seed values, mean, cluster-bootstrap interval)}} for
    every setting the runs measured (the scoped ones too)."""
    aggregates = {}
    for family in ctx.families:
        for task in ctx.tasks:
            group = [ctx.runs[f"{family}/{task}/r{r}"] for r in ctx.reps]
            steered = [g["steer"] for g in group if "skipped" not in g["steer"]]
            agg = {"pair_yield": mean_and_spread([g["probe"]["pair_yield"] for g in group])}
            for setting in steered[0]["test"] if steered else SETTINGS:
                for d in DIRECTIONS:
                    agg[f"{setting}_{d}"] = cluster_bootstrap(
                        [s["test"][setting][d][TARGETED]["by_group"] for s in steered])
            aggregates[f"{family}/{task}"] = agg
    return aggregates


def evidence_groups(ctx):
    """The family/tasks whose ranking beats chance on most of their seeds: those a claim is judged on."""
    groups = [(f, t) for f in ctx.families for t in ctx.tasks]
    return [f"{f}/{t}" for f, t in groups if 2 * sum(ctx.above_chance(f"{f}/{t}/r{r}") for r in ctx.reps) > len(ctx.reps)]


def summary(ctx):
    """summary.json: the replicate aggregates and which runs count as evidence."""
    return {"replicates": replicate_aggregates(ctx), "evidence": {n: ctx.above_chance(n) for n in ctx.runs}}


COMPARISON_SETTINGS = {"paper": "the paper's setting", "chosen": "each source's val-chosen point"}
MIN_EVALUABLE = 30  # test prompts a transfer cell needs before its rate is read


def scoped_view(comparison, scope):
    """An intra/inter comparison as measured within one scope ("all": itself), in the shape transfer_summary reads."""
    if scope == "all":
        return comparison
    return {**{k: v for k, v in comparison.items() if k not in COMPARISON_SETTINGS}, **comparison["scopes"][scope]}


def has_effect(own, control):
    """Whether a target's own steer is there to transfer: measured on >= MIN_EVALUABLE prompts and above its matched
    random control's 95th percentile (a ratio over an effect a random selection matches means nothing)."""
    return bool(own.get("n", 0) >= MIN_EVALUABLE and control and control.get("p95") is not None
                and own["success"] > control["p95"])


def transfer_summary(comparison, setting, direction):
    """The off-diagonal cells of one matrix: how many are evaluable (the target's own steer has an effect,
    has_effect), their transfer ratios (mean and range), how many beat the target's matched random control
    (success above its 95th percentile); the diagonal's mean success beside them."""
    names, result = comparison["runs"], comparison[setting]
    cells, ratios, above, diagonal = 0, [], 0, []
    for t in names:
        own, control = result[direction][t][t], result["control"][direction].get(t) or {}
        if own.get("n"):
            diagonal.append(own["success"])
        for s in (s for s in names if s != t):
            cells += 1
            cell, ratio = result[direction][s][t], result["ratio"][direction][s][t]
            if not has_effect(own, control) or "k" not in cell or not ratio or ratio["ratio"] is None:
                continue
            ratios.append(ratio["ratio"])
            above += cell["success"] > control["p95"]
    return {"cells": cells, "evaluable": len(ratios), "ratios": ratios,
            "mean_ratio": sum(ratios) / len(ratios) if ratios else None,
            "min_ratio": min(ratios, default=None), "max_ratio": max(ratios, default=None), "above_control": above,
            "diagonal": sum(diagonal) / len(diagonal) if diagonal else None}


def claim_summary(comparisons, family, setting, direction):
    """A family's off-diagonal transfer pooled over its comparisons (intra: every task; inter: every replicate):
    the evaluable cells, their mean transfer ratio and how many beat the matched random control; None without
    an evaluable cell."""
    summaries = [transfer_summary(c, setting, direction) for c in comparisons.values() if c["family"] == family]
    ratios = [r for t in summaries for r in t["ratios"]]
    if not ratios:
        return None
    return {"evaluable": len(ratios), "cells": sum(t["cells"] for t in summaries),
            "mean_ratio": sum(ratios) / len(ratios), "above_control": sum(t["above_control"] for t in summaries)}
