"""What every per-run stage starts with: checked params and identity of (family, task, replicate).

A run is one model trained on one task, or (multitask=True) one task analysed on the model that
a family in `runs.multitask` trained on every task; task "multitask" is that model's training run."""
from dataclasses import dataclass

import click

from .errors import OneLineCommand, UserError, run_main
from .models import check_family, load_run_model, pick_device
from .params import derive_seed, load_params
from .paths import MULTITASK, data_dir, metrics_dir, model_dir, plot_path, run_dir
from .tasks import load_task
from .tasks.multitask import MultiTask


@dataclass
class Run:
    params: object
    family: str
    task_name: str
    rep: int
    multitask: bool = False

    @classmethod
    def open(cls, family, task, rep, params_path="params.yaml", multitask=False):
        params = load_params(params_path)
        check_family(family)
        runs = params.section("runs")
        checks = [("families", family), ("replicates", rep)]
        if multitask or task == MULTITASK:
            checks.append(("multitask", family))
        if task != MULTITASK:
            checks.append(("tasks", task))
        for key, value in checks:
            allowed = runs.list(key, min_len=0, unique=True)
            if value not in allowed:
                raise UserError(f"{value!r} is not in params 'runs.{key}' ({allowed})")
        run = cls(params, family, task, rep, multitask and task != MULTITASK)
        if task == MULTITASK:
            run.task = MultiTask([load_task(params, t) for t in runs.list("tasks", unique=True)])
        else:
            run.task = load_task(params, task)
        return run

    @property
    def family_params(self):
        return self.params.section("families").section(self.family)

    @property
    def seed(self):
        """This run's seed: init, batch order and baselines derive from it."""
        model = MULTITASK if self.multitask else self.task_name
        return derive_seed(self.params.int("seed", lo=0), self.family, model, self.rep)

    def device(self):
        return pick_device(self.family_params.str("device", choices=("auto", "cpu", "cuda")))

    def load_model(self):
        """This run's trained model (eval mode) and codec."""
        return load_run_model(self.family, self.model_dir, self.device(), self.family_params)

    @property
    def data_dir(self):
        return data_dir(self.task_name)

    @property
    def model_dir(self):
        return model_dir(self.family, self.task_name, self.rep, self.multitask)

    @property
    def run_dir(self):
        return run_dir(self.family, self.task_name, self.rep, self.multitask)

    @property
    def metrics_dir(self):
        return metrics_dir(self.family, self.task_name, self.rep, self.multitask)

    def plot_path(self, kind, ext="csv"):
        return plot_path(kind, self.family, self.task_name, self.rep, ext, self.multitask)

    @property
    def name(self):
        return f"{self.family}/{MULTITASK}/r{self.rep}/{self.task_name}" if self.multitask else \
            f"{self.family}/{self.task_name}/r{self.rep}"


def run_command(main):
    """The command line of a per-run stage, `FAMILY TASK REP [--multitask]`, calling main(run)."""
    @click.command(cls=OneLineCommand, help=main.__doc__)
    @click.argument("family")
    @click.argument("task")
    @click.argument("rep", type=int)
    @click.option("--multitask", is_flag=True, help="the task on the model trained on every task")
    def cli(family, task, rep, multitask):
        run_main(lambda: main(Run.open(family, task, rep, multitask=multitask)))
    return cli
