"""Pipeline: a full `dvc repro` against a steering sweep point, `dvc exp run --temp -S alpha=4`.

The sweep should re-run only steer and report (the comparison stages do not read alpha), so its wall time should be a small fraction of the
full pipeline's (goal <= 0.05). `dvc repro` runs with --force by default: on an up-to-date
workspace a plain `dvc repro` does nothing, which times nothing (--no-force to time it as is).
The forced re-run rewrites the outputs in place (they are deterministic: same bytes, same dvc.lock).
`--temp` runs the experiment in a copy under .dvc/tmp/exps (Git-tracked files, uncommitted changes
included, and DVC-tracked outputs checked out from the cache) and saves it as an experiment ref, so
the workspace is left as it was; the script checks that (git status and dvc status before and
after) and then removes the experiment ref (--keep-exp to keep it).
Takes 30+ minutes on 2 CPU cores. Run from the repository root.
Usage: python benchmarks/pipeline.py [--force/--no-force] [--param alpha=4] [--keep-exp]
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import click

from common import machine

BIN = Path(sys.executable).parent  # the venv: dvc, and the python the stage commands call


ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}  # as the Makefile


def run(cmd):
    """Run cmd, showing its output; its wall seconds."""
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=ENV)
    return time.perf_counter() - start


def workspace_state():
    """What a changed workspace would show: git status, and dvc status of the outputs."""
    return tuple(subprocess.run(cmd, check=True, capture_output=True, text=True, env=ENV).stdout
                 for cmd in (["git", "status", "--porcelain"], [str(BIN / "dvc"), "status", "--json"]))


@click.command()
@click.option("--force/--no-force", default=True, show_default=True, help="dvc repro --force: every stage runs")
@click.option("--param", default="alpha=4", show_default=True, help="the -S override of the experiment")
@click.option("--keep-exp", is_flag=True, help="keep the experiment ref instead of removing it afterwards")
def main(force, param, keep_exp):
    dvc = str(BIN / "dvc")
    print(machine())
    full = run([dvc, "repro"] + (["--force"] if force else []))
    before = workspace_state()
    name = f"bench-{param.replace('=', '-').replace('.', '-')}-{int(time.time())}"
    sweep = run([dvc, "exp", "run", "--temp", "-n", name, "-S", param])
    unchanged = workspace_state() == before
    if not keep_exp:
        run([dvc, "exp", "remove", name])
    print(f"full pipeline (dvc repro{' --force' if force else ''}): {full:8.1f} s")
    print(f"sweep point (dvc exp run --temp -S {param}):  {sweep:8.1f} s")
    print(f"ratio sweep / full: {sweep / full:.3f} (goal <= 0.05)")
    print(f"workspace unchanged by the experiment (git status, dvc status): {'yes' if unchanged else 'NO'}")


if __name__ == "__main__":
    main()
