"""Capture overhead: extraction throughput (capture hooks on every layer of every site, as
stages/extract.py does) against a plain forward pass of the same model and batches, no hooks.

Prints prompts/s of both, side by side, and their ratio (goal >= 0.95). The two take turns
for --repeats rounds after one untimed warm-up each; the ratio is the median of the per-round
ratios (each round runs both back to back, so load from other processes mostly cancels).
One torch thread by default: on a busy 2-core machine two OpenMP threads keep waiting for
each other at every small op and the same pass varies 5x in time; --threads 2 to compare.
Run from the repository root (it reads params.yaml and the trained run under models/).
Usage: python benchmarks/capture_overhead.py [--family gpt2|llama] [--task cipher] [--rep 0]
       [--prompts N] [--repeats N]
"""
import statistics

import click
import torch

from common import interleaved, machine, summary
from memgen.generate import forward_prompts
from memgen.io import read_jsonl
from memgen.run import Run
from memgen.sites import capture_prompt_ends

DEFAULTS = {"gpt2": (400, 21), "llama": (32, 3)}  # (prompts, repeats): the llama base has ~170x the parameters


@click.command()
@click.option("--family", type=click.Choice(["gpt2", "llama"]), default="gpt2", show_default=True)
@click.option("--task", default="cipher", show_default=True)
@click.option("--rep", default=0, show_default=True)
@click.option("--prompts", "n_prompts", type=int, default=None, help="probe prompts  [default: gpt2 400, llama 32]")
@click.option("--repeats", type=int, default=None, help="timed rounds  [default: gpt2 21, llama 3]")
@click.option("--threads", default=1, show_default=True,
              help="torch threads (see the docstring: one keeps timings stable on a shared machine)")
def main(family, task, rep, n_prompts, repeats, threads):
    torch.set_num_threads(threads)
    n_prompts = n_prompts or DEFAULTS[family][0]
    repeats = repeats or DEFAULTS[family][1]
    run = Run.open(family, task, rep)
    batch_size = run.params.section("probe").int("batch_size", lo=1)  # the batch size extract uses
    # the pairs' prompts are probe prompts; taking the probe file directly works for runs without pairs too
    prompts = [p["prompt"] for p in read_jsonl(run.data_dir / "probe.jsonl")[:n_prompts]]
    model, codec = run.load_model()
    modules = run.plugin.all_site_modules(model)

    def plain():
        forward_prompts(model, codec, prompts, batch_size)

    def extract():  # what the extract stage runs: every site's [prompt, layer, width] states in one pass
        return capture_prompt_ends(model, codec, modules, prompts, batch_size)

    plain(), extract()  # warm-up: first-call allocations and lazy initialisation
    times = interleaved({"plain": plain, "extract": extract}, repeats)
    states = extract()
    n_tokens = sum(len(codec.prompt_ids(p)) for p in prompts)
    median = {name: statistics.median(t) for name, t in times.items()}
    ratio = statistics.median(p / e for p, e in zip(times["plain"], times["extract"]))
    print(machine())
    print(f"model: {run.model_dir} ({family}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
          f"{next(model.parameters()).device}), sites {', '.join(modules)} x {len(next(iter(modules.values())))} layers")
    print(f"workload: {len(prompts)} probe prompts ({n_tokens} tokens), batch size {batch_size}, {repeats} rounds")
    print(f"plain forward (no hooks):      {len(prompts) / median['plain']:9.1f} prompts/s  ({summary(times['plain'])})")
    print(f"extraction (capture hooks):    {len(prompts) / median['extract']:9.1f} prompts/s  ({summary(times['extract'])})")
    print(f"throughput ratio extraction / plain: {ratio:.3f} (median of per-round ratios; "
          f"{min(times['plain']) / min(times['extract']):.3f} on bests) (goal >= 0.95)")
    print(f"captured states: {sum(s.nbytes for s in states.values()) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
