"""Steering overhead: steered batched greedy decoding against unsteered, and memory of one model vs three.

Throughput: the run's held-out test prompts (as many as stages/steer.py takes), decoded in the
steer stage's batches, unsteered (no hooks) and steered at the paper's setting (steer.paper:
shift_last at the family's paper site on the top-N neurons by |rho|, moved towards GEN by alpha*NMD). Steering changes
when EOS comes, so both decode a fixed number of tokens per prompt (EOS is not a stop): the same
work apart from the hooks. Goal: steered / unsteered tokens/s >= 0.9. The two take turns for
--repeats rounds; the ratio is the median of the per-round ratios. One torch thread by default:
on a busy 2-core machine two OpenMP threads keep waiting for each other at every small op of
decoding and the same run varies 5x in time; --threads 2 to compare.

Memory: peak RSS (ru_maxrss) of a fresh process that decodes a few prompts under the three
conditions (unsteered, to-GEN, to-MEM) holding one model whose hooks are switched per condition
(ours), against one holding three copies, one per condition (the authors' way). Llama family by
default (the embedded base, models/llama/base).
Run from the repository root. Usage: python benchmarks/steering_overhead.py [--family gpt2|llama]
       [--task cipher] [--rep 0] [--prompts N] [--repeats N] [--memory-family llama] [--memory-task incontext]
"""
import copy
import json
import statistics
import subprocess
import sys

import click
import torch

from common import current_rss_mb, interleaved, machine, peak_rss_mb, summary
from memgen.behaviour import max_answer_tokens
from memgen.generate import greedy_decode
from memgen.io import read_jsonl
from memgen.neuron_store import read_neurons
from memgen.run import Run
from memgen.search import intervention, read_paper_point
from memgen.sites import shift_last
from memgen.steering import TO_GEN, TO_MEM

REPEATS = {"gpt2": 7, "llama": 3}
RSS_PROMPTS = 4  # prompts decoded per condition in the memory processes: enough to allocate a KV cache


def conditions(run):
    """(the paper's point, {condition: shifts}): unsteered, and its top-N neurons moved towards GEN and towards MEM."""
    point = read_paper_point(run.params, run.plugin)
    neurons, _ = read_neurons(run.run_dir / "neurons.safetensors")
    return point, {"unsteered": {}, **{d: intervention(point, neurons, d).at(point.alpha) for d in (TO_GEN, TO_MEM)}}


def hold_models(family, task, rep, copies):
    """Child process: load `copies` models, decode a few test prompts per condition; peak RSS in MiB."""
    before = current_rss_mb()
    run = Run.open(family, task, rep)
    point, shifts = conditions(run)
    probes = read_jsonl(run.data_dir / "test.jsonl")[:RSS_PROMPTS]
    models = [run.load_model() for _ in range(copies)]
    for i, condition in enumerate(shifts):
        model, codec = models[i % copies]  # one copy: the same model each time, with that condition's hooks
        with shift_last(run.plugin.site_modules(model, point.site), shifts[condition]):
            greedy_decode(model, codec, [p["prompt"] for p in probes], max_answer_tokens(codec, probes), RSS_PROMPTS)
    return {"copies": copies, "rss_after_imports_mib": before, "peak_rss_mib": peak_rss_mb()}


def measure_memory(family, task, rep, copies):
    """Run hold_models in a fresh interpreter, so each figure is that process's own peak."""
    cmd = [sys.executable, __file__, "--memory-family", family, "--memory-task", task, "--rep", str(rep),
           "--rss-copies", str(copies)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@click.command()
@click.option("--family", type=click.Choice(["gpt2", "llama"]), default="gpt2", show_default=True)
@click.option("--task", default="cipher", show_default=True)
@click.option("--rep", default=0, show_default=True)
@click.option("--prompts", "n_prompts", type=int, default=None,
              help="test prompts  [default: the steer stage's max_prompts for the family]")
@click.option("--repeats", type=int, default=None, help="timed rounds  [default: gpt2 7, llama 3]")
@click.option("--threads", default=1, show_default=True,
              help="torch threads (see the docstring: one keeps timings stable on a shared machine)")
@click.option("--memory-family", type=click.Choice(["gpt2", "llama"]), default="llama", show_default=True)
@click.option("--memory-task", default="incontext", show_default=True)
@click.option("--rss-copies", type=int, default=None, hidden=True)  # internal: the memory child process
def main(family, task, rep, n_prompts, repeats, threads, memory_family, memory_task, rss_copies):
    if rss_copies:
        print(json.dumps(hold_models(memory_family, memory_task, rep, rss_copies)))
        return
    torch.set_num_threads(threads)
    run = Run.open(family, task, rep)
    sp = run.params.section("steer")
    batch_size = sp.int("batch_size", lo=1)
    n_prompts = n_prompts or run.family_params.section("steer").int("max_prompts", lo=1)
    repeats = repeats or REPEATS[family]
    probes = read_jsonl(run.data_dir / "test.jsonl")[:n_prompts]
    prompts = [p["prompt"] for p in probes]
    point, all_shifts = conditions(run)
    shifts = all_shifts[TO_GEN]
    model, codec = run.load_model()
    modules = run.plugin.site_modules(model, point.site)
    max_new = max_answer_tokens(codec, probes)
    fixed = copy.copy(codec)
    fixed.eos_id = -1  # an id no model emits: every row decodes exactly max_new tokens

    def unsteered():
        greedy_decode(model, fixed, prompts, max_new, batch_size)

    def steered():
        with shift_last(modules, shifts):
            greedy_decode(model, fixed, prompts, max_new, batch_size)

    unsteered(), steered()  # warm-up
    times = interleaved({"unsteered": unsteered, "steered": steered}, repeats)
    ratio = statistics.median(u / s for u, s in zip(times["unsteered"], times["steered"]))
    n_tokens = len(prompts) * max_new
    n_neurons = sum(len(idx) for idx, _ in shifts.values())
    print(machine())
    print(f"model: {run.model_dir} ({family}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
          f"{next(model.parameters()).device}), site {point.site} x {len(modules)} layers")
    print(f"workload: {len(prompts)} test prompts x {max_new} new tokens, batch size {batch_size}, {repeats} rounds; "
          f"steered at the paper's setting: {n_neurons} neurons (topN {point.topN}) in {len(shifts)} layers, "
          f"towards GEN, at every step")
    for name in ("unsteered", "steered"):
        print(f"{name + ':':11} {n_tokens / statistics.median(times[name]):9.1f} tokens/s  ({summary(times[name])})")
    print(f"throughput ratio steered / unsteered: {ratio:.3f} (median of per-round ratios; "
          f"{min(times['unsteered']) / min(times['steered']):.3f} on bests) (goal >= 0.9)")

    ours, authors = (measure_memory(memory_family, memory_task, rep, n) for n in (1, 3))
    print(f"memory ({memory_family}/{memory_task}/r{rep}, {RSS_PROMPTS} prompts decoded per condition, "
          f"each in a fresh process; {ours['rss_after_imports_mib']:.0f} MiB after imports):")
    print(f"one model, hooks switched per condition (ours): peak RSS {ours['peak_rss_mib']:7.0f} MiB")
    print(f"three model copies (authors' way):              peak RSS {authors['peak_rss_mib']:7.0f} MiB")
    print(f"ratio ours / authors': {ours['peak_rss_mib'] / authors['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
