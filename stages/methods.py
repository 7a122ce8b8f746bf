"""Stage methods: steering methods side by side on one run (memgen.methods): the paper's NMD shift on
its top-N neurons, the dense mean difference at one layer, the probe's direction at one layer and
patching one layer to the target's mean, at the site `methods.site`. Per direction each method is an
arm of the experiment engine: it takes its own candidate on val probes (the engine's rule, the same
number of candidates per method under the default params), then is measured once on held-out test
probes beside its own random direction (steer.null_draws draws), with the paper's own setting
(steer.paper, not chosen) beside them all; one-sided Fisher exact tests of each method against the
NMD shift (both ways). Each scope of steer.scopes again (before_readout: no layer of the last block chosen;
mlp_hidden: the methods at the MLP's hidden units), each method searching its own candidates there."""
from dataclasses import replace

from memgen.activations import read_site
from memgen.evaluate import SOURCE, Steerer, rates
from memgen.experiment import Bench, candidate_key, measure, rule_text, search, with_specificity
from memgen.io import read_jsonl
from memgen.methods import METHODS, PAPER, method_arms, read_methods
from memgen.neuron_store import read_neurons
from memgen.params import Params, derive_seed
from memgen.results import MethodsRecord, write_record
from memgen.run import run_command
from memgen.search import read_knob, read_ladder, read_paper_point, read_scopes, steer_arm
from memgen.steering import DIRECTIONS, SCOPE_SITE, scope_layers
from memgen.stats import exact_greater


def read_settings(run, n_layers):
    sp, fp = run.params.section("steer"), run.family_params.section("steer")
    top_ns = read_knob(run.params, "topN", run.plugin)
    own = fp.section("methods").data if fp.raw("methods", None) is not None else {}  # the family's values win
    section = Params({**run.params.section("methods").data, **own}, "methods")
    return {**read_methods(section, n_layers, run.plugin.sites), "topN": top_ns,
            "paper": read_paper_point(run.params, run.plugin), "ladder": read_ladder(run.params),
            "max_other": sp.float("max_other", lo=0.0, hi=1.0), "max_prompts": fp.int("max_prompts", lo=1),
            "batch_size": sp.int("batch_size", lo=1), "draws": sp.int("null_draws", lo=1), "scopes": read_scopes(sp)}


def method_result(arm, choice, test, val, direction, s, seed):
    """One method at its val-chosen candidate on the direction's test probes, beside its nulls."""
    c, row, within = choice
    if c is None:  # no val probe starts from the source behaviour: nothing to choose by
        return {"candidate": None, "val": None, "within_other": False, "nulls": {},
                **with_specificity(rates([], direction), [])}
    found, _ = measure(test, val, arm, arm.plan(c, direction), direction, s["draws"],
                          derive_seed(seed, "methods", arm.name, direction), candidate_key(arm, c, direction))
    return {"candidate": c.as_dict(), "label": c.label(), "val": row, "within_other": within, **found.pop(arm.name),
            "nulls": found}


def with_exact_tests(result):
    """Each method's and the paper setting's one-sided Fisher exact p-values against the NMD shift, both ways."""
    nmd = result["nmd"]
    for method in (m for m in (*METHODS, PAPER) if m in result):
        r = result[method]
        measured = method != "nmd" and r["n"] and nmd["n"]
        r["p_above_nmd"] = exact_greater(r["k"], r["n"], nmd["k"], nmd["n"]) if measured else None
        r["p_below_nmd"] = exact_greater(nmd["k"], nmd["n"], r["k"], r["n"]) if measured else None
    return result


def mean_states(run, site):
    """{"mem", "gen"}: the pairs' mean state at the site [layers, width]."""
    mem, gen = read_site(run.run_dir / "activations.safetensors", site)
    return {"mem": mem.double().mean(0).float(), "gen": gen.double().mean(0).float()}


def scoped_arms(s, neurons, means, site, scope, n_layers):
    """The methods' arms within a scope: at its site (the methods' own, or the MLP's hidden units), choosing
    among its layers. Outside "all" an arm is named `<method> <scope>`: its own decodes and null seeds."""
    arms = method_arms(s, s["topN"], neurons[site], means, site, scope_layers(scope, n_layers))
    return {m: arm if scope == "all" else replace(arm, name=f"{m} {scope}") for m, arm in arms.items()}


def main(run):
    neurons, n_pairs = read_neurons(run.run_dir / "neurons.safetensors")
    n_layers = next(iter(neurons.values())).nmd.shape[0]
    s = read_settings(run, n_layers)
    record = MethodsRecord(n_pairs=n_pairs, site=s["site"], rule=rule_text(s["max_other"]), draws=s["draws"])
    if n_pairs == 0:
        record.skipped = "no MEM/GEN pairs were found on the probes"
        return write_record(run.metrics_dir / "methods.json", record)
    paper_arm = steer_arm([s["paper"]], neurons)
    val_probes = read_jsonl(run.data_dir / "val.jsonl")[:s["max_prompts"]]
    test_probes = read_jsonl(run.data_dir / "test.jsonl")[:s["max_prompts"]]
    steerer = Steerer.for_run(run, val_probes + test_probes, s["batch_size"])
    val = Bench(f"methods {run.name} val", steerer, val_probes, s["ladder"])
    test = Bench(f"methods {run.name} test", steerer, test_probes, s["ladder"])
    means = {}  # per site, read once: "all" and before_readout share the methods' site
    for scope in s["scopes"]:
        site = SCOPE_SITE.get(scope, s["site"])
        if site not in neurons:  # the family does not map the scope's site
            continue
        if site not in means:
            means[site] = mean_states(run, site)
        arms = scoped_arms(s, neurons, means[site], site, scope, n_layers)
        for d in DIRECTIONS:
            chosen = {}
            for m, arm in arms.items():
                chosen[m], rows = search(val, arm, d, s["max_other"])
                if scope == "all":
                    record.val.setdefault(d, []).extend(rows)
            result = {m: method_result(arm, chosen[m], test, val, d, s, run.seed) for m, arm in arms.items()}
            if scope == "all":
                result[PAPER] = {"point": s["paper"].as_dict(), "label": s["paper"].label(),
                                 **test.measure(paper_arm.plan(s["paper"], d), d).rates}
            (record.test if scope == "all" else record.scopes.setdefault(scope, {}))[d] = \
                {"from": SOURCE[d], **with_exact_tests(result)}
        if scope == "all":
            record.budget = {m: len(arm.candidates) for m, arm in arms.items()}
    record.n_prompts = {"val": len(val_probes), "test": len(test_probes)}
    write_record(run.metrics_dir / "methods.json", record)


if __name__ == "__main__":
    run_command(main)()
