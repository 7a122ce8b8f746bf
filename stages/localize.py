"""Stage localize: on a planted model, how well the pipeline's own ranking finds the units the memory
was planted in, and how close steering the ranked units comes to steering the planted ones.

Scores over every MLP hidden unit (the site the memory was put in): |rho| (the paper's ranking), |NMD|,
|NMD| over the unit's spread, the size of the unit's weight in the discriminant (a linear probe's
direction), and two gradient scores of the MEM answer's margin over the GEN answer's at the MEM prompts
(gradient x activation; attribution patching, gradient x the MEM - GEN difference). Each: recall of the planted units in its top k (k = their number; precision is the same
number at that k), recall at other k, and the AUROC over all units, beside a random ranking's.
Steering, per direction: the planted units (the oracle), the top k by |rho| (the method) and k random
other units with the ranked units' shift sizes (the control), each moved by alpha x NMD at its own
val-chosen schedule and alpha (steer.max_other), then measured once on held-out test probes.
Run as `localize FAMILY TASK REP`."""
import torch

from memgen.activations import read_site
from memgen.errors import UserError
from memgen.evaluate import SOURCE, Outputs, Steerer, rates, split_by_source
from memgen.io import read_json, read_jsonl, write_json
from memgen.neuron_store import read_neurons
from memgen.pairs import read_pairs
from memgen.params import derive_seed
from memgen.planting import UNITS_FILE, chance, localization, truth_mask
from memgen.run import planted_command
from memgen.search import choose, read_grid, read_ladder, read_narrow
from memgen.sites import UNIT_SITE, margin_gradients
from memgen.stats import exact_greater
from memgen.steering import ADAPTIVE, DIRECTIONS, Intervention, random_others, random_signs, targeted


ARMS = ("oracle", "ranked", "random")  # random: at the ranked arm's chosen point and dose


def spread(mem, gen):
    """Each unit's standard deviation over the 2N states of the pairs [layers, width]."""
    return torch.cat([mem, gen]).double().std(0).float()


def gradient_scores(run, mem, gen, batch_size):
    """Two gradient scores per unit from the margin D = logit(the MEM answer's first token) - logit(the GEN
    answer's) at each pair's MEM prompt: gradient x activation, |mean of a x dD/da|, and attribution patching,
    |mean of (a_MEM - a_GEN) x dD/da| (to first order, how much D falls when the unit takes its GEN-prompt value).
    mem, gen: the pairs' states at the site [pairs, layers, width]."""
    answers = {p["prompt"]: p for p in read_jsonl(run.data_dir / "probe.jsonl")}
    prompts = [m for m, _ in read_pairs(run.run_dir / "pairs.json")]
    model, codec = run.load_model()
    first = lambda text: codec.target_ids(text)[0]  # noqa: E731
    up = torch.tensor([first(answers[p]["mem"]) for p in prompts])
    down = torch.tensor([first(answers[p]["gen"]) for p in prompts])
    g = margin_gradients(model, codec, run.plugin.site_modules(model, UNIT_SITE), prompts, up, down, batch_size)
    return {"grad_x_act": (mem * g).mean(0).abs(), "attribution": ((mem - gen) * g).mean(0).abs()}


def unit_scores(site_neurons, sd):
    return {"abs_rho": site_neurons.rho.abs(), "abs_nmd": site_neurons.nmd.abs(),
            "nmd_over_sd": torch.where(sd > 0, site_neurons.nmd.abs() / sd, torch.zeros_like(sd)),
            "discriminant": site_neurons.discriminant.abs()}


def arm_interventions(nmd, rho, truth, direction, generator):
    """{arm: Intervention}: the planted units, the top k by |rho|, and k random units outside both with
    the ranked units' shift sizes and random signs."""
    k = int(truth.sum())
    planted = truth.flatten().nonzero().flatten()
    ranked = torch.argsort(rho.abs().flatten(), descending=True, stable=True)[:k]
    ranked_iv = targeted(nmd, ranked, direction)
    others = random_others(nmd.numel(), torch.cat([planted, ranked]), k, generator)
    sizes = ranked_iv.per_alpha.abs()[:len(others)]
    return {"oracle": targeted(nmd, planted, direction), "ranked": ranked_iv,
            "random": Intervention(others, sizes * random_signs(len(others), generator), nmd.shape[1])}


def search_rows(steerer, probes, unsteered, iv, grid, ladder, direction):
    rows = []
    for schedule, alpha in grid:
        outs, _ = Outputs(steerer, probes, iv, UNIT_SITE, schedule).run(alpha, unsteered, ladder)
        rows.append({"schedule": schedule, "alpha": alpha, "n_neurons": len(iv.idx),
                     **rates(steerer.labels(outs, probes), direction)})
    return rows


