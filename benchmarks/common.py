"""What the benchmark scripts share: the machine line, timings, peak RSS."""
import os
import platform
import statistics
import time
from pathlib import Path

import torch


def machine():
    """One line naming the machine: OS, CPU model, cores, torch threads."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # platform.processor() is often empty or just 'x86_64' on Linux
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"machine: {platform.platform()}, {cpu}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")


def interleaved(fns, repeats):
    """{name: [wall seconds]} for `repeats` rounds of calling every fn once, in turn.

    Taking turns spreads load from other processes on a shared machine over all conditions,
    instead of letting it hit whichever condition happened to run then; every other round
    runs them in reverse order (A B, B A, ...), so going first or second favours neither.
    """
    times = {name: [] for name in fns}
    for round_ in range(repeats):
        for name in (list(fns) if round_ % 2 == 0 else list(fns)[::-1]):
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def summary(seconds):
    return f"median {statistics.median(seconds):.4f} s, best {min(seconds):.4f} s over {len(seconds)} runs"


def peak_rss_mb():
    """Peak resident set of this process so far, in MiB: VmHWM, the high-water mark of this
    process image. (ru_maxrss would not do: Linux carries it across exec, so a child started by
    a large parent would report the parent's size.)"""
    return _status_mb("VmHWM:")


def current_rss_mb():
    """Resident set of this process now, in MiB (Linux /proc)."""
    return _status_mb("VmRSS:")


def _status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")

