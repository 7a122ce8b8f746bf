"""`memgen steer`: steer a trained run by hand, outside DVC.

    memgen steer gpt2_shared cipher --test 5            # the first 5 held-out test probes, at the val-chosen point
    memgen steer gpt2_shared cipher --paper             # at the paper's setting
    memgen steer gpt2_shared cipher --alpha 5 --topN 0.1 --direction m2g --prompt "CIPHERTEXT:... ANS:"

Loads the run's model and neurons once and prints the unsteered and steered outputs of each prompt.

`memgen pull [-r REMOTE]`: `dvc pull --run-cache`, after checking that a directory remote exists
(DVC itself only says that files are missing "neither locally nor on remote").
"""
import math
import subprocess
import sys
from pathlib import Path

import click

from .errors import OneLineGroup, UserError, run_main
from .names import ADAPTIVE, DIRECTIONS, KNOWN_SITES, SCHEDULE_NAMES, VECTORS

# `memgen --help` must answer at once, so this module imports neither torch nor what imports it
# (evaluate, run, search, ...: each command imports them when it runs); its names come from memgen.names.
CONTEXT = {"help_option_names": ["-h", "--help"]}


class Strength(click.ParamType):
    """alpha on the command line: a finite number > 0, or 'adaptive'."""
    name = "alpha"

    def convert(self, value, param, ctx):
        if value == ADAPTIVE:
            return value
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and number > 0):
            self.fail(f"must be a finite number > 0 or '{ADAPTIVE}', got {value!r}", param, ctx)
        return number


class Fraction(click.ParamType):
    """topN on the command line: a finite fraction in (0, 1]."""
    name = "fraction"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and 0 < number <= 1):
            self.fail(f"must be a fraction in (0, 1], got {value!r}", param, ctx)
        return number


@click.group(cls=OneLineGroup, context_settings=CONTEXT)
@click.version_option(package_name="memgen", prog_name="memgen")
def main():
    """memgen: neuron-level memorization vs generalization, reproduced."""


@main.command()
@click.argument("family")
@click.argument("task")
@click.option("--rep", default=0, show_default=True, help="replicate of the run")
@click.option("--prompt", "prompts", multiple=True, help="a prompt to steer (repeatable)")
@click.option("--test", "n_test", type=click.IntRange(min=1), default=3, show_default=True,
              help="without --prompt: the first N test probes")
@click.option("--alpha", type=Strength(), default=None, help="a number or 'adaptive' [default: the run's chosen point]")
@click.option("--topN", "top_n", type=Fraction(), default=None, help="fraction of neurons [default: the chosen point]")
@click.option("--schedule", type=click.Choice(list(SCHEDULE_NAMES)), default=None, help="[default: the chosen point]")
@click.option("--site", type=click.Choice(list(KNOWN_SITES)), default=None, help="[default: the chosen point]")
@click.option("--vector", type=click.Choice(list(VECTORS)), default=None, help="[default: the chosen point]")
@click.option("--paper", is_flag=True, help="start from the paper's setting instead of the chosen point")
@click.option("--direction", type=click.Choice(["m2g", "g2m", "both"]), default="both", show_default=True)
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def steer(family, task, rep, prompts, n_test, alpha, top_n, schedule, site, vector, paper, direction, params_path):
    """Unsteered and steered outputs of FAMILY/TASK's trained model, at the point the steer stage chose
    on val (or the paper's setting), with any knob overridden."""
    def run():
        from rich.console import Console
        from rich.table import Table

        from .evaluate import Outputs, Steerer
        from .io import read_jsonl
        from .neuron_store import read_neurons
        from .run import Run
        from .search import intervention, read_ladder

        r = Run.open(family, task, rep, params_path=params_path)
        neurons, n_pairs = read_neurons(r.run_dir / "neurons.safetensors")
        if n_pairs == 0:
            raise UserError(f"{family}/{task}/r{rep} found no MEM/GEN pairs, so it has no neurons to steer")
        overrides = {"alpha": alpha, "topN": top_n, "schedule": schedule, "site": site, "vector": vector}
        points = {d: _point(r, d, paper, overrides) for d in (DIRECTIONS if direction == "both" else (direction,))}
        test = read_jsonl(r.data_dir / "test.jsonl")
        probes = [{"prompt": p, "mem": "", "gen": ""} for p in prompts] or test[:n_test]
        # free prompts have no known answers: leave room to decode as much as the test probes need
        steerer = Steerer.for_run(r, test[:50] + probes, batch_size=64)
        unsteered = steerer.decode(probes)
        columns = {"unsteered": unsteered}
        for d, point in points.items():
            iv = intervention(point, neurons, d)
            outs, flipped_at = Outputs(steerer, probes, iv, point.site, point.schedule).run(
                point.alpha, unsteered, read_ladder(r.params))
            columns[f"to {'GEN' if d == 'm2g' else 'MEM'} ({len(iv.idx)} neurons: {point.label()})"] = [
                o if a is None or point.alpha != ADAPTIVE else f"{o}  (alpha {a:g})" for o, a in zip(outs, flipped_at)]
        table = Table(title=f"{family}/{task}/r{rep}", show_lines=True)
        for name in ["prompt", *columns]:
            table.add_column(name, overflow="fold")
        for i, p in enumerate(probes):
            table.add_row(p["prompt"], *[_labelled(r.task, outs[i], p) for outs in columns.values()])
        Console().print(table)
    run_main(run)


def _point(run, direction, paper, overrides):
    """The steer stage's chosen point for the direction (the paper's with --paper, or where the stage has
    not run), with the knobs given on the command line."""
    from .results import SteerRecord, read_record
    from .search import Point, read_paper_point

    steer_json = run.metrics_dir / "steer.json"
    base = read_paper_point(run.params, run.plugin)
    if not paper and steer_json.exists():
        chosen = read_record(steer_json, SteerRecord).operating_point.get(direction)
        if chosen:
            base = Point(**chosen["point"])
    return Point(**{**base.as_dict(), **{k: v for k, v in overrides.items() if v is not None}})


def _labelled(task, output, probe):
    """The output, with its MEM/GEN/OTHER label where the probe's answers are known."""
    if not probe.get("mem") and not probe.get("gen"):
        return output
    answer = output.split("  (alpha")[0]
    return f"{output}  [{task.classify(answer, probe)}]"


@main.command(context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True})
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


@main.command(context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.option("--llama-base", default=None, help="a local HF Llama directory or .gguf file for the llama family "
              "[default: the profile's, else params.yaml's]")
@click.option("--run", "run_now", is_flag=True, help="run `dvc exp run` with the settings and DVC_ARGS")
@click.argument("dvc_args", nargs=-1, type=click.UNPROCESSED)
def profile(name, llama_base, run_now, dvc_args):
    """The settings of profiles/NAME.yaml as `-S key=value` arguments of `dvc exp run`:

        dvc exp run $(memgen profile paper --llama-base ~/models/Llama-3.2-1B)
        memgen profile paper --run -- --queue -n paper
    """
    def run():
        import yaml

        from .profiles import read_profile, set_args, settings

        pairs = settings(read_profile(name), yaml.safe_load(Path("params.yaml").read_text()))
        if llama_base is not None:
            from .families.llama import check_base_source  # one clear line for a missing or non-Llama base

            check_base_source(llama_base)
            pairs.append(("families.llama.base", str(Path(llama_base).expanduser().resolve())))
        args = set_args(pairs)
        if not run_now:
            print(" ".join(args))
            return
        sys.exit(subprocess.run(["dvc", "exp", "run", *args, *dvc_args]).returncode)
    run_main(run)
