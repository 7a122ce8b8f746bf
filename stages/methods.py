"""Stage methods: steering methods side by side on one run (memgen.methods): the paper's NMD shift on
its top-N neurons, the dense mean difference at one layer, the probe's direction at one layer and
patching one layer to the target's mean, at the site `methods.site`. Per direction each method takes
its own operating point on val probes (steer.max_other's rule over its schedules, layers or topN, and
strengths), then is measured once on held-out test probes, beside the paper's own setting (steer.paper,
not chosen) and a random direction of the mean difference's norm at its chosen point; one-sided Fisher
exact tests of each method against the NMD shift (both ways) and against the random direction."""
import torch

from memgen.activations import read_site
from memgen.evaluate import SOURCE, Outputs, Steerer, rates, split_by_source
from memgen.io import read_jsonl, write_json
from memgen.methods import METHODS, PAPER, RANDOM, build, candidates, random_direction, read_methods
from memgen.neuron_store import read_neurons
from memgen.params import Params, derive_seed
from memgen.progress import progress_bar
from memgen.run import run_command
from memgen.search import choose, intervention, read_knob, read_ladder, read_paper_point
from memgen.steering import DIRECTIONS
from memgen.stats import exact_greater


def read_settings(run, n_layers):
    sp, fp = run.params.section("steer"), run.family_params.section("steer")
    top_ns = read_knob(run.params, "topN", run.plugin)
    own = fp.section("methods").data if fp.raw("methods", None) is not None else {}  # the family's values win
    section = Params({**run.params.section("methods").data, **own}, "methods")
    return {**read_methods(section, n_layers, run.plugin.sites), "topN": top_ns,
            "paper": read_paper_point(run.params, run.plugin), "ladder": read_ladder(run.params),
            "max_other": sp.float("max_other", lo=0.0, hi=1.0), "max_prompts": fp.int("max_prompts", lo=1),
            "batch_size": sp.int("batch_size", lo=1)}


def decode_rates(steerer, probes, unsteered, iv, site, schedule, alpha, ladder, direction):
    outs, _ = Outputs(steerer, probes, iv, site, schedule).run(alpha, unsteered, ladder)
    return rates(steerer.labels(outs, probes), direction)


def choose_on_val(steerer, val, s, site, means, direction, desc):
    """{method: (chosen candidate or None, its val row, within the OTHER bound)} and every val row."""
    probes, unsteered = val
    chosen, table = {}, []
    grids = {m: candidates(m, s, s["topN"]) for m in METHODS}
    with progress_bar(desc, total=sum(map(len, grids.values()))) as advance:
        for method, grid in grids.items():
            rows = []
            for c in grid:
                iv = build(c, site, means, direction)
                r = decode_rates(steerer, probes, unsteered, iv, s["site"], c.schedule, c.alpha, s["ladder"], direction)
                rows.append({**c.as_dict(), "n_neurons": len(iv.idx), **r})
                advance(1)
            row, within = choose(rows, s["max_other"])
            chosen[method] = (grid[rows.index(row)] if row else None), row, within
            table.extend(rows)
    return chosen, table


def measure(steerer, test, s, neurons, means, chosen, direction, generator):
    """Each method at its chosen candidate on the direction's test probes, the paper's setting and the
    random direction; with the exact tests."""
    probes, unsteered = test
    site = neurons[s["site"]]
    result = {}
    for method, (c, row, within) in chosen.items():
        if c is None:  # no val probe starts from the source behaviour: nothing to choose by
            result[method] = {"candidate": None, "val": None, "within_other": False, **rates([], direction)}
            continue
        iv = build(c, site, means, direction)
        result[method] = {"candidate": c.as_dict(), "label": c.label(), "val": row, "within_other": within,
                          **decode_rates(steerer, probes, unsteered, iv, s["site"], c.schedule, c.alpha, s["ladder"],
                                         direction)}
    paper = s["paper"]
    result[PAPER] = {"point": paper.as_dict(), "label": paper.label(), **decode_rates(
        steerer, probes, unsteered, intervention(paper, neurons, direction), paper.site, paper.schedule, paper.alpha,
        s["ladder"], direction)}
    c = chosen["mean_difference"][0]
    result[RANDOM] = {"candidate": None, **rates([], direction)} if c is None else {
        "candidate": c.as_dict(), "label": c.label(), **decode_rates(
            steerer, probes, unsteered, random_direction(build(c, site, means, direction), generator), s["site"],
            c.schedule, c.alpha, s["ladder"], direction)}
    nmd, rnd = result["nmd"], result[RANDOM]
    for method in (*METHODS, PAPER):
        r = result[method]
        r["p_above_nmd"] = exact_greater(r["k"], r["n"], nmd["k"], nmd["n"]) if method != "nmd" else None
        r["p_below_nmd"] = exact_greater(nmd["k"], nmd["n"], r["k"], r["n"]) if method != "nmd" else None
        r["p_above_random"] = exact_greater(r["k"], r["n"], rnd["k"], rnd["n"])
    return result


def main(run):
    neurons, n_pairs = read_neurons(run.run_dir / "neurons.safetensors")
    n_layers = next(iter(neurons.values())).nmd.shape[0]
    s = read_settings(run, n_layers)
    out = {"n_pairs": n_pairs, "site": s["site"], "rule": "on val probes, per method: the highest success with "
           f"OTHER <= {s['max_other']:g}; ties go to fewer neurons, then a smaller strength; else the least OTHER"}
    if n_pairs == 0:
        write_json(run.metrics_dir / "methods.json", {**out, "skipped": "no MEM/GEN pairs were found on the probes"})
        return
    mem, gen = read_site(run.run_dir / "activations.safetensors", s["site"])
    means = {"mem": mem.double().mean(0).float(), "gen": gen.double().mean(0).float()}
    val_probes = read_jsonl(run.data_dir / "val.jsonl")[:s["max_prompts"]]
    test_probes = read_jsonl(run.data_dir / "test.jsonl")[:s["max_prompts"]]
    steerer = Steerer.for_run(run, val_probes + test_probes, s["batch_size"])
    split = {}
    for name, probes in (("val", val_probes), ("test", test_probes)):
        outs = steerer.decode(probes, desc=f"methods {run.name} {name}: unsteered")
        split[name] = probes, outs, split_by_source(steerer.labels(outs, probes))
    generator = torch.Generator().manual_seed(derive_seed(run.seed, "methods"))
    val_rows, test = {}, {}
    for d in DIRECTIONS:
        part = {name: ([probes[i] for i in by[d]], [outs[i] for i in by[d]]) for name, (probes, outs, by) in split.items()}
        chosen, val_rows[d] = choose_on_val(steerer, part["val"], s, neurons[s["site"]], means, d,
                                            f"methods {run.name} val: {d}")
        test[d] = {"from": SOURCE[d], **measure(steerer, part["test"], s, neurons, means, chosen, d, generator)}
    write_json(run.metrics_dir / "methods.json", {**out, "n_prompts": {"val": len(val_probes), "test": len(test_probes)},
                                                  "test": test, "val": val_rows})


if __name__ == "__main__":
    run_command(main)()
