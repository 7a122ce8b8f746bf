"""`memgen steer`: steer a trained run by hand, outside DVC.

    memgen steer gpt2 cipher --alpha 5 --topN 0.1 --direction m2g --prompt "CIPHERTEXT:... ANS:"
    memgen steer llama incontext --test 5        # the first 5 held-out test probes, both directions

Loads the run's model and neurons once and prints the unsteered and steered outputs of each prompt.

`memgen pull [-r REMOTE]`: `dvc pull --run-cache`, after checking that a directory remote exists
(DVC itself only says that files are missing "neither locally nor on remote").
"""
import subprocess
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .errors import OneLineGroup, UserError, run_main
from .evaluate import Steerer, read_neurons
from .io import read_jsonl
from .params import steering_knobs
from .run import Run
from .steering import DIRECTIONS, select_top, targeted_shifts


@click.group(cls=OneLineGroup)
def main():
    """memgen: neuron-level memorization vs generalization, reproduced."""


@main.command()
@click.argument("family")
@click.argument("task")
@click.option("--rep", default=0, show_default=True, help="replicate of the run")
@click.option("--prompt", "prompts", multiple=True, help="a prompt to steer (repeatable)")
@click.option("--test", "n_test", default=3, show_default=True, help="without --prompt: the first N test probes")
@click.option("--alpha", type=float, default=None, help="steering strength [default: params.yaml alpha]")
@click.option("--topN", "top_n", type=float, default=None, help="fraction of neurons [default: params.yaml topN]")
@click.option("--direction", type=click.Choice(["m2g", "g2m", "both"]), default="both", show_default=True)
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def steer(family, task, rep, prompts, n_test, alpha, top_n, direction, params_path):
    """Unsteered and steered outputs of FAMILY/TASK's trained model."""
    def run():
        r = Run.open(family, task, rep, params_path)
        params_top_n, params_alpha = steering_knobs(r.params)
        a = params_alpha if alpha is None else alpha
        n = params_top_n if top_n is None else top_n
        if a < 0 or not 0 < n <= 1:
            raise UserError(f"--alpha must be >= 0 and --topN in (0, 1], got {a} and {n}")
        nmd, rho, n_pairs = read_neurons(r.run_dir / "neurons.safetensors")
        if n_pairs == 0:
            raise UserError(f"{family}/{task}/r{rep} found no MEM/GEN pairs, so it has no neurons to steer")
        test = read_jsonl(r.data_dir / "test.jsonl")
        probes = [{"prompt": p, "mem": "", "gen": ""} for p in prompts] or test[:max(1, n_test)]
        # free prompts have no known answers: leave room to decode as much as the test probes need
        steerer = Steerer.for_run(r, test[:50] + probes, batch_size=64)
        selected = select_top(rho, n)
        columns = {"unsteered": steerer.decode(probes, {})[0]}
        for d in DIRECTIONS if direction == "both" else (direction,):
            columns[f"to {'GEN' if d == 'm2g' else 'MEM'}"] = steerer.decode(
                probes, targeted_shifts(nmd, selected, a, d))[0]
        table = Table(title=f"{family}/{task}/r{rep}: {len(selected)} neurons, alpha {a:g}, "
                            f"site {r.site}", show_lines=True)
        for name in ["prompt", *columns]:
            table.add_column(name, overflow="fold")
        for i, p in enumerate(probes):
            table.add_row(p["prompt"], *[_labelled(r.task, outs[i], p) for outs in columns.values()])
        Console().print(table)
    run_main(run)


def _labelled(task, output, probe):
    """The output, with its MEM/GEN/OTHER label where the probe's answers are known."""
    if not probe.get("mem") and not probe.get("gen"):
        return output
    return f"{output}  [{task.classify(output, probe)}]"


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("-r", "--remote", default=None, help="the remote to pull from [default: the default remote]")
@click.argument("dvc_args", nargs=-1, type=click.UNPROCESSED)
def pull(remote, dvc_args):
    """`dvc pull --run-cache [DVC_ARGS]`, with one clear line when a directory remote is missing."""
    def run():
        from dvc.repo import Repo  # here: importing dvc takes seconds, which `memgen steer` need not wait

        with Repo(".") as repo:  # the merged config: .dvc/config, then config.local
            config = repo.config
        name = remote or config["core"].get("remote")
        if not name or name not in config["remote"]:
            raise UserError(f"no DVC remote named {name!r} (see `dvc remote list`)")
        url = str(config["remote"][name]["url"])
        if "://" not in url:  # a directory remote
            if not Path(url).is_dir():
                raise UserError(f"remote {name!r}: the directory {url} does not exist (push to it where the data "
                                f"was made, or point the remote elsewhere: dvc remote modify {name} url ...)")
        sys.exit(subprocess.run(["dvc", "pull", "--run-cache", "-r", name, *dvc_args]).returncode)
    run_main(run)
