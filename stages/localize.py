"""Stage localize: on a planted model, how well the pipeline's own ranking finds the units the memory
was planted in, and how close steering the ranked units comes to steering the planted ones.

Scores over every MLP hidden unit (the site the memory was put in): |rho| (the paper's ranking), |NMD|, the
size of the unit's weight in the discriminant (a linear probe's direction), two gradient scores of the MEM
answer's margin over the GEN answer's at the MEM prompts (gradient x activation; attribution patching, gradient
x the MEM - GEN difference), and the field's localizers read from memorized training examples (memgen.localizers:
activations, zero-out, integrated gradients, slimming, hard concrete). Each: recall of the planted units in its
top k (k = their number; precision is the same number at that k), recall at other k, and the AUROC over all
units, beside a random ranking's; and a deletion test: its top k units zeroed at every position, the share of
the test prompts answered from memory that still are (MEM kept) against the share answered by the rule that
still are (GEN kept), beside the planted units and random sets of k units.
Steering, per direction, as arms of the experiment engine: the planted units (the oracle) and the
top k by |rho| (the method), each moved by alpha x NMD at its own val-chosen schedule and alpha (the
engine's rule, among localize.doses), then measured once on held-out test probes; beside the ranked arm, its matched null
(k random units in the same layers with its shift sizes and random signs, steer.null_draws draws).
And what each score found: its top k moved at the paper's setting (steer.paper's schedule and alpha) and at
the oracle's val-chosen point, beside the planted units there and random units matched to them, on every test
probe (localize.max_prompts), with the power the probes give to tell a 10-point difference from the oracle.
Run as `localize FAMILY planted REP TASK`."""
import itertools
from dataclasses import asdict, dataclass

import torch

from memgen.activations import read_site
from memgen.errors import UserError
from memgen.evaluate import SOURCE, Steerer
from memgen.experiment import RANDOM_NEURONS, Arm, Bench, Plan, candidate_key, measure, search
from memgen.io import read_json, read_jsonl
from memgen.neuron_store import read_neurons
from memgen.pairs import read_pairs
from memgen.params import derive_seed
from memgen.results import LocalizeRecord, write_record
from memgen.planting import UNITS_FILE, chance, localization, truth_mask
from memgen.run import run_command
from memgen.search import read_knob, read_ladder, read_paper_point
from memgen.localizers import (Examples, activations, hard_concrete, integrated_gradients, knock_out, scaled_units,
                               slimming, zero_out)
from memgen.progress import progress_bar
from memgen.sites import UNIT_SITE, margin_gradients
from memgen.stats import exact_greater, power_to_detect
from memgen.steering import DIRECTIONS, targeted
from memgen.tasks import GEN, MEM




@dataclass(frozen=True)
class Dose:
    """A localize candidate: when and how strongly the arm's units move."""
    schedule: str
    alpha: object

    def as_dict(self):
        return asdict(self)


def gradient_scores(run, model, codec, mem, gen, batch_size):
    """Two gradient scores per unit from the margin D = logit(the MEM answer's first token) - logit(the GEN
    answer's) at each pair's MEM prompt: gradient x activation, |mean of a x dD/da|, and attribution patching,
    |mean of (a_MEM - a_GEN) x dD/da| (to first order, how much D falls when the unit takes its GEN-prompt value).
    mem, gen: the pairs' states at the site [pairs, layers, width]."""
    answers = {p["prompt"]: p for p in read_jsonl(run.data_dir / "probe.jsonl")}
    prompts = [m for m, _ in read_pairs(run.run_dir / "pairs.json")]
    first = lambda text: codec.target_ids(text)[0]  # noqa: E731
    up = torch.tensor([first(answers[p]["mem"]) for p in prompts])
    down = torch.tensor([first(answers[p]["gen"]) for p in prompts])
    g = margin_gradients(model, codec, run.plugin.site_modules(model, UNIT_SITE), prompts, up, down, batch_size)
    return {"grad_x_act": (mem * g).mean(0).abs(), "attribution": ((mem - gen) * g).mean(0).abs()}


