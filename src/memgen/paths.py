"""Where each stage reads and writes; dvc.yaml spells the same paths.

A run is (family, model, replicate, task): the model is a task's name for a model trained on that
task alone, or MULTITASK for the one model a family in `runs.multitask` trains on every task; the
task is what the run analyses (a per-task model analyses its own task, and then the task is not
repeated in its name). PLANTED names the models of the ground-truth experiment: one per task, each
analysing its own task."""
from pathlib import Path

MULTITASK = "multitask"  # the model trained on every task of `runs.tasks`
PLANTED = "planted"  # per task, a rule-only model with the task's memories planted in known MLP units (plant stage)


def run_parts(family, model, rep, task):
    """[family, model, r<k>] and the task when it is not the model's own."""
    return [family, model, f"r{rep}"] + ([task] if task != model else [])


def data_dir(task):
    return Path("data") / "tasks" / task


def model_dir(family, model, rep, task=None):
    """models/<family>/<model>/r<k>; a planted model is one per task: .../planted/r<k>/<task>."""
    path = Path("models") / family / model / f"r{rep}"
    return path / task if model == PLANTED else path


def run_dir(family, model, rep, task):
    """Probe outcomes, the activation store and the neuron statistics of one run."""
    return Path("data") / "runs" / Path(*run_parts(family, model, rep, task))


def metrics_dir(family, model, rep, task):
    return Path("metrics") / "runs" / Path(*run_parts(family, model, rep, task))


def plot_path(kind, family, model, rep, task, ext="csv"):
    """Plot data of one kind in one folder (metrics/plots/<kind>/<family>-<model>-r<k>[-<task>].<ext>; a
    folder of that name when ext is None), so that dvc.yaml declares each kind once; the report stage
    gathers each kind into one table for every run (overlay_path)."""
    name = "-".join(run_parts(family, model, rep, task))
    return Path("metrics") / "plots" / kind / (name if ext is None else f"{name}.{ext}")


def overlay_path(kind):
    """metrics/overlays/<kind>.csv: every run's plot data of one kind, with a `run` column, which
    dvc.yaml's plots draw as one figure with one line per run."""
    return Path("metrics") / "overlays" / f"{kind}.csv"


def comparison_path(kind, family, name):
    """metrics/intra/<family>/<task>.json or metrics/inter/<family>/r<k>.json."""
    return Path("metrics") / kind / family / f"{name}.json"
