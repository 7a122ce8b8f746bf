"""Stage steer: choose the intervention's operating point on val probes, then measure it once on the
held-out test probes beside its matched nulls (each drawn steer.null_draws times); the paper's method
likewise, at its own single setting and at the point the authors' grid (steer.paper_grid) chooses on val.
Each is also measured within every scope of steer.scopes (before_readout: the same number of neurons, none in
the last block, whose output feeds the readout; mlp_hidden: the same point at the MLP's hidden units, where the
family maps them); the dose-response curve of the adaptive strength, the
per-layer ablation, and a few outputs that broke to OTHER. The experiment itself is memgen.experiment's;
this stage configures it. With params `parallel.num_processes` > 1 the processes share each decoding's
batches out; every process gets every output, so all take the same decisions, and the main process writes."""
from dataclasses import replace

import torch

from memgen.distributed import is_main, read_parallel, relaunch_if_asked
from memgen.evaluate import TARGET, Outputs, Steerer, rates
from memgen.experiment import Bench, candidate_key, measure, rule_text, search
from memgen.io import read_jsonl, write_json, write_jsonl
from memgen.neuron_store import read_neurons
from memgen.params import derive_seed
from memgen.plots import write_csv
from memgen.results import SteerRecord, write_record
from memgen.run import run_command
from memgen.search import (above_chance_at, read_grid, read_ladder, read_narrow, read_paper_grid, read_paper_point,
                           read_paper_stream, read_scopes, read_search, searches, steer_arm)
from memgen.stats import group_tally
from memgen.steering import ADAPTIVE, DIRECTIONS, SCOPE_SITE, TARGETED, scoped_setting
from memgen.tasks import OTHER

N_OTHER_EXAMPLES = 3  # outputs that broke to OTHER, shown per direction in the report


def read_settings(run):
    sp, fp = run.params.section("steer"), run.family_params.section("steer")
    return {"grid": read_grid(run.params, run.plugin, read_narrow(fp)), "paper": read_paper_point(run.params, run.plugin),
            "paper_grid": read_paper_grid(run.params, run.plugin), "accumulate": read_paper_stream(run.params),
            "ladder": read_ladder(run.params), "batch_size": sp.int("batch_size", lo=1),
            "max_other": sp.float("max_other", lo=0.0, hi=1.0), "max_prompts": fp.int("max_prompts", lo=1),
            "max_layers": None if fp.raw("ablation_layers") is None else fp.int("ablation_layers", lo=0),
            "search": read_search(fp), "draws": sp.int("null_draws", lo=1), "scopes": read_scopes(sp)}


def choose_points(val, arm, s):
    """{direction: (chosen point, its val row, within the OTHER bound)} and the val rows of the arm's candidates."""
    chosen, table = {}, {}
    for d in DIRECTIONS:
        (point, row, within), table[d] = search(val, arm, d, s["max_other"])
        chosen[d] = (point or s["paper"], row, within)
    return chosen, table


def arms(s, neurons, scope="all"):
    """{"ours": the searched grid's arm, "paper": the paper's method (its grid; at a residual-stream site its shifts
    accumulate down the stream as the authors' code adds them, unless steer.paper_stream says increments)}."""
    return {"ours": steer_arm(s["grid"], neurons, scope),
            "paper": steer_arm(s["paper_grid"], neurons, scope, s["accumulate"])}


def measure_at(test, val, arm, point, d, s, seed, rows, setting, scope="all"):
    """The arm at one point on one direction's test probes beside its nulls (memgen.experiment.measure),
    every probe's output and label kept in `rows`. A scope other than "all" is its own setting
    (`<setting>_<scope>`), its arm selecting within the scope's layers."""
    probes, _ = test.part(d)
    key = candidate_key(arm, point, d) + (() if scope == "all" else (scope,))
    setting = scoped_setting(setting, scope)
    result, got = measure(test, val, arm, arm.plan(point, d), d, s["draws"],
                          derive_seed(seed, "controls", setting, d), key)
    rows.extend({**p, "condition": f"{setting}/{d}/{TARGETED}", "output": o, "label": lab, "alpha": a}
                for p, o, lab, a in zip(probes, got.outputs, got.labels, got.moved_at))
    # the across-seed interval resamples probe groups, not prompts (memgen.stats.cluster_bootstrap)
    result[TARGETED]["by_group"] = group_tally([p["group"] for p in probes], [lab == TARGET[d] for lab in got.labels])
    result[TARGETED]["other_examples"] = [
        {"prompt": p["prompt"], "mem": p["mem"], "gen": p["gen"], "output": o}
        for p, o, lab in zip(probes, got.outputs, got.labels) if lab == OTHER][:N_OTHER_EXAMPLES]
    return result