def unit_scores(site_neurons):
    return {"abs_rho": site_neurons.rho.abs(), "abs_nmd": site_neurons.nmd.abs(),
            "discriminant": site_neurons.discriminant.abs()}


def field_scores(run, model, codec, mem, s):
    """The field's localizers (memgen.localizers) on memorized training examples, one per memory (the first example
    of each memorized answer, up to localize.max_examples), their loss read with the weights frozen; activations
    from the pairs' MEM states."""
    first = {}
    for e in read_jsonl(run.data_dir / "train.jsonl"):
        if run.task.is_memorized(e):
            first.setdefault(e["target"], e)
    examples = list(first.values())[:s["max_examples"]]
    batch = Examples.of(codec, [e["prompt"] for e in examples], [e["target"] for e in examples],
                        next(model.parameters()).device)
    modules, width = run.plugin.site_modules(model, UNIT_SITE), mem.shape[2]
    for p in model.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(derive_seed(run.seed, "hard_concrete"))
    mask = s["mask"]
    return {"activations": activations(mem), "zero_out": zero_out(model, modules, batch, width),
            "integrated_gradients": integrated_gradients(model, modules, batch, width, s["ig_steps"]),
            "slimming": slimming(model, modules, batch, width, mask["steps"], mask["lr"], mask["penalty"]),
            "hard_concrete": hard_concrete(model, modules, batch, width, generator, mask["steps"], mask["lr"],
                                           mask["penalty"])}


def top_k(score, k):
    """The k units of highest score (flat indices; ties in index order)."""
    return torch.argsort(score.flatten(), descending=True, stable=True)[:k]


def unit_planner(site, idx):
    """plan(dose, direction): the units idx at the hidden units, each shifted by alpha x NMD towards the direction."""
    return lambda dose, d: Plan(targeted(site.nmd, idx, d), UNIT_SITE, dose.schedule, dose.alpha, site.nmd.shape[0])


def unit_arms(site, truth, doses):
    """{arm: Arm} at the hidden units: the planted units (oracle) and the top k by |rho| (ranked, with its
    matched random units as the null), each shifted by alpha x NMD."""
    ranked = top_k(site.rho.abs(), int(truth.sum()))
    return {"oracle": Arm("oracle", doses, unit_planner(site, truth.flatten().nonzero().flatten())),
            "ranked": Arm("ranked", doses, unit_planner(site, ranked), (RANDOM_NEURONS,))}


def found_arms(site, truth, scores):
    """{arm: Arm} steered at a given dose (no val search of their own): the planted units (oracle; its null: random
    units in the same layers with its shift sizes and random signs) and each score's top k."""
    k, planted = int(truth.sum()), truth.flatten().nonzero().flatten()
    return {"oracle": Arm("oracle", (), unit_planner(site, planted), (RANDOM_NEURONS,)),
            **{name: Arm(name, (), unit_planner(site, top_k(score, k))) for name, score in scores.items()}}


def benches(run, s):
    """(val bench, test bench) of the planted run's probes."""
    steerer = Steerer.for_run(run, s["val"] + s["test"], s["batch_size"])
    return (Bench(f"localize {run.name} val", steerer, s["val"], s["ladder"]),
            Bench(f"localize {run.name} test", steerer, s["test"], s["ladder"]))