def main(run):
    sp, fp = run.params.section("steer"), run.family_params.section("steer")
    max_other, max_prompts = sp.float("max_other", lo=0.0, hi=1.0), fp.int("max_prompts", lo=1)
    ladder = read_ladder(run.params)
    points = read_grid(run.params, run.plugin, read_narrow(fp))
    grid = sorted({(p.schedule, p.alpha) for p in points}, key=lambda sa: (sa[0], str(sa[1])))
    planted = read_json(run.model_dir / UNITS_FILE)
    neurons, n_pairs = read_neurons(run.run_dir / "neurons.safetensors")
    if UNIT_SITE not in neurons:
        raise UserError(f"{run.run_dir / 'neurons.safetensors'}: no {UNIT_SITE!r} site (re-run extract and neurons)")
    site = neurons[UNIT_SITE]
    n_layers, width = site.rho.shape
    truth = truth_mask({int(l): torch.tensor(idx) for l, idx in planted["units"].items()}, n_layers, width)
    k, total = int(truth.sum()), truth.numel()
    ks = sorted({k, *[2 ** i for i in range(total.bit_length()) if 2 ** i <= total], total})
    result = {"n_pairs": n_pairs, "site": UNIT_SITE, "n_planted": k, "n_units": total,
              "chance": chance(total, k, k), "chance_at": {str(j): chance(total, k, j)["recall"] for j in ks},
              "ranking_above_chance": site.above_chance, "null": site.chance}
    if n_pairs == 0:
        write_json(run.metrics_dir / "localize.json", {**result, "skipped": "no MEM/GEN pairs were found on the probes"})
        return
    mem, gen = read_site(run.run_dir / "activations.safetensors", UNIT_SITE)
    scores = {**unit_scores(site, spread(mem, gen)),
              **gradient_scores(run, mem, gen, run.params.section("probe").int("batch_size", lo=1))}
    result["scores"] = localization(scores, truth, ks)
    for name, score in scores.items():  # where each score's top k lie: what it finds instead of the planted units
        top = torch.argsort(score.flatten(), descending=True, stable=True)[:k]
        result["scores"][name]["top_k_by_layer"] = torch.bincount(top // width, minlength=n_layers).tolist()
    result["planted_by_layer"] = truth.sum(1).tolist()

    val_probes = read_jsonl(run.data_dir / "val.jsonl")[:max_prompts]
    test_probes = read_jsonl(run.data_dir / "test.jsonl")[:max_prompts]
    steerer = Steerer.for_run(run, val_probes + test_probes, sp.int("batch_size", lo=1))
    generator = torch.Generator().manual_seed(derive_seed(run.seed, "localize"))
    steering = {}
    split = {}
    for name, probes in (("val", val_probes), ("test", test_probes)):
        outs = steerer.decode(probes, desc=f"localize {run.name} {name}: unsteered")
        split[name] = probes, outs, split_by_source(steerer.labels(outs, probes))
    for d in DIRECTIONS:
        ivs = arm_interventions(site.nmd, site.rho, truth, d, generator)
        part = {name: ([probes[i] for i in by[d]], [outs[i] for i in by[d]]) for name, (probes, outs, by) in split.items()}
        chosen = {}
        for arm in ("oracle", "ranked"):
            rows = search_rows(steerer, *part["val"], ivs[arm], grid, ladder, d)
            row, within = choose(rows, max_other)
            chosen[arm] = ((row["schedule"], row["alpha"]) if row else grid[0]), within
        test_probes_d, unsteered = part["test"]
        labels, moved = {}, {}
        for arm in ("oracle", "ranked"):
            (schedule, alpha), _ = chosen[arm]
            outs, moved[arm] = Outputs(steerer, test_probes_d, ivs[arm], UNIT_SITE, schedule).run(alpha, unsteered, ladder)
            labels[arm] = steerer.labels(outs, test_probes_d)
        (schedule, alpha), _ = chosen["ranked"]
        dose = [ladder[-1] if a is None else a for a in moved["ranked"]] if alpha == ADAPTIVE else [alpha] * len(test_probes_d)
        outs = Outputs(steerer, test_probes_d, ivs["random"], UNIT_SITE, schedule).at_each(dose)
        labels["random"] = steerer.labels(outs, test_probes_d)
        arms = {arm: rates(labels[arm], d) for arm in ARMS}
        for arm in ("ranked", "random"):
            arms[arm]["p_oracle_greater"] = exact_greater(arms["oracle"]["k"], arms["oracle"]["n"], arms[arm]["k"], arms[arm]["n"])
        arms["ranked"]["p_greater_than_random"] = exact_greater(arms["ranked"]["k"], arms["ranked"]["n"],
                                                                arms["random"]["k"], arms["random"]["n"])
        steering[d] = {"from": SOURCE[d], "point": {arm: {"schedule": c[0][0], "alpha": c[0][1], "within_other": c[1]}
                                                     for arm, c in chosen.items()}, **arms}
    write_json(run.metrics_dir / "localize.json", {**result, "steering": steering})


if __name__ == "__main__":
    planted_command(main, __doc__)()
