"""The paper's method by model size (its open question 4): one GPT-2 trained from scratch per size on one task,
each through the whole pipeline as a `dvc exp run` (one replicate, no planted model, scopes all and before the
readout); the paper's method at its setting and at the authors' grid, the pairs and the ranking's chance level by
size, written to metrics/sweeps/size.json, which the report reads. Run it in a clean clone (it runs each
experiment in the workspace and puts params.yaml, dvc.lock and the outputs back at the end):

    git clone <repo> sweep && cd sweep && make setup && .venv/bin/python experiments/size_sweep.py
    cp metrics/sweeps/size.json <repo>/metrics/sweeps/ && cd <repo> && dvc repro report
"""
import json
import subprocess
import time
from pathlib import Path

import click
from safetensors import safe_open

from workspace import restore_workspace  # experiments/workspace.py: the script's own folder

SETTINGS = ("paper", "paper_before_readout", "paper_grid", "paper_grid_before_readout", "chosen")
RATE_KEYS = ("k", "n", "success", "ci95")


def sweep_params(family, task, size):
    n_layer, n_embd, n_head = size
    fixed = {"runs.families": f"[{family}]", "runs.tasks": f"[{task}]", "runs.replicates": "[0]",
             "runs.side_replicates": "[]", "runs.planted": "[]", "steer.scopes": "[all,before_readout]"}
    model = {f"families.{family}.model.n_layer": n_layer, f"families.{family}.model.n_embd": n_embd,
             f"families.{family}.model.n_head": n_head}
    return {**fixed, **model}


def run_size(family, task, size):
    """One experiment through the pipeline; (its results from the workspace, seconds)."""
    args = [a for key, value in sweep_params(family, task, size).items() for a in ("-S", f"{key}={value}")]
    start = time.monotonic()
    subprocess.run(["dvc", "exp", "run", *args], check=True)
    return read_size(family, task, size), time.monotonic() - start


def read_size(family, task, size):
    run = Path("metrics/runs") / family / task / "r0"
    probe, neurons, steer = (json.loads((run / f"{name}.json").read_text()) for name in ("probe", "neurons", "steer"))
    sites = {s: v for s, v in neurons["sites"].items() if s != "mlp_hidden" and v["null_p95"] is not None}
    site, best = max(sites.items(), key=lambda kv: kv[1]["max_abs_rho"] - kv[1]["null_p95"], default=(None, {}))
    test = {setting: {d: {k: r["targeted"][k] for k in RATE_KEYS} for d, r in steer.get("test", {})[setting].items()}
            for setting in SETTINGS if setting in steer.get("test", {})}
    with safe_open(str(Path("models") / family / task / "r0" / "model.safetensors"), "pt") as f:
        parameters = sum(_numel(f.get_slice(name).get_shape()) for name in f.keys())
    return {"n_layer": size[0], "n_embd": size[1], "n_head": size[2], "parameters": parameters,
            "pairs": probe["n_pairs"], "site": site, "max_abs_rho": best.get("max_abs_rho"),
            "null_p95": best.get("null_p95"), "test": test}


def _numel(shape):
    count = 1
    for n in shape:
        count *= n
    return count


@click.command()
@click.option("--family", default="gpt2", show_default=True)
@click.option("--task", default="cipher", show_default=True)
@click.option("--sizes", default="2x64x2,4x128x4,8x256x8", show_default=True, help="layers x width x heads, comma-separated")
@click.option("--out", default="metrics/sweeps/size.json", show_default=True, type=click.Path(dir_okay=False))
def main(family, task, sizes, out):
    parsed = [tuple(int(x) for x in s.split("x")) for s in sizes.split(",")]
    started, results = time.monotonic(), []
    try:
        for size in parsed:
            result, seconds = run_size(family, task, size)
            results.append({**result, "seconds": round(seconds, 1)})
            print(f"{size}: {result['pairs']} pairs, {seconds / 60:.1f} min", flush=True)
    finally:  # the workspace as it was: the default run's params, lock and outputs
        restore_workspace()
    changes = (f"runs.families [{family}], runs.tasks [{task}], runs.replicates [0], no planted model, steer.scopes "
               "[all, before_readout]; model: n_layer, n_embd, n_head as in each row")
    Path(out).write_text(json.dumps({"command": f"python experiments/size_sweep.py --sizes {sizes}", "family": family,
                                     "task": task, "rep": 0, "changes": changes,
                                     "seconds": round(time.monotonic() - started, 1), "sizes": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
