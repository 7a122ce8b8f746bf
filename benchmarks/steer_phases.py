"""Time one steer run phase by phase: where a sweep point's steering goes. Runs the steer stage in this process on a
run the default has built (it rewrites that run's outputs with the same bytes), timing each measurement by
setting and scope, the val searches, the dose curve and the layer ablation.

    python benchmarks/steer_phases.py gpt2_shared cipher 0
"""
import functools
import sys
import time
from pathlib import Path

from common import machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
import steer  # noqa: E402  (the stage script, imported once its folder is on the path)


def timed(name, seconds, key=lambda *a, **k: None):
    """Replace steer.<name> by a wrapper adding its wall time to seconds[(name, key(args))]."""
    original = getattr(steer, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            slot = (name, key(*args, **kwargs))
            seconds[slot] = seconds.get(slot, 0.0) + time.perf_counter() - start
    setattr(steer, name, wrapper)


def main():
    seconds = {}
    # measure_at(test, val, arm, point, d, s, seed, rows, setting, scope="all"): by setting and scope
    timed("measure_at", seconds, lambda *a, **k: (a[8], a[9] if len(a) > 9 else k.get("scope", "all")))
    for name in ("choose_points", "dose_response", "layer_ablation"):
        timed(name, seconds)
    start = time.perf_counter()
    try:
        steer.run_command(steer.main)()  # the stage's own command line (FAMILY TASK REP from sys.argv)
    except SystemExit as done:
        if done.code:
            raise
    total = time.perf_counter() - start
    print(machine())
    for (name, key), s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{s:8.1f} s  {name}{'' if key is None else ' ' + ' '.join(key)}")
    print(f"{total:8.1f} s  the whole run")


if __name__ == "__main__":
    main()