def steer_found(run, val, test, arms, doses, s):
    """{setting: {direction: ...}}: at each setting's dose per direction ({setting: {direction: Dose}}), every arm
    on the test probes, the oracle's null beside it, the one-sided exact p that the oracle steers more than each
    score's top k, and the power to tell a 10-point difference from the oracle's success with this many probes."""
    found = {}
    for setting, by_direction in doses.items():
        found[setting] = {}
        for d, dose in by_direction.items():
            rates = {}
            for name, arm in arms.items():
                measured, _ = measure(test, val, arm, arm.plan(dose, d), d, s["draws"],
                                      derive_seed(run.seed, "localize", setting, name, d), candidate_key(arm, dose, d))
                rates.update(measured)
            oracle = rates["oracle"]
            for name in (name for name in arms if name != "oracle"):
                r = rates[name]
                r["p_oracle_greater"] = exact_greater(oracle["k"], oracle["n"], r["k"], r["n"])
            found[setting][d] = {"from": SOURCE[d], "point": dose.as_dict(), "n": oracle["n"],
                                 "power_10_points": power_to_detect(oracle["success"], 0.1, oracle["n"]), **rates}
    return found


def steer_units(run, val, test, arms, s):
    """Per direction: each arm at its val-chosen dose on test, the ranked arm's null beside it, exact tests."""
    steering = {}
    for d in DIRECTIONS:
        found, point = {}, {}
        for name, arm in arms.items():
            (dose, _, within), _ = search(val, arm, d, s["max_other"])
            dose = dose or arm.candidates[0]
            point[name] = {**dose.as_dict(), "within_other": within}
            measured, _ = measure(test, val, arm, arm.plan(dose, d), d, s["draws"],
                                     derive_seed(run.seed, "localize", name, d), candidate_key(arm, dose, d))
            found.update(measured)
        oracle, ranked = found["oracle"], found["ranked"]
        ranked["p_oracle_greater"] = exact_greater(oracle["k"], oracle["n"], ranked["k"], ranked["n"])
        steering[d] = {"from": SOURCE[d], "point": point, **found}
    return steering


def read_settings(run):
    sp, fp = run.params.section("steer"), run.family_params.section("steer")
    max_prompts = fp.int("max_prompts", lo=1)
    lp = run.params.section("localize")
    test_prompts = None if lp.raw("max_prompts", None) is None else lp.int("max_prompts", lo=1)  # None: every one
    paper = read_paper_point(run.params, run.plugin)
    # the benchmark's own dose grid: a sweep of the top-level alpha or schedule leaves it as it is
    dose_grid = itertools.product(*(read_knob(lp.section("doses"), k, run.plugin) for k in ("schedule", "alpha")))
    doses = sorted({Dose(*dose) for dose in dose_grid}, key=lambda d: (d.schedule, str(d.alpha)))
    mask = lp.section("mask")
    return {"paper": Dose(paper.schedule, paper.alpha), "max_other": sp.float("max_other", lo=0.0, hi=1.0),
            "ladder": read_ladder(run.params),
            "doses": tuple(doses), "batch_size": sp.int("batch_size", lo=1), "draws": sp.int("null_draws", lo=1),
            "probe_batch_size": run.params.section("probe").int("batch_size", lo=1),
            "max_examples": lp.int("max_examples", lo=1), "ig_steps": lp.int("ig_steps", lo=1),
            "deletion_draws": lp.int("deletion_draws", lo=0),
            "mask": {"steps": mask.int("steps", lo=1), "lr": mask.float("lr", lo=0.0),
                     "penalty": mask.float("penalty", lo=0.0)},
            "val": read_jsonl(run.data_dir / "val.jsonl")[:max_prompts],
            "test": read_jsonl(run.data_dir / "test.jsonl")[:test_prompts]}


