"""Stage extract: the site's state at the last prompt token, every layer, for both prompts of each pair."""
import torch

from memgen.generate import forward_prompts
from memgen.io import read_json, require_keys, write_tensors
from memgen.run import run_command
from memgen.sites import capture_last


def capture(model, codec, modules, prompts, batch_size, desc):
    """[len(prompts), layers, width] float32 states at the last prompt token."""
    if not prompts:  # no pairs: an empty store, which the neurons stage reports as such
        return torch.zeros(0, len(modules), model.config.hidden_size)
    store = [[] for _ in modules]
    with capture_last(modules, store):
        forward_prompts(model, codec, prompts, batch_size, desc=desc)
    return torch.stack([torch.cat(layer) for layer in store], dim=1)


def main(run):
    site = run.site
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    pairs_path = run.run_dir / "pairs.json"
    pairs = require_keys(read_json(pairs_path), ["pairs"], pairs_path)["pairs"]
    model, codec = run.load_model()
    modules = run.site_modules(model)
    states = {cond: capture(model, codec, modules, [p[i] for p in pairs], batch_size, f"extract {cond}")
              for i, cond in enumerate(("mem", "gen"))}
    write_tensors(run.run_dir / "activations.safetensors", states,
                  metadata={"family": run.family, "task": run.task_name, "site": site, "n_pairs": str(len(pairs)),
                            "layout": "[pair, layer, neuron]; label MEM=1 for 'mem', GEN=0 for 'gen'"})


if __name__ == "__main__":
    run_command(main)()