def measure_scopes(test, val, neurons, chosen, searched, s, seed, rows):
    """{setting: {direction: measurements}}: the paper's method at its single setting ("paper") and at the point
    its grid chose on val ("paper_grid"), and our grid's chosen point ("chosen"); where nothing was searched, or
    the grid chose the single setting, that measurement serves. Each within every scope of steer.scopes ("all":
    the settings' own names)."""
    results = {}
    for scope in s["scopes"]:
        if SCOPE_SITE.get(scope, s["paper"].site) not in neurons:  # the family does not map the scope's site
            continue
        scoped = arms(s, neurons, scope)
        paper = {d: measure_at(test, val, scoped["paper"], s["paper"], d, s, seed, rows, "paper", scope)
                 for d in DIRECTIONS}
        results[scoped_setting("paper", scope)] = paper
        for setting, arm in (("paper_grid", "paper"), ("chosen", "ours")):
            results[scoped_setting(setting, scope)] = {
                d: measure_at(test, val, scoped[arm], chosen[setting][d][0], d, s, seed, rows, setting, scope)
                if searched and (arm == "ours" or chosen[setting][d][0] != s["paper"]) else paper[d]
                for d in DIRECTIONS}
    return results


def dose_response(test, arm, point, direction):
    """Share of test probes moved (and moved to the target) at or below each alpha of the ladder,
    with the point's schedule, site, vector and topN."""
    probes, _ = test.part(direction)
    adaptive = replace(point, alpha=ADAPTIVE)
    outs, moved_at = test.outcome(arm.plan(adaptive, direction), direction, candidate_key(arm, adaptive, direction))
    labels = test.steerer.labels(outs, probes)
    n = len(probes)
    return [{"alpha": a, "moved": sum(m is not None and m <= a for m in moved_at) / n if n else None,
             "success": sum(m is not None and m <= a and lab == TARGET[direction]
                            for m, lab in zip(moved_at, labels)) / n if n else None} for a in test.ladder]


