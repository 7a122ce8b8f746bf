"""Probe throughput with the route screen (families.<f>.probe.screen) against decoding every prompt.

Full: every probe prompt decoded greedily (the probe stage without the screen). Screened: one forward
pass per prompt with the logits at the prompt end only, then full decoding of the groups that can
hold a MEM/GEN pair (what the probe stage runs with the screen, less its check groups). Prints
prompts/s of both, their ratio, and how the screen agrees with full decoding on the same prompts:
every prompt decoded MEM or GEN screened to that route, and the pairs of both ways.
Run from the repository root on a trained run (it reads params.yaml and models/).
Usage: python benchmarks/probe_screen.py [--family llama] [--task cipher] [--rep 0] [--groups N] [--repeats N]
"""
import statistics

import click

from common import interleaved, machine, summary
from memgen.behaviour import find_pairs, first_groups, run_probes, screened_probes
from memgen.io import read_jsonl
from memgen.run import Run
from memgen.tasks import OTHER


@click.command()
@click.option("--family", type=click.Choice(["gpt2", "llama"]), default="llama", show_default=True)
@click.option("--task", default="cipher", show_default=True)
@click.option("--rep", default=0, show_default=True)
@click.option("--groups", "n_groups", default=60, show_default=True, help="probe groups")
@click.option("--repeats", default=3, show_default=True, help="timed rounds")
def main(family, task, rep, n_groups, repeats):
    run = Run.open(family, task, rep)
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    probes = first_groups(read_jsonl(run.data_dir / "probe.jsonl"), n_groups)
    model, codec = run.load_model()
    result = {}

    def full():
        result["full"] = run_probes(model, codec, run.task, probes, batch_size)[1]

    def screened():  # the probe stage's screen, without check groups
        decoded, _, labels, routes, _ = screened_probes(model, codec, run.task, probes, batch_size, 0)
        result["screened"] = routes, [probes[i] for i in decoded], labels

    times = interleaved({"full": full, "screened": screened}, repeats)
    labels = result["full"]
    routes, kept, kept_labels = result["screened"]
    told = [(r, lab) for r, lab in zip(routes, labels) if lab != OTHER]
    full_pairs = [(probes[m]["prompt"], probes[g]["prompt"]) for m, g in find_pairs(probes, labels)]
    kept_pairs = [(kept[m]["prompt"], kept[g]["prompt"]) for m, g in find_pairs(kept, kept_labels)]
    median = {name: statistics.median(t) for name, t in times.items()}
    print(machine())
    print(f"model: {run.model_dir} ({family}); {len(probes)} probe prompts in {n_groups} groups, "
          f"batch size {batch_size}, {repeats} rounds")
    print(f"full decoding:            {len(probes) / median['full']:8.1f} prompts/s  ({summary(times['full'])})")
    print(f"screen + decode kept:     {len(probes) / median['screened']:8.1f} prompts/s  ({summary(times['screened'])})"
          f"  [{len({p['group'] for p in kept})} of {n_groups} groups decoded]")
    print(f"ratio screened / full: {median['full'] / median['screened']:.2f}x")
    print(f"agreement: {sum(r == lab for r, lab in told)} of {len(told)} prompts decoded MEM or GEN screened to "
          f"that route; pairs: {len(full_pairs)} decoding all, {len(kept_pairs)} screened, "
          f"{'identical' if kept_pairs == full_pairs else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
