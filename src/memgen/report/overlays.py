"""Every run's plot data of one kind gathered into one table with a `run` column
(metrics/overlays/<kind>.csv), which dvc.yaml's plots draw as one figure with a line per run."""
from pathlib import Path

import pandas as pd

from ..io import atomic_path
from ..paths import MULTITASK, overlay_path, run_parts

# The per-run plot data the stages write under metrics/plots/<kind>/: a CSV per run, or (train_curve)
# the folder DVCLive logs a run's checkpoints into.
KINDS = ("train_curve", "neurons_by_layer", "dose_response", "steer_layers", "predict_by_layer")


def run_names(families, tasks, reps, multitask):
    """The file names of the runs the params ask for (plot data of runs no longer asked for stays on
    disk, as DVC leaves it, and is not drawn)."""
    names = {"-".join(run_parts(f, t, r, t)) for f in families for t in tasks for r in reps}
    for f in multitask:
        for r in reps:
            names |= {"-".join(run_parts(f, MULTITASK, r, t)) for t in [MULTITASK, *tasks]}
    return names


def read_run(path):
    """One run's table: a CSV, or a DVCLive folder (one TSV per logged value, joined on the step)."""
    if path.is_dir():
        tables = [pd.read_csv(tsv, sep="\t").set_index("step") for tsv in sorted(path.glob("plots/metrics/**/*.tsv"))]
        return pd.concat(tables, axis=1).reset_index()
    return pd.read_csv(path)


def write_overlays(names, plots_dir=Path("metrics") / "plots"):
    for kind in KINDS:
        runs = sorted((p.name.removesuffix(".csv"), p) for p in (plots_dir / kind).glob("*"))
        tables = [read_run(path).assign(run=name) for name, path in runs if name in names]
        table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["run"])
        with atomic_path(overlay_path(kind)) as tmp:
            table[["run", *table.columns.drop("run")]].to_csv(tmp, index=False, lineterminator="\n")
