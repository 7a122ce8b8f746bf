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


def summary(ctx):
    """summary.json: the replicate aggregates and which runs count as evidence."""
    return {"replicates": replicate_aggregates(ctx), "evidence": {n: ctx.above_chance(n) for n in ctx.runs}}
