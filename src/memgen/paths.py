"""Where each stage reads and writes; dvc.yaml spells the same paths."""
from pathlib import Path


def data_dir(task):
    return Path("data") / task


def run_id(family, task, rep):
    return Path(family) / task / f"r{rep}"


def model_dir(family, task, rep):
    return Path("models") / run_id(family, task, rep)


def run_dir(family, task, rep):
    """Probe outcomes, the activation store and the neuron statistics of one run."""
    return Path("data") / "runs" / run_id(family, task, rep)


def metrics_dir(family, task, rep):
    return Path("metrics") / "runs" / run_id(family, task, rep)
