"""Stage steer: shift the top-N neurons by alpha*NMD on held-out probes; M->G and G->M beside
the controls, over a grid of alphas, and one layer at a time."""
import torch

from memgen.evaluate import Steerer, rates, read_neurons, split_by_source
from memgen.io import read_jsonl, write_json, write_jsonl
from memgen.params import derive_seed, steering_knobs
from memgen.plots import write_csv
from memgen.run import run_command
from memgen.steering import DIRECTIONS, control_shifts, layer_shifts, select_top, targeted_shifts
from memgen.tasks import GEN, MEM, OTHER


def main(run):
    top_n, alpha = steering_knobs(run.params)
    sp = run.params.section("steer")
    batch_size, max_prompts = sp.int("batch_size", lo=1), sp.section("max_prompts").int(run.family, lo=1)
    alpha_grid = sp.numbers("alpha_grid", lo=0.0)
    max_layers = sp.section("ablation_layers").raw(run.family)
    if max_layers is not None:  # null: every layer
        max_layers = sp.section("ablation_layers").int(run.family, lo=0)
    probes = read_jsonl(run.data_dir / "test.jsonl")[:max_prompts]
    nmd, rho, n_pairs = read_neurons(run.run_dir / "neurons.safetensors")
    if n_pairs == 0:  # nothing was learned about the neurons: say so instead of steering at random
        write_jsonl(run.run_dir / "steer_outputs.jsonl", [])
        write_json(run.metrics_dir / "steer.json", {"alpha": alpha, "topN": top_n, "n_pairs": 0,
                                                    "skipped": "no MEM/GEN pairs were found on the probes"})
        write_csv(run.plot_path("steer_alpha"), [{"alpha": a, "m2g": "", "g2m": ""} for a in alpha_grid])
        write_csv(run.plot_path("steer_layers"),
                  [{"layer": l, "n_neurons": 0, "m2g": "", "g2m": ""} for l in range(nmd.shape[0])])
        return
    steerer = Steerer.for_run(run, probes, batch_size)
    outputs, labels = steerer.decode(probes, {}, f"steer {run.model_dir}: unsteered")
    rows = [{**p, "condition": "unsteered", "output": o, "label": lab} for p, o, lab in zip(probes, outputs, labels)]
    subsets = split_by_source(probes, labels)

    def measure(condition, direction, shifts):
        outs, labs = steerer.decode(subsets[direction], shifts, f"steer {direction} {condition}")
        rows.extend({**p, "condition": f"{direction}/{condition}", "output": o, "label": lab}
                    for p, o, lab in zip(subsets[direction], outs, labs))
        return rates(labs, direction)

    selected = select_top(rho, top_n)
    generator = torch.Generator().manual_seed(derive_seed(run.seed, "controls"))
    result = {"site": run.site, "alpha": alpha, "topN": top_n, "n_pairs": n_pairs, "n_neurons": len(selected),
              "n_prompts": len(probes),
              "unsteered": {b.lower(): sum(x == b for x in labels) / len(labels) for b in (MEM, GEN, OTHER)}}
    targeted = {d: targeted_shifts(nmd, selected, alpha, d) for d in DIRECTIONS}
    for d in DIRECTIONS:
        result.setdefault("targeted", {})[d] = measure("targeted", d, targeted[d])
        for name, shifts in control_shifts(nmd, rho, selected, alpha, d, generator).items():
            result.setdefault(name, {})[d] = measure(name, d, shifts)

    grid = [{"alpha": a, **{d: measure(f"alpha={a:g}", d, targeted_shifts(nmd, selected, a, d))
                            for d in DIRECTIONS}} for a in alpha_grid]
    result["alpha_grid"] = grid
    # per-layer ablation: only that layer's selected neurons, on the layers holding the most of them
    per_layer_count = torch.bincount(selected // nmd.shape[1], minlength=nmd.shape[0])
    ablated = set(torch.argsort(per_layer_count, descending=True, stable=True)[:max_layers].tolist())
    layers = [{"layer": layer, "n_neurons": int(count), **{
        d: measure(f"layer={layer}", d, layer_shifts(targeted[d], layer)) if count and layer in ablated else None
        for d in DIRECTIONS}} for layer, count in enumerate(per_layer_count.tolist())]
    result["layers"] = layers

    write_jsonl(run.run_dir / "steer_outputs.jsonl", rows)
    write_json(run.metrics_dir / "steer.json", result)
    write_csv(run.plot_path("steer_alpha"),
              [{"alpha": g["alpha"], **{d: _share(g[d]) for d in DIRECTIONS}} for g in grid])
    write_csv(run.plot_path("steer_layers"),
              [{"layer": l["layer"], "n_neurons": l["n_neurons"], **{d: _share(l[d]) for d in DIRECTIONS}}
               for l in layers])


def _share(r):
    """A success share for plot data ('' where nothing was measured)."""
    return "" if r is None or r["success"] is None else r["success"]


if __name__ == "__main__":
    run_command(main)()
