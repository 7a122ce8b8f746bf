"""Neuron ranking: the vectorised, streamed NMD + rho against a per-neuron scipy.stats.pearsonr loop.

Prints both timings on the same activation store, the speed-up (goal >= 100x) and the largest
|difference| of NMD and rho. The defaults are a Llama-3.2-1B-sized store (16 layers x 2048) with
200 pairs, the order of pairs the default probes yield (70-191 per GPT-2 run).
The streamed pass is timed --repeats times (median); the loop, which takes seconds, once.
Usage: python benchmarks/neuron_ranking.py [--pairs 200] [--layers 16] [--width 2048] [--chunk-kib N]
       [--threads N] [--repeats 5]
"""
import statistics
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch
from scipy.stats import pearsonr

from common import machine
from memgen.activations import write_activations
from memgen.stats import site_stats


def loop_ranking(mem, gen):
    """One pearsonr per neuron in a Python loop, and the mean difference per neuron."""
    x = np.concatenate([mem, gen]).reshape(len(mem) + len(gen), -1)
    y = np.r_[np.ones(len(mem)), np.zeros(len(gen))]
    rho = np.array([pearsonr(x[:, j], y).statistic for j in range(x.shape[1])])
    nmd = (mem - gen).mean(0).reshape(-1)
    return nmd, rho


@click.command()
@click.option("--pairs", default=200, show_default=True)
@click.option("--layers", default=16, show_default=True)
@click.option("--width", default=2048, show_default=True)
@click.option("--repeats", default=5, show_default=True, help="timed runs of the streamed pass")
@click.option("--chunk-kib", type=int, default=None, help="KiB per streamed read  [default: the library's]")
@click.option("--threads", type=int, default=None, help="torch threads  [default: torch's, as the neurons stage runs]")
def main(pairs, layers, width, repeats, chunk_kib, threads):
    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    gen = torch.randn(pairs, layers, width, generator=g)
    mem = gen + 0.3 * torch.randn(pairs, layers, width, generator=g) + 0.1
    kwargs = {} if chunk_kib is None else {"chunk_bytes": chunk_kib << 10}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "acts.safetensors"
        write_activations(path, {"resid_post": {"mem": mem, "gen": gen}}, metadata={})
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            stats = site_stats(path, "resid_post", shrinkage=None, **kwargs)
            times.append(time.perf_counter() - start)
        nmd, rho = stats.nmd, stats.rho
        start = time.perf_counter()
        site_stats(path, "resid_post", n_permutations=200, shrinkage=None, **kwargs)
        with_null = time.perf_counter() - start
    ours = statistics.median(times)
    start = time.perf_counter()
    nmd_loop, rho_loop = loop_ranking(mem.double().numpy(), gen.double().numpy())
    loop = time.perf_counter() - start
    print(machine())
    print(f"store: {pairs} pairs x {layers} layers x {width} neurons ({layers * width} neurons, "
          f"{2 * mem.numel() * 4 / 2**20:.0f} MiB), chunk {f'{chunk_kib} KiB' if chunk_kib else 'library default'}")
    print(f"vectorised, streamed NMD + rho: {ours:.3f} s (median of {repeats}; first call {times[0]:.3f} s)")
    print(f"pearsonr loop (authors' way):   {loop:.3f} s")
    print(f"speed-up: {loop / ours:.0f}x (goal >= 100x; {loop / times[0]:.0f}x against the first call)")
    print(f"with the permutation null (200 label permutations, one matrix product): {with_null:.3f} s")
    print(f"max |rho difference|: {np.abs(rho.double().numpy().reshape(-1) - rho_loop).max():.2e} (goal <= 1e-6)")
    print(f"max |NMD difference|: {np.abs(nmd.double().numpy().reshape(-1) - nmd_loop).max():.2e} (goal <= 1e-6)")


if __name__ == "__main__":
    main()
