"""Streamed scale: the neurons stage's statistics over activation stores of growing size; peak RSS
must stay flat.

Writes synthetic stores (one site, 'mem' and 'gen', float32 [pairs, layers, width]; the defaults are
the llama family's store, 30 x 576) of each --pairs size to a temporary directory, runs
memgen.stats.site_stats on each (NMD, rho, 200 permutations, the discriminant direction, whose second
moments take 8 x layers x width^2 bytes whatever N) in a fresh interpreter, and prints N, the store's size on disk,
the time, and that process's peak RSS (ru_maxrss) with its growth over the RSS after imports,
and the peaks of its two parts, sampled every 5 ms: anonymous memory (what the process allocated)
and file-backed pages (pages of the mapped store that were read, which the kernel can reclaim).
The largest store must exceed --budget-mib and stay under 2 GiB; each store is deleted once measured.
Usage: python benchmarks/streamed_scale.py [--pairs 500,2000,8000] [--layers 30] [--width 576]
       [--budget-mib 200] [--tmp-dir /tmp]
"""
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import torch

from common import current_rss_mb, machine, peak_rss_mb
from memgen.activations import write_activations
from memgen.stats import site_stats

MAX_STORE = 2 << 30  # bytes: the largest store this script will write


def rss_parts_mb():
    """(anonymous, file-backed) resident MiB of this process now (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(int(fields[key].split()[0]) / 1024 for key in ("RssAnon", "RssFile"))


def measure(path):
    """Child process: the neurons stage's statistics of one site of the store at `path` (NMD, rho, 200
    permutations, the discriminant direction); RSS before, peak RSS and its parts, seconds."""
    before = current_rss_mb()
    peaks, stop = [0.0, 0.0], threading.Event()

    def sample():
        while not stop.is_set():
            peaks[:] = map(max, peaks, rss_parts_mb())
            stop.wait(0.005)
    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    n = site_stats(path, "resid_post", n_permutations=200).n_pairs
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    return {"pairs": n, "seconds": seconds, "rss_before_mib": before, "peak_rss_mib": peak_rss_mb(),
            "peak_anon_mib": peaks[0], "peak_file_mib": peaks[1]}


def write_store(path, pairs, layers, width):
    """A synthetic paired store; its values do not matter for memory, only its size."""
    gen = torch.randn(pairs, layers, width, generator=torch.Generator().manual_seed(pairs))
    write_activations(path, {"resid_post": {"mem": gen + 0.1, "gen": gen}}, metadata={})


@click.command()
@click.option("--pairs", default="500,2000,8000", show_default=True, help="store sizes N, comma separated")
@click.option("--layers", default=30, show_default=True)
@click.option("--width", default=576, show_default=True)
@click.option("--budget-mib", default=200, show_default=True, help="memory budget the largest store must exceed")
@click.option("--tmp-dir", default=None, help="where the stores go  [default: the system temp directory]")
@click.option("--measure", "measure_path", default=None, hidden=True)  # internal: the child process
def main(pairs, layers, width, budget_mib, tmp_dir, measure_path):
    if measure_path:
        print(json.dumps(measure(measure_path)))
        return
    sizes = sorted(int(n) for n in pairs.split(","))
    store_bytes = [2 * n * layers * width * 4 for n in sizes]  # two float32 tensors (the header is tiny)
    if store_bytes[-1] <= budget_mib * 2**20:
        raise click.UsageError(f"the largest store ({store_bytes[-1] / 2**20:.0f} MiB) must exceed the budget "
                               f"({budget_mib} MiB): pass larger --pairs")
    if store_bytes[-1] > MAX_STORE:
        raise click.UsageError(f"the largest store would be {store_bytes[-1] / 2**30:.1f} GiB; keep it under 2 GiB")
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        free = shutil.disk_usage(tmp).free  # one store is on disk at a time
        if free < 2 * store_bytes[-1]:
            raise click.UsageError(f"{tmp}: {free / 2**30:.1f} GiB free, too little for a "
                                   f"{store_bytes[-1] / 2**30:.1f} GiB store")
        print(machine())
        print(f"stores: pairs x {layers} layers x {width} neurons, float32, in {tmp} ({free / 2**30:.1f} GiB free); "
              f"budget {budget_mib} MiB")
        print(f"{'N pairs':>8} {'store MiB':>10} {'seconds':>8} {'RSS after imports MiB':>22} {'peak RSS MiB':>13} "
              f"{'growth MiB':>11} {'peak anon MiB':>14} {'peak file-backed MiB':>21}")
        rows = []
        for n in sizes:
            path = Path(tmp) / f"acts_{n}.safetensors"
            write_store(path, n, layers, width)
            size = path.stat().st_size
            cmd = [sys.executable, __file__, "--measure", str(path)]
            row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            path.unlink()
            growth = row["peak_rss_mib"] - row["rss_before_mib"]
            rows.append((size, growth, row["peak_anon_mib"]))
            print(f"{n:>8} {size / 2**20:>10.0f} {row['seconds']:>8.2f} {row['rss_before_mib']:>22.0f} "
                  f"{row['peak_rss_mib']:>13.0f} {growth:>11.0f} {row['peak_anon_mib']:>14.0f} "
                  f"{row['peak_file_mib']:>21.0f}")
    (small, small_growth, small_anon), (large, large_growth, large_anon) = rows[0], rows[-1]

    def flat(a, b):  # "flat": the largest store adds at most 5 % of the budget
        return "flat" if b <= a + 0.05 * budget_mib else "NOT flat"
    print(f"store grew {large / small:.0f}x ({large / 2**20:.0f} MiB > budget {budget_mib} MiB); "
          f"peak RSS growth {small_growth:.0f} -> {large_growth:.0f} MiB ({flat(small_growth, large_growth)}, "
          f"{'within' if large_growth <= budget_mib else 'OVER'} budget); "
          f"peak anonymous memory {small_anon:.0f} -> {large_anon:.0f} MiB ({flat(small_anon, large_anon)})")


if __name__ == "__main__":
    main()
