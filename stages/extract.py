"""Stage extract: the site's state at the last prompt token, every layer, for both prompts of each pair."""
import click
import torch

from memgen.errors import run_main
from memgen.generate import forward_prompts
from memgen.io import read_json, write_tensors
from memgen.models import load_run_model
from memgen.run import Run
from memgen.sites import capture_last, check_site, site_modules


def capture(model, codec, modules, prompts, batch_size, desc):
    """[len(prompts), layers, width] float32 states at the last prompt token."""
    if not prompts:  # no pairs: an empty store, which the neurons stage reports as such
        return torch.zeros(0, len(modules), model.config.hidden_size)
    store = [[] for _ in modules]
    with capture_last(modules, store):
        forward_prompts(model, codec, prompts, batch_size, desc=desc)
    return torch.stack([torch.cat(layer) for layer in store], dim=1)


def main(family, task_name, rep):
    run = Run.open(family, task_name, rep)
    site = check_site(family, run.family_params.str("site"))
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    pairs = read_json(run.run_dir / "pairs.json")["pairs"]
    model, codec = load_run_model(family, run.model_dir, run.device(), run.family_params)
    modules = site_modules(model, family, site)
    states = {cond: capture(model, codec, modules, [p[i] for p in pairs], batch_size, f"extract {cond}")
              for i, cond in enumerate(("mem", "gen"))}
    write_tensors(run.run_dir / "activations.safetensors", states,
                  metadata={"family": family, "task": task_name, "site": site, "n_pairs": str(len(pairs)),
                            "layout": "[pair, layer, neuron]; label MEM=1 for 'mem', GEN=0 for 'gen'"})


@click.command()
@click.argument("family")
@click.argument("task")
@click.argument("rep", type=int)
def cli(family, task, rep):
    run_main(main, family, task, rep)


if __name__ == "__main__":
    cli()
