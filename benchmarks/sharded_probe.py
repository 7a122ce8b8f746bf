"""Sharded decoding: probe prompts/s of greedy decoding on one process against two processes
sharing the batches out (whole batches, round robin, gathered back in order: as the probe stage
with params `parallel.num_processes: 2`), then a projection for N processes.

One torch thread per process (what torch.distributed.run gives each of several processes), so
the comparison is one core against two; on a 2-core machine shared with other work expect little.
Each condition: one untimed warm-up, then --repeats timed passes; the median is reported. The two
processes time from a barrier to a barrier, gathering included.
The model is an untrained gpt2 of families.gpt2.model's size (no pipeline outputs needed): it
decodes every answer to its longest length, where a trained one stops at EOS, so the cost per
prompt is the upper end of the probe stage's.
Run from the repository root (it reads params.yaml).
Usage: python benchmarks/sharded_probe.py [--task cipher] [--prompts N] [--batch-size N] [--repeats N]
"""
import json
import math
import statistics
import subprocess
import sys
import time

import click
import torch

from common import machine
from memgen.behaviour import max_answer_tokens
from memgen.distributed import launch_command, launched, state, world
from memgen.families import BUILT_IN
from memgen.generate import greedy_decode
from memgen.params import load_params
from memgen.splits import draw_dataset
from memgen.tasks import load_task


def probes_and_model(task_name, n_prompts):
    """The task's probe prompts as params.yaml draws them, and an untrained gpt2 of the params' size
    (seeded: every process builds the same one)."""
    params = load_params()
    task = load_task(params, task_name)
    group_size = params.section("tasks").section(task_name).int("group_size", lo=1)
    probes = draw_dataset(task, 200, {"val": 1, "probe": math.ceil(n_prompts / group_size), "test": 1},
                          params.int("seed", lo=0))["probe"][:n_prompts]
    texts = [e[k] for e in probes for k in ("prompt", "mem", "gen")]
    model, codec, _ = BUILT_IN["gpt2"].new_model(params.section("families").section("gpt2"), texts, seed=0)
    return probes, model.eval(), codec


def timed_decodes(task, n_prompts, batch_size, repeats):
    """Seconds of each timed pass of decoding n_prompts probe prompts, on this process group."""
    probes, model, codec = probes_and_model(task, n_prompts)
    prompts, max_new = [p["prompt"] for p in probes], max_answer_tokens(codec, probes)
    greedy_decode(model, codec, prompts, max_new, batch_size)  # warm-up
    seconds = []
    for _ in range(repeats):
        if launched():
            state().wait_for_everyone()
        start = time.perf_counter()
        greedy_decode(model, codec, prompts, max_new, batch_size)
        if launched():
            state().wait_for_everyone()
        seconds.append(time.perf_counter() - start)
    return len(prompts), seconds


@click.command()
@click.option("--task", default="cipher", show_default=True)
@click.option("--prompts", "n_prompts", default=400, show_default=True)
@click.option("--batch-size", default=50, show_default=True, help="prompts per batch (8 batches at the defaults)")
@click.option("--repeats", default=3, show_default=True)
def main(task, n_prompts, batch_size, repeats):
    torch.set_num_threads(1)
    if launched():  # a worker of the two-process run: the main process reports
        n, seconds = timed_decodes(task, n_prompts, batch_size, repeats)
        if world()[0] == 0:
            print("RESULT " + json.dumps({"n": n, "seconds": seconds}), flush=True)
        return

    print(machine())
    n, one = timed_decodes(task, n_prompts, batch_size, repeats)
    worker = subprocess.run(launch_command(2, sys.argv), capture_output=True, text=True)
    lines = [line for line in worker.stdout.splitlines() if line.startswith("RESULT ")]
    if worker.returncode != 0 or not lines:
        sys.exit(f"the two-process run failed:\n{worker.stderr[-2000:]}")
    two = json.loads(lines[-1][len("RESULT "):])["seconds"]

    rate1, rate2 = n / statistics.median(one), n / statistics.median(two)
    print(f"{n} prompts, batches of {batch_size}, median of {repeats} passes")
    print(f"1 process:   {rate1:8.1f} prompts/s")
    print(f"2 processes: {rate2:8.1f} prompts/s   ratio {rate2 / rate1:.2f}")

    # Each process decodes whole batches, so N processes take as long as ceil(batches / N) batches
    # of one, plus gathering; the per-batch cost is the one process's measured one.
    n_batches = math.ceil(n / batch_size)
    per_batch = statistics.median(one) / n_batches
    print(f"projection (not measured), {per_batch * 1000:.1f} ms a batch, each process as fast as the one here,"
          " gathering not counted:")
    for procs in (1, 2, 4, 8):
        print(f"  {procs} processes: {n / (per_batch * math.ceil(n_batches / procs)):8.1f} prompts/s")


if __name__ == "__main__":
    main()
