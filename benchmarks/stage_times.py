"""Time `dvc repro` stage by stage: run it (extra arguments go to dvc repro), stamping each line of its
output with the clock, or read such a stamped log (--log FILE, lines 'HH:MM:SS text'); print each stage's
minutes, the sum per stage kind (train, steer, ...) and the total.

    python benchmarks/stage_times.py --save repro.log     # the default run, timed; its stamped log kept
    python benchmarks/stage_times.py --log repro.log      # the table again from a kept log
"""
import re
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta

import click

STARTED = re.compile(r"^(\d\d:\d\d:\d\d) Running stage '([^']+)'")
STAMP = re.compile(r"^(\d\d:\d\d:\d\d) ")


def stamped_repro(args, save):
    """Run dvc repro, stamping every output line; returns the stamped lines (also written to `save`)."""
    lines = []
    with subprocess.Popen(["dvc", "repro", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            lines.append(f"{time.strftime('%H:%M:%S')} {line.rstrip()}")
            print(lines[-1], flush=True)
    lines.append(f"{time.strftime('%H:%M:%S')} (dvc repro exited {p.returncode})")
    if save:
        with open(save, "w") as f:
            f.write("\n".join(lines) + "\n")
    return lines


def stage_minutes(lines):
    """[(stage, minutes)] from stamped lines: each stage runs until the next one starts, the last until the
    last stamped line (a clock that passes midnight is carried over)."""
    starts, last, day = [], None, timedelta(0)
    for line in lines:
        stamp = STAMP.match(line)
        if not stamp:
            continue
        t = datetime.strptime(stamp.group(1), "%H:%M:%S") + day
        if last is not None and t < last:
            day, t = day + timedelta(days=1), t + timedelta(days=1)
        last = t
        started = STARTED.match(line)
        if started:
            starts.append((started.group(2), t))
    ends = [t for _, t in starts[1:]] + [last]
    return [(name, (end - t).total_seconds() / 60) for (name, t), end in zip(starts, ends)]


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--log", "log_path", type=click.Path(exists=True, dir_okay=False), help="a stamped log to read")
@click.option("--save", type=click.Path(dir_okay=False), help="where to keep the stamped log of this run")
@click.argument("repro_args", nargs=-1, type=click.UNPROCESSED)
def main(log_path, save, repro_args):
    lines = open(log_path).read().splitlines() if log_path else stamped_repro(repro_args, save)
    times = stage_minutes(lines)
    if not times:
        sys.exit("no stage ran (nothing to time)")
    kinds = defaultdict(lambda: [0, 0.0])
    for name, minutes in times:
        print(f"{minutes:7.2f} min  {name}")
        kind = kinds[name.split("@")[0]]
        kind[0] += 1
        kind[1] += minutes
    print("\nby kind:")
    for kind, (count, minutes) in kinds.items():
        print(f"{minutes:7.2f} min  {kind} ({count} stage{'s' if count > 1 else ''})")
    print(f"{sum(m for _, m in times):7.2f} min  in all")


if __name__ == "__main__":
    main()