def score_units(run, site, truth, ks, s):
    """(each unit score, its recall and AUROC against the planted units and where its top k lie by layer)."""
    n_layers, width = site.rho.shape
    mem, gen = read_site(run.run_dir / "activations.safetensors", UNIT_SITE)
    model, codec = run.load_model()
    scores = {**unit_scores(site), **gradient_scores(run, model, codec, mem, gen, s["probe_batch_size"]),
              **field_scores(run, model, codec, mem, s)}
    result = localization(scores, truth, ks)
    for name, score in scores.items():  # where each score's top k lie: what it finds instead of the planted units
        top = top_k(score, int(truth.sum()))
        result[name]["top_k_by_layer"] = torch.bincount(top // width, minlength=n_layers).tolist()
    return scores, result


def deletion_test(run, test, scores, truth, s):
    """Each score's top k units (k the planted count), the planted units and `deletion_draws` random sets of k
    units, each zeroed at every position: of the test prompts the model answers from memory, the share still
    answered so (mem_kept), and of those it answers by the rule, the share still so (gen_kept)."""
    steerer, probes, before = test.steerer, test.probes, test.labels
    modules = steerer.modules[UNIT_SITE]
    n_layers, width = truth.shape
    k = int(truth.sum())

    def kept(units):
        with scaled_units(modules, knock_out(units, n_layers, width)):
            after = steerer.labels(steerer.decode(probes), probes)
        return {f"{b.lower()}_kept": share_kept(before, after, b) for b in (MEM, GEN)}
    generator = torch.Generator().manual_seed(derive_seed(run.seed, "deletion"))
    ranked = {name: top_k(score, k) for name, score in scores.items()}
    with progress_bar(f"localize {run.name}: deletion", total=len(ranked) + 1 + s["deletion_draws"]) as advance:
        arms = {}
        for name, units in [("planted", truth.flatten().nonzero().flatten()), *ranked.items()]:
            arms[name] = kept(units)
            advance(1)
        draws = []
        for _ in range(s["deletion_draws"]):
            draws.append(kept(torch.randperm(truth.numel(), generator=generator)[:k]))
            advance(1)
    return {"k": k, "n": {b.lower(): sum(lab == b for lab in before) for b in (MEM, GEN)}, "arms": arms,
            "random": {key: [d[key] for d in draws] for key in ("mem_kept", "gen_kept")}}


def share_kept(before, after, behaviour):
    """Of the prompts showing `behaviour` before, the share showing it after (None without any)."""
    showing = [a == behaviour for b, a in zip(before, after) if b == behaviour]
    return sum(showing) / len(showing) if showing else None


def main(run):
    s = read_settings(run)
    planted = read_json(run.model_dir / UNITS_FILE)
    neurons, n_pairs = read_neurons(run.run_dir / "neurons.safetensors")
    if UNIT_SITE not in neurons:
        raise UserError(f"{run.run_dir / 'neurons.safetensors'}: no {UNIT_SITE!r} site (re-run extract and neurons)")
    site = neurons[UNIT_SITE]
    n_layers, width = site.rho.shape
    truth = truth_mask({int(l): torch.tensor(idx) for l, idx in planted["units"].items()}, n_layers, width)
    k, total = int(truth.sum()), truth.numel()
    ks = sorted({k, *[2 ** i for i in range(total.bit_length()) if 2 ** i <= total], total})
    record = LocalizeRecord(n_pairs=n_pairs, site=UNIT_SITE, n_planted=k, n_units=total, chance=chance(total, k, k),
                            chance_at={str(j): chance(total, k, j)["recall"] for j in ks},
                            ranking_above_chance=site.above_chance, null=site.chance)
    if n_pairs == 0:
        record.skipped = "no MEM/GEN pairs were found on the probes"
        return write_record(run.metrics_dir / "localize.json", record)
    scores, record.scores = score_units(run, site, truth, ks, s)
    val, test = benches(run, s)
    record.deletion = deletion_test(run, test, scores, truth, s)
    record.planted_by_layer = truth.sum(1).tolist()
    record.steering = steer_units(run, val, test, unit_arms(site, truth, s["doses"]), s)
    oracle_points = {d: Dose(arms["point"]["oracle"]["schedule"], arms["point"]["oracle"]["alpha"])
                     for d, arms in record.steering.items()}
    record.found = steer_found(run, val, test, found_arms(site, truth, scores),
                               {"paper": {d: s["paper"] for d in DIRECTIONS}, "oracle_point": oracle_points}, s)
    write_record(run.metrics_dir / "localize.json", record)


if __name__ == "__main__":
    run_command(main, __doc__)()
