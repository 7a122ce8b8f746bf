"""Stages intra and inter: the neurons found on one run steer the model of another.

  intra FAMILY TASK   every ordered pair of replicates of one task (models retrained with other seeds)
  inter FAMILY REP    every ordered pair of tasks: for a family in `runs.multitask`, on the one model
                      trained on every task (its neurons found per task); otherwise on the per-task
                      models, which for llama share one base, so neuron indices carry over

Success is measured on the target's held-out test probes as in the steer stage (targeted shifts
only); the diagonal is a run steered with its own neurons. Jaccard: overlap of the selected sets.
"""
import click

from memgen.errors import OneLineGroup, UserError, run_main
from memgen.evaluate import Steerer, rates, read_neurons, split_by_source
from memgen.io import read_jsonl, write_json
from memgen.params import load_params, steering_knobs
from memgen.paths import comparison_path
from memgen.run import Run
from memgen.steering import DIRECTIONS, select_top, targeted_shifts


def jaccard(a, b):
    a, b = set(a.tolist()), set(b.tolist())
    return len(a & b) / len(a | b)


def compare(runs, names, kind):
    """{direction: {source: {target: rates}}} and {source: {target: jaccard}} over `runs`."""
    first = runs[0]
    top_n, alpha = steering_knobs(first.params)
    sp = first.params.section("steer")
    batch_size, max_prompts = sp.int("batch_size", lo=1), sp.section("max_prompts").int(first.family, lo=1)
    neurons = {name: read_neurons(run.run_dir / "neurons.safetensors") for name, run in zip(names, runs)}
    shapes = {tuple(nmd.shape) for nmd, _, _ in neurons.values()}
    if len(shapes) > 1:
        raise UserError(f"{kind}: the runs' neuron stores differ in shape {sorted(shapes)}; indices cannot carry over")
    selected = {name: select_top(rho, top_n) for name, (_, rho, n_pairs) in neurons.items() if n_pairs}
    result = {d: {s: {} for s in names} for d in DIRECTIONS}
    for target_name, target in zip(names, runs):
        if not selected:
            break  # no run found pairs: nothing to steer with
        probes = read_jsonl(target.data_dir / "test.jsonl")[:max_prompts]
        steerer = Steerer.for_run(target, probes, batch_size)
        _, labels = steerer.decode(probes, {}, f"{kind}: {target_name} unsteered")
        subsets = split_by_source(probes, labels)
        for source_name in names:
            for d in DIRECTIONS:
                if source_name not in selected:
                    result[d][source_name][target_name] = {"skipped": f"{source_name} found no MEM/GEN pairs"}
                    continue
                shifts = targeted_shifts(neurons[source_name][0], selected[source_name], alpha, d)
                _, steered = steerer.decode(subsets[d], shifts, f"{kind}: {source_name} neurons -> {target_name} {d}")
                result[d][source_name][target_name] = rates(steered, d)
    for d in DIRECTIONS:  # where no run found pairs, every cell says so
        for s in names:
            for t in names:
                result[d][s].setdefault(t, {"skipped": f"{s} found no MEM/GEN pairs"})
    overlap = {s: {t: jaccard(selected[s], selected[t]) if s in selected and t in selected else None
                   for t in names} for s in names}
    return {"alpha": alpha, "topN": top_n, "runs": names, **result, "jaccard": overlap}


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
        write_json(comparison_path("intra", family, task), {"family": family, "task": task, **out})
    run_main(main)


@cli.command()
@click.argument("family")
@click.argument("rep", type=int)
def inter(family, rep):
    """Neurons of each task's run steer every other task's model (replicate REP)."""
    def main():
        rs = load_params().section("runs")
        multitask = family in rs.list("multitask", min_len=0)
        runs = [Run.open(family, t, rep, multitask=multitask) for t in rs.list("tasks")]
        out = compare(runs, rs.list("tasks"), f"inter {family}/r{rep}")
        model = "one model trained on every task" if multitask else \
            ("per-task adapters on one shared base" if family == "llama" else "per-task models trained apart")
        write_json(comparison_path("inter", family, f"r{rep}"), {"family": family, "rep": rep, "model": model, **out})
    run_main(main)


if __name__ == "__main__":
    cli()