def layer_ablation(test, arm, chosen, max_layers):
    """At each direction's chosen point, only one layer's selected neurons at a time (on the layers
    holding the most of them; all with max_layers null)."""
    result = None
    for d in DIRECTIONS:
        point = chosen[d][0]
        plan = arm.plan(point, d)
        iv = plan.intervention
        counts = torch.bincount(iv.idx // iv.width, minlength=plan.n_layers)
        result = result or [{"layer": layer} for layer in range(plan.n_layers)]
        kept = set(torch.argsort(counts, descending=True, stable=True)[:max_layers].tolist())
        probes, unsteered = test.part(d)
        for layer in range(plan.n_layers):
            result[layer][f"n_neurons_{d}"] = int(counts[layer])
            result[layer][d] = None
            if counts[layer] and layer in kept:
                outs, _ = Outputs(test.steerer, probes, iv.only_layer(layer), point.site, point.schedule).run(
                    point.alpha, unsteered, test.ladder)
                result[layer][d] = rates(test.steerer.labels(outs, probes), d)
    return result


def main(run):
    s = read_settings(run)
    relaunch_if_asked(read_parallel(run.params))  # once its params are checked: a mistake is one line
    neurons, n_pairs = read_neurons(run.run_dir / "neurons.safetensors")
    chance = {site: n.chance for site, n in neurons.items()}
    if n_pairs == 0:  # nothing was learned about the neurons: say so instead of steering at random
        return write_skipped(run, s, chance, next(iter(neurons.values())).nmd.shape[0]) if is_main() else None
    # A ranking no better than chance leaves nothing to choose among: such a run is measured at the
    # paper's setting only (and the report does not count it as evidence), unless the family's
    # search is "always"; a family whose search is off is measured at the paper's setting only.
    # Val is decoded either way: it tells whether each null can change an output at all.
    above_chance = above_chance_at(neurons, s["grid"])  # at a site the search steers at
    searched = searches(s["search"], above_chance)
    val_probes = read_jsonl(run.data_dir / "val.jsonl")[:s["max_prompts"]]
    test_probes = read_jsonl(run.data_dir / "test.jsonl")[:s["max_prompts"]]
    steerer = Steerer.for_run(run, val_probes + test_probes, s["batch_size"])
    arm = arms(s, neurons)
    val = Bench(f"steer {run.name} val", steerer, val_probes, s["ladder"])
    test = Bench(f"steer {run.name} test", steerer, test_probes, s["ladder"])
    chosen, tables = {}, {}  # {"chosen": ours, "paper_grid": the paper's method}
    for setting, name in (("paper_grid", "paper"), ("chosen", "ours")):
        chosen[setting], tables[setting] = choose_points(val, arm[name], s) if searched else (
            {d: (s["paper"], None, False) for d in DIRECTIONS}, {d: [] for d in DIRECTIONS})

    rows = [{**p, "condition": "unsteered", "output": o, "label": lab, "alpha": None}
            for p, o, lab in zip(test.probes, test.outputs, test.labels)]
    results = measure_scopes(test, val, neurons, chosen, searched, s, run.seed, rows)
    curve = {d: dose_response(test, arm["ours"], chosen["chosen"][d][0], d) if searched else None for d in DIRECTIONS}
    layers = layer_ablation(test, arm["ours"], chosen["chosen"], s["max_layers"])
    if not is_main():
        return

    write_jsonl(run.run_dir / "steer_outputs.jsonl", rows)
    write_json(run.metrics_dir / "search.json", {"rule": rule_text(s["max_other"]), "searched": searched,
                                                 **tables["chosen"], "paper_grid": tables["paper_grid"]})
    write_record(run.metrics_dir / "steer.json", SteerRecord(
        n_pairs=n_pairs, chance=chance, paper_point=s["paper"].as_dict(), rule=rule_text(s["max_other"]),
        searched=searched, above_chance=above_chance, draws=s["draws"],
        n_prompts={"val": len(val_probes), "test": len(test.probes)},
        unsteered={"val": val.shares(), "test": test.shares()},
        operating_point=operating_points(chosen["chosen"]), paper_grid_point=operating_points(chosen["paper_grid"]),
        test=results, dose_response=curve, layers=layers))
    write_csv(run.plot_path("dose_response"), dose_rows(curve, s["ladder"]))
    write_csv(run.plot_path("steer_layers"),
              [{"layer": l["layer"], **{d: _blank(l[d] and l[d]["success"]) for d in DIRECTIONS}} for l in layers])


def operating_points(chosen):
    return {d: {"point": p.as_dict(), "val": row, "within_other": within} for d, (p, row, within) in chosen.items()}


def dose_rows(curve, ladder):
    """Plot data: one row per alpha, the shares moved and moved to the target per direction ('' if not measured)."""
    return [{"alpha": a, **{f"{d}_{k}": _blank(curve[d] and curve[d][i][k]) for d in DIRECTIONS
                            for k in ("moved", "success")}} for i, a in enumerate(ladder)]


def write_skipped(run, s, chance, n_layers):
    rule = rule_text(s["max_other"])
    write_jsonl(run.run_dir / "steer_outputs.jsonl", [])
    write_json(run.metrics_dir / "search.json", {"rule": rule, "searched": False, **{d: [] for d in DIRECTIONS},
                                                 "paper_grid": {d: [] for d in DIRECTIONS}})
    write_record(run.metrics_dir / "steer.json", SteerRecord(n_pairs=0, chance=chance, paper_point=s["paper"].as_dict(),
                                                             rule=rule, skipped="no MEM/GEN pairs were found on the probes"))
    write_csv(run.plot_path("dose_response"), dose_rows({d: None for d in DIRECTIONS}, s["ladder"]))
    write_csv(run.plot_path("steer_layers"), [{"layer": l, **{d: "" for d in DIRECTIONS}} for l in range(n_layers)])


def _blank(value):
    """A number for plot data, '' where nothing was measured."""
    return "" if value is None else value


if __name__ == "__main__":
    run_command(main)()
