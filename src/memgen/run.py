"""What every per-run stage starts with: checked params and identity of (family, task, replicate)."""
from dataclasses import dataclass

import click

from .errors import UserError, run_main
from .models import check_family, load_run_model, pick_device
from .params import derive_seed, load_params
from .paths import data_dir, metrics_dir, model_dir, run_dir
from .sites import check_site, site_modules
from .tasks import load_task


@dataclass
class Run:
    params: object
    family: str
    task_name: str
    rep: int

    @classmethod
    def open(cls, family, task, rep, params_path="params.yaml"):
        params = load_params(params_path)
        check_family(family)
        runs = params.section("runs")
        for key, value in (("families", family), ("tasks", task), ("replicates", rep)):
            allowed = runs.list(key, unique=True)
            if value not in allowed:
                raise UserError(f"{value!r} is not in params 'runs.{key}' ({allowed})")
        run = cls(params, family, task, rep)
        run.task = load_task(params, task)
        return run

    @property
    def family_params(self):
        return self.params.section("families").section(self.family)

    @property
    def seed(self):
        """This run's seed: init, batch order and baselines derive from it."""
        return derive_seed(self.params.int("seed", lo=0), self.family, self.task_name, self.rep)

    def device(self):
        return pick_device(self.family_params.str("device", choices=("auto", "cpu", "cuda")))

    @property
    def site(self):
        return check_site(self.family, self.family_params.str("site"))

    def load_model(self):
        """This run's trained model (eval mode) and codec."""
        return load_run_model(self.family, self.model_dir, self.device(), self.family_params)

    def site_modules(self, model):
        return site_modules(model, self.family, self.site)

    @property
    def data_dir(self):
        return data_dir(self.task_name)

    @property
    def model_dir(self):
        return model_dir(self.family, self.task_name, self.rep)

    @property
    def run_dir(self):
        return run_dir(self.family, self.task_name, self.rep)

    @property
    def metrics_dir(self):
        return metrics_dir(self.family, self.task_name, self.rep)


def run_command(main):
    """The command line of a per-run stage, `FAMILY TASK REP`, calling main(run)."""
    @click.command(help=main.__doc__)
    @click.argument("family")
    @click.argument("task")
    @click.argument("rep", type=int)
    def cli(family, task, rep):
        run_main(lambda: main(Run.open(family, task, rep)))
    return cli
