"""What every per-run stage starts with: checked params and the run's identity.

A run is (family, model, replicate, task) as paths.py names it: a model trained on one task
analysing that task, or the multitask model (trained on every task) analysing one of them; the
multitask model's own training run has task MULTITASK."""
from dataclasses import dataclass

import click

from .distributed import pin_threads, process_device
from .errors import OneLineCommand, UserError, run_main
from .families import Family, get_family, pick_device
from .params import derive_seed, load_params
from .paths import MULTITASK, PLANTED, data_dir, metrics_dir, model_dir, plot_path, run_dir, run_parts
from .tasks import Task, load_task
from .tasks.multitask import MultiTask


@dataclass
class Run:
    params: object
    family: str
    trained_on: str  # what its model learnt: a task's name, MULTITASK or PLANTED
    rep: int
    task_name: str   # the task analysed (MULTITASK: the multitask model's training run)
    plugin: Family   # how the family's models are built, loaded and hooked
    task: Task

    @classmethod
    def open(cls, family, model, rep, task=None, params_path="params.yaml"):
        params = load_params(params_path)
        pin_threads(params)
        task = model if task is None else task
        plugin = get_family(params, family)
        runs = params.section("runs")
        checks = [] if model == PLANTED else [("replicates", rep)]  # a planted model's rep is one of plant.draws
        if model == MULTITASK:
            checks += [("families", family), ("multitask", family)]
        elif model == PLANTED:  # planted models start from nothing: the family need not run otherwise
            checks.append(("planted", family))
        elif task != model:
            raise UserError(f"a model trained on {model!r} analyses only that task, not {task!r}")
        else:
            checks.append(("families", family))
        if task != MULTITASK:
            checks.append(("tasks", task))
        for key, value in checks:
            allowed = runs.list(key, min_len=0, unique=True)
            if value not in allowed:
                raise UserError(f"{value!r} is not in params 'runs.{key}' ({allowed})")
        if model == PLANTED:
            pp = params.section("plant")
            for key, value in (("tasks", task), ("draws", rep)):
                if value not in (allowed := pp.list(key, min_len=0, unique=True)):
                    raise UserError(f"{value!r} is not in params 'plant.{key}' ({allowed})")
        loaded = MultiTask([load_task(params, t) for t in runs.list("tasks", unique=True)]) if task == MULTITASK \
            else load_task(params, task)
        return cls(params, family, model, rep, task, plugin, loaded)

    @property
    def family_params(self):
        return self.params.section("families").section(self.family)

    @property
    def seed(self):
        """This run's seed: init, batch order and baselines derive from it (one per model)."""
        planted = [self.task_name] if self.trained_on == PLANTED else []  # one planted model per task, each its own draw
        return derive_seed(self.params.int("seed", lo=0), self.family, self.trained_on, self.rep, *planted)

    def device(self):
        return process_device(pick_device(self.family_params.str("device", choices=("auto", "cpu", "cuda"))))

    def load_model(self):
        """This run's trained model (eval mode) and codec."""
        return self.plugin.load_model(self.model_dir, self.device(), self.family_params)

    @property
    def data_dir(self):
        return data_dir(self.task_name)

    @property
    def model_dir(self):
        return model_dir(self.family, self.trained_on, self.rep, self.task_name)

    @property
    def run_dir(self):
        return run_dir(self.family, self.trained_on, self.rep, self.task_name)

    @property
    def metrics_dir(self):
        return metrics_dir(self.family, self.trained_on, self.rep, self.task_name)

    def plot_path(self, kind, ext="csv"):
        return plot_path(kind, self.family, self.trained_on, self.rep, self.task_name, ext)

    @property
    def name(self):
        return "/".join(run_parts(self.family, self.trained_on, self.rep, self.task_name))


def run_command(main, help_text=None):
    """The command line of every per-run stage, `FAMILY MODEL REP [TASK]`, calling main(run). MODEL is
    a task (trained on it alone), multitask or planted; TASK, the task analysed, defaults to MODEL."""
    @click.command(cls=OneLineCommand, help=help_text or main.__doc__)
    @click.argument("family")
    @click.argument("model")
    @click.argument("rep", type=int)
    @click.argument("task", required=False)
    def cli(family, model, rep, task):
        run_main(lambda: main(Run.open(family, model, rep, task)))
    return cli
