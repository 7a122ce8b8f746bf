"""Stage steer: shift the top-N neurons by alpha*NMD on held-out probes; M->G, G->M and the random baseline."""
import torch

from memgen.behaviour import max_answer_tokens, run_probes
from memgen.io import read_jsonl, read_tensor_metadata, read_tensors, require_keys, write_json, write_jsonl
from memgen.params import derive_seed, steering_knobs
from memgen.run import run_command
from memgen.sites import shift_last
from memgen.steering import TO_GEN, TO_MEM, random_shifts, select_top, targeted_shifts
from memgen.tasks import GEN, MEM, OTHER

SOURCE = {TO_GEN: MEM, TO_MEM: GEN}   # the unsteered behaviour each direction starts from
TARGET = {TO_GEN: GEN, TO_MEM: MEM}


def rates(labels, direction):
    n = len(labels)
    share = (lambda b: sum(x == b for x in labels) / n) if n else (lambda b: None)
    return {"n": n, "success": share(TARGET[direction]), "other": share(OTHER), "unchanged": share(SOURCE[direction])}


def main(run):
    top_n, alpha = steering_knobs(run.params)
    sp = run.params.section("steer")
    batch_size, max_prompts = sp.int("batch_size", lo=1), sp.section("max_prompts").int(run.family, lo=1)
    site = run.site
    probes = read_jsonl(run.data_dir / "test.jsonl")[:max_prompts]
    neurons_path = run.run_dir / "neurons.safetensors"
    stats = require_keys(read_tensors(neurons_path), ["nmd", "rho"], neurons_path)
    n_pairs = int(require_keys(read_tensor_metadata(neurons_path), ["n_pairs"], neurons_path)["n_pairs"])
    nmd, rho = stats["nmd"], stats["rho"]
    if n_pairs == 0:  # nothing was learned about the neurons: say so instead of steering at random
        write_jsonl(run.run_dir / "steer_outputs.jsonl", [])
        write_json(run.metrics_dir / "steer.json", {"alpha": alpha, "topN": top_n, "n_pairs": 0,
                                                    "skipped": "no MEM/GEN pairs were found on the probes"})
        return
    model, codec = run.load_model()
    modules = run.site_modules(model)
    max_new = max_answer_tokens(codec, probes)

    def decode(subset, shifts, desc):
        if not subset:
            return [], []
        with shift_last(modules, shifts):
            return run_probes(model, codec, run.task, subset, batch_size, desc=desc, max_new_tokens=max_new)

    outputs, labels = decode(probes, {}, f"steer {run.model_dir}: unsteered")
    selected = select_top(rho, top_n)
    max_abs = float(nmd.flatten()[selected].abs().max())
    generator = torch.Generator().manual_seed(derive_seed(run.seed, "random-baseline"))
    result = {"site": site, "alpha": alpha, "topN": top_n, "n_pairs": n_pairs, "n_neurons": len(selected), "n_prompts": len(probes),
              "unsteered": {b.lower(): sum(x == b for x in labels) / len(labels) for b in (MEM, GEN, OTHER)}}
    rows = [{**p, "condition": "unsteered", "output": o, "label": lab} for p, o, lab in zip(probes, outputs, labels)]
    for direction in (TO_GEN, TO_MEM):
        subset = [p for p, lab in zip(probes, labels) if lab == SOURCE[direction]]
        conditions = {"targeted": targeted_shifts(nmd, selected, alpha, direction),
                      "random": random_shifts(nmd.shape, len(selected), max_abs, generator)}
        for name, shifts in conditions.items():
            outs, labs = decode(subset, shifts, f"steer {direction} {name}")
            result.setdefault(name, {})[direction] = rates(labs, direction)
            rows += [{**p, "condition": f"{direction}/{name}", "output": o, "label": lab}
                     for p, o, lab in zip(subset, outs, labs)]
    write_jsonl(run.run_dir / "steer_outputs.jsonl", rows)
    write_json(run.metrics_dir / "steer.json", result)


if __name__ == "__main__":
    run_command(main)()
