"""Where each stage reads and writes; dvc.yaml spells the same paths."""
from pathlib import Path


MULTITASK = "multitask"  # the model trained on every task of `runs.tasks` (families in `runs.multitask`)


def data_dir(task):
    return Path("data") / "tasks" / task


def run_id(family, task, rep, multitask=False):
    """family/task/r<k>; a task analysed on the multitask model: family/multitask/r<k>/task."""
    return Path(family) / MULTITASK / f"r{rep}" / task if multitask else Path(family) / task / f"r{rep}"


def model_dir(family, task, rep, multitask=False):
    return Path("models") / run_id(family, MULTITASK if multitask else task, rep)


def run_dir(family, task, rep, multitask=False):
    """Probe outcomes, the activation store and the neuron statistics of one run."""
    return Path("data") / "runs" / run_id(family, task, rep, multitask)


def metrics_dir(family, task, rep, multitask=False):
    return Path("metrics") / "runs" / run_id(family, task, rep, multitask)


def plot_path(kind, family, task, rep, ext="csv", multitask=False):
    """Plot data of one kind in one folder (metrics/plots/<kind>/<family>-<task>-r<k>.<ext>),
    so that dvc.yaml declares each kind once and `dvc plots show` draws one plot per run."""
    name = f"{family}-{MULTITASK}-r{rep}-{task}" if multitask else f"{family}-{task}-r{rep}"
    return Path("metrics") / "plots" / kind / f"{name}.{ext}"


def comparison_path(kind, family, name):
    """metrics/intra/<family>/<task>.json or metrics/inter/<family>/r<k>.json."""
    return Path("metrics") / kind / family / f"{name}.json"
