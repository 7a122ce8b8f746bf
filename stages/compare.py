"""Stages intra and inter: the neurons found on one run steer the model of another.

  intra FAMILY TASK   every ordered pair of replicates of one task (models retrained with other seeds)
  inter FAMILY REP    every ordered pair of tasks: for a family in `runs.multitask`, on the one model
                      trained on every task (its neurons found per task); otherwise on the per-task
                      models, which for an adapter family (llama) share one base, so neuron indices carry over

Each cell is measured at two points on the target's held-out test probes (targeted shifts only): the
paper's setting (steer.paper), and the source run's own val-chosen point for the direction (its steer
stage's; "chosen"). The diagonal is a run steered with its own neurons, the denominator of each cell's
transfer ratio (with a paired interval over the target's probe groups); beside it, a random control
matched to the target's own selection (compare.null_draws draws). Neurons whose ranking is no better
than chance are carried over at the paper's setting only, as the steer stage does. Jaccard: overlap
of the neuron sets each point selects, beside what two random sets of the same sizes share. Every
matrix is also measured within each scope of steer.scopes, as the steer stage measures its settings
(before_readout: the source's top neurons outside the last block; mlp_hidden: at the MLP's hidden units).
"""
import click
import torch

from memgen.errors import OneLineGroup, UserError, run_main
from memgen.evaluate import TARGET, Steerer
from memgen.experiment import RANDOM_NEURONS, Bench, measure_null
from memgen.io import read_jsonl
from memgen.neuron_store import read_neurons
from memgen.params import derive_seed, load_params
from memgen.paths import MULTITASK, comparison_path
from memgen.results import ComparisonRecord, SteerRecord, read_record, write_record
from memgen.run import Run
from memgen.search import (above_chance_at, point_of, read_grid, read_ladder, read_narrow, read_paper_point,
                           read_paper_stream, read_scopes, read_search, searches, steer_arm)
from memgen.stats import group_tally, jaccard_chance, ratio_bootstrap
from memgen.steering import DIRECTIONS, SCOPE_SITE, scope_layers, scoped_setting


def jaccard(a, b):
    a, b = set(a.tolist()), set(b.tolist())
    return len(a & b) / len(a | b)


def overlaps(points, stores, names, scope):
    """{jaccard: {direction: {source: {target: overlap of the units each selects at its point}}}, jaccard_chance:
    likewise, what two random sets of the same sizes drawn from the scope's units share}; points: {name: {direction:
    point}} of the runs that found pairs (None in a cell with either run missing, or the two points at different
    sites)."""
    out = {"jaccard": {}, "jaccard_chance": {}}
    for d in DIRECTIONS:
        plans = {n: steer_arm([p[d]], stores[n], scope).plan(p[d], d) for n, p in points.items()}
        selected = {n: plan.intervention.idx for n, plan in plans.items()}
        # the scope's units: every layer it may touch, its site's width each
        n_units = {n: plan.intervention.width * len(scope_layers(scope, plan.n_layers) or range(plan.n_layers))
                   for n, plan in plans.items()}
        same = lambda s, t: s in points and t in points and plans[s].site == plans[t].site  # noqa: E731
        out["jaccard"][d] = {s: {t: jaccard(selected[s], selected[t]) if same(s, t) else None for t in names}
                             for s in names}
        out["jaccard_chance"][d] = {s: {t: jaccard_chance(n_units[s], len(selected[s]), len(selected[t]))
                                        if same(s, t) else None for t in names} for s in names}
    return out


def chosen_points(run, paper):
    """{direction: the run's val-chosen point} from its steer stage (the paper's setting where it searched nothing)."""
    record = read_record(run.metrics_dir / "steer.json", SteerRecord)
    if not record.searched or not record.operating_point:
        return {d: paper for d in DIRECTIONS}
    return {d: point_of(record.operating_point[d]["point"]) for d in DIRECTIONS}


def measure_cell(bench, point, store, direction, accumulate=False, scope="all"):
    """One source's neurons at one point (within a scope) on the target's test probes: rates, and hits per probe
    group. accumulate: the paper's method's shifts at a residual-stream site (search.steer_arm)."""
    outcome = bench.measure(steer_arm([point], store, scope, accumulate).plan(point, direction), direction)
    probes = bench.part(direction)[0]
    return {**outcome.rates, "by_group": group_tally([p["group"] for p in probes],
                                                     [lab == TARGET[direction] for lab in outcome.labels])}


def control_cell(bench, point, store, direction, own, draws, seed, accumulate=False, scope="all"):
    """The matched random control beside the target's own neurons (their rates: `own`): as many random neurons
    per layer with the same shift sizes and random signs (memgen.experiment's random_neurons), drawn `draws` times."""
    plan = steer_arm([point], store, scope, accumulate).plan(point, direction)
    generator = torch.Generator().manual_seed(seed)
    return measure_null(bench, plan, RANDOM_NEURONS, direction, draws, generator, own)


def ratios(cells, names):
    """{source: {target: success(source -> target) / success(target -> target)}} with a paired interval over the
    target's probe groups (memgen.stats.ratio_bootstrap); None where either cell was not measured."""
    def ratio(s, t):
        num, den = cells[s].get(t, {}), cells[t].get(t, {})
        if "by_group" not in num or "by_group" not in den:
            return None
        return ratio_bootstrap(num["by_group"], den["by_group"])
    return {s: {t: ratio(s, t) for t in names} for s in names}


