"""Neuron ranking: the vectorised, streamed NMD + rho against a per-neuron scipy.stats.pearsonr loop.

Prints both timings on the same activation store, the speed-up and the largest |difference|.
Usage: python benchmarks/neuron_ranking.py [--pairs 400] [--layers 30] [--width 576]
"""
import platform
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch
from scipy.stats import pearsonr

from memgen.io import write_tensors
from memgen.stats import neuron_stats


def loop_ranking(mem, gen):
    """One pearsonr per neuron in a Python loop, and the mean difference per neuron."""
    x = np.concatenate([mem, gen]).reshape(len(mem) + len(gen), -1)
    y = np.r_[np.ones(len(mem)), np.zeros(len(gen))]
    rho = np.array([pearsonr(x[:, j], y).statistic for j in range(x.shape[1])])
    nmd = (mem - gen).mean(0).reshape(-1)
    return nmd, rho


@click.command()
@click.option("--pairs", default=400, show_default=True)
@click.option("--layers", default=30, show_default=True)
@click.option("--width", default=576, show_default=True)
def main(pairs, layers, width):
    g = torch.Generator().manual_seed(0)
    gen = torch.randn(pairs, layers, width, generator=g)
    mem = gen + 0.3 * torch.randn(pairs, layers, width, generator=g) + 0.1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "acts.safetensors"
        write_tensors(path, {"mem": mem, "gen": gen})
        start = time.perf_counter()
        nmd, rho, _ = neuron_stats(path)
        ours = time.perf_counter() - start
    start = time.perf_counter()
    nmd_loop, rho_loop = loop_ranking(mem.double().numpy(), gen.double().numpy())
    loop = time.perf_counter() - start
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"store: {pairs} pairs x {layers} layers x {width} neurons ({layers * width} neurons)")
    print(f"vectorised, streamed NMD + rho: {ours:.3f} s")
    print(f"pearsonr loop (authors' way):   {loop:.3f} s")
    print(f"speed-up: {loop / ours:.0f}x")
    print(f"max |rho difference|: {np.abs(rho.double().numpy().reshape(-1) - rho_loop).max():.2e}")
    print(f"max |NMD difference|: {np.abs(nmd.double().numpy().reshape(-1) - nmd_loop).max():.2e}")


if __name__ == "__main__":
    main()
