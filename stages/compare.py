"""Stages intra and inter: the neurons found on one run steer the model of another.

  intra FAMILY TASK   every ordered pair of replicates of one task (models retrained with other seeds)
  inter FAMILY REP    every ordered pair of tasks: for a family in `runs.multitask`, on the one model
                      trained on every task (its neurons found per task); otherwise on the per-task
                      models, which for an adapter family (llama) share one base, so neuron indices carry over

Each cell is measured at two fixed points: the paper's setting (steer.paper) and compare.point,
on the target's held-out test probes (targeted shifts only); the diagonal is a run steered with its
own neurons. Neurons whose ranking is no better than chance are carried over at the paper's setting
only, as the steer stage does. Jaccard: overlap of the neuron sets each point selects.
"""
import click

from memgen.errors import OneLineGroup, UserError, run_main
from memgen.evaluate import Steerer
from memgen.experiment import Bench
from memgen.io import read_jsonl
from memgen.neuron_store import read_neurons
from memgen.params import load_params
from memgen.paths import MULTITASK, comparison_path
from memgen.results import ComparisonRecord, write_record
from memgen.run import Run
from memgen.search import (above_chance_at, intervention, read_grid, read_ladder, read_narrow, read_paper_point,
                           read_point, read_search, searches, steer_arm)
from memgen.stats import jaccard_chance
from memgen.steering import DIRECTIONS

def jaccard(a, b):
    a, b = set(a.tolist()), set(b.tolist())
    return len(a & b) / len(a | b)


def overlaps(point, neurons, names):
    """{jaccard: {source: {target: overlap of the units the point selects}} (None where either found no
    pairs), jaccard_chance: what two random sets of as many units share} from {name: neuron store}."""
    selected = {n: intervention(point, store, DIRECTIONS[0]).idx for n, store in neurons.items()}
    out = {"jaccard": {s: {t: jaccard(selected[s], selected[t]) if s in selected and t in selected else None
                           for t in names} for s in names}, "jaccard_chance": None}
    if selected:  # every source selects as many units of the same site
        name = next(iter(selected))
        out["jaccard_chance"] = jaccard_chance(neurons[name][point.site].nmd.numel(), len(selected[name]))
    return out


def compare(runs, names, kind):
    """{setting: {direction: {source: {target: rates}}, "jaccard": ..., "point": ...}} over `runs`."""
    first = runs[0]
    points = {"paper": read_paper_point(first.params, first.plugin),
              "transfer": read_point(first.params.section("compare").section("point"), first.plugin)}
    ladder = read_ladder(first.params)
    batch_size = first.params.section("steer").int("batch_size", lo=1)
    fp = first.family_params.section("steer")
    max_prompts, search = fp.int("max_prompts", lo=1), read_search(fp)
    stores = {name: read_neurons(run.run_dir / "neurons.safetensors") for name, run in zip(names, runs)}
    shapes = {tuple(n[p.site].nmd.shape) for n, _ in stores.values() for p in points.values()}
    if len(shapes) > 1:
        raise UserError(f"{kind}: the runs' neuron stores differ in shape {sorted(shapes)}; indices cannot carry over")
    found = {name for name, (_, n_pairs) in stores.items() if n_pairs}
    grid = read_grid(first.params, first.plugin, read_narrow(fp))
    above = {name for name, (sites, _) in stores.items() if above_chance_at(sites, grid)}  # as the steer stage decides
    sources = {"paper": found, "transfer": {n for n in found if searches(search, n in above)}}
    result = {s: {"point": p.as_dict(), **{d: {n: {} for n in names} for d in DIRECTIONS}} for s, p in points.items()}
    for target_name, target in zip(names, runs):
        if not found:
            break  # no run found pairs: nothing to steer with
        probes = read_jsonl(target.data_dir / "test.jsonl")[:max_prompts]
        bench = Bench(f"{kind}: {target_name}", Steerer.for_run(target, probes, batch_size), probes, ladder)
        for setting, point in points.items():
            for source_name in sorted(sources[setting]):
                arm = steer_arm([point], stores[source_name][0])
                for d in DIRECTIONS:
                    result[setting][d][source_name][target_name] = bench.measure(arm.plan(point, d), d).rates
    for setting, point in points.items():
        for d in DIRECTIONS:  # where a source found no pairs, or a ranking at chance, its cells say so
            for s in names:
                why = f"{s} found no MEM/GEN pairs" if s not in found else \
                    f"{s}: ranking at chance" if s not in above else f"search off for {first.family}"
                for t in names:
                    result[setting][d][s].setdefault(t, {"skipped": why})
        result[setting].update(overlaps(point, {n: stores[n][0] for n in found}, names))
    return {"runs": names, **result}


@click.group(cls=OneLineGroup)
def cli():
    pass


@cli.command()
@click.argument("family")
@click.argument("task")
def intra(family, task):
    """Neurons of each replicate of FAMILY/TASK steer every other replicate's model."""
    def main():
        reps = load_params().section("runs").list("replicates")
        runs = [Run.open(family, task, r) for r in reps]
        out = compare(runs, [f"r{r}" for r in reps], f"intra {family}/{task}")
        write_record(comparison_path("intra", family, task), ComparisonRecord(kind="intra", family=family, task=task,
                                                                              **out))
    run_main(main)


@cli.command()
@click.argument("family")
@click.argument("rep", type=int)
def inter(family, rep):
    """Neurons of each task's run steer every other task's model (replicate REP)."""
    def main():
        rs = load_params().section("runs")
        multitask = family in rs.list("multitask", min_len=0)
        runs = [Run.open(family, MULTITASK if multitask else t, rep, t) for t in rs.list("tasks")]
        out = compare(runs, rs.list("tasks"), f"inter {family}/r{rep}")
        model = "one model trained on every task" if multitask else \
            ("per-task adapters on one shared base" if runs[0].plugin.shares_base else "per-task models trained apart")
        write_record(comparison_path("inter", family, f"r{rep}"), ComparisonRecord(kind="inter", family=family, rep=rep,
                                                                                   model=model, **out))
    run_main(main)


if __name__ == "__main__":
    cli()