def measure_target(result, bench, target, point_at, sources, stores, draws, seed, accumulate, scope):
    """Every source's cells on one target's bench, at each setting and direction within one scope, and beside the
    target's own cell its matched random control. accumulate: {setting: whether its shifts accumulate down the
    stream}."""
    for setting, at in point_at.items():
        for d in DIRECTIONS:
            for source in sorted(sources[setting]):
                result[setting][d][source][target] = measure_cell(bench, at(source, d), stores[source][0], d,
                                                                  accumulate[setting], scope)
            if target in sources[setting]:
                own = result[setting][d][target][target]
                result[setting]["control"][d][target] = control_cell(
                    bench, at(target, d), stores[target][0], d, own, draws,
                    derive_seed(seed, scoped_setting(setting, scope), d, target), accumulate[setting], scope)


def finish_setting(part, names, why, points, stores, scope):
    """One setting's cells that were not measured (each says why), its transfer ratios and its overlaps."""
    for d in DIRECTIONS:
        for s in names:
            for t in names:
                part[d][s].setdefault(t, {"skipped": why(s)})
    part["ratio"] = {d: ratios(part[d], names) for d in DIRECTIONS}
    part.update(overlaps(points, {n: stores[n][0] for n in points}, names, scope))


def read_stores(runs, names, kind):
    """{name: (neuron sites, n_pairs)}; one line if the runs' stores differ in shape (indices cannot carry over)."""
    stores = {name: read_neurons(run.run_dir / "neurons.safetensors") for name, run in zip(names, runs)}
    for site in next(iter(stores.values()))[0]:
        shapes = {tuple(n[site].nmd.shape) for n, _ in stores.values()}
        if len(shapes) > 1:
            raise UserError(f"{kind}: the runs' neuron stores differ in shape at {site} {sorted(shapes)}; indices "
                            "cannot carry over")
    return stores


def compare(runs, names, kind):
    """{setting: {direction: {source: {target: rates}}, "ratio": ..., "control": ..., "jaccard": ..., "point": ...},
    "scopes": {scope: {setting: likewise}}} over `runs`: at the paper's setting, and at each source's own val-chosen
    point (setting "chosen"), at every layer and within each other scope of steer.scopes its stores map."""
    first = runs[0]
    paper = read_paper_point(first.params, first.plugin)
    draws = first.params.section("compare").int("null_draws", lo=1)
    fp = first.family_params.section("steer")
    max_prompts, search = fp.int("max_prompts", lo=1), read_search(fp)
    stores = read_stores(runs, names, kind)
    found = {name for name, (_, n_pairs) in stores.items() if n_pairs}
    grid = read_grid(first.params, first.plugin, read_narrow(fp))
    above = {name for name, (sites, _) in stores.items() if above_chance_at(sites, grid)}  # as the steer stage decides
    sources = {"paper": found, "chosen": {n for n in found if searches(search, n in above)}}
    chosen = {name: chosen_points(run, paper) for name, run in zip(names, runs) if name in found}
    point_at = {"paper": lambda name, d: paper, "chosen": lambda name, d: chosen[name][d]}
    accumulate = {"paper": read_paper_stream(first.params), "chosen": False}  # the paper's method, as the steer stage
    sites = next(iter(stores.values()))[0]
    scopes = [sc for sc in read_scopes(first.params.section("steer")) if SCOPE_SITE.get(sc, paper.site) in sites]
    result = {sc: {s: {**{d: {n: {} for n in names} for d in DIRECTIONS}, "control": {d: {} for d in DIRECTIONS}}
                   for s in point_at} for sc in scopes}
    seed = derive_seed(first.params.int("seed", lo=0), kind, "control")
    batch_size, ladder = first.params.section("steer").int("batch_size", lo=1), read_ladder(first.params)
    for target_name, target in zip(names, runs):
        if found:  # else no run found pairs: nothing to steer with
            probes = read_jsonl(target.data_dir / "test.jsonl")[:max_prompts]
            bench = Bench(f"{kind}: {target_name}", Steerer.for_run(target, probes, batch_size), probes, ladder)
            for scope in scopes:  # one model load per target
                measure_target(result[scope], bench, target_name, point_at, sources, stores, draws, seed, accumulate,
                               scope)
    why = lambda s: f"{s} found no MEM/GEN pairs" if s not in found else \
        f"{s}: ranking at chance" if s not in above else f"search off for {first.family}"  # noqa: E731
    for scope in scopes:
        for setting, at in point_at.items():
            points = {n: {d: at(n, d) for d in DIRECTIONS} for n in sources[setting]}
            finish_setting(result[scope][setting], names, why, points, stores, scope)
            result[scope][setting]["point"] = paper.as_dict() if setting == "paper" else \
                {n: {d: p.as_dict() for d, p in chosen[n].items()} for n in sorted(chosen)}
    return {"runs": names, **result["all"], "scopes": {sc: result[sc] for sc in scopes if sc != "all"}}


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
