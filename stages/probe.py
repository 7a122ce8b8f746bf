"""Stage probe: decode the probe groups, label MEM / GEN / OTHER, keep the MEM/GEN pairs."""
import click

from memgen.behaviour import find_pairs, first_groups, run_probes, summarise
from memgen.errors import run_main
from memgen.io import read_jsonl, write_json, write_jsonl
from memgen.models import load_run_model
from memgen.run import Run


def main(family, task_name, rep):
    run = Run.open(family, task_name, rep)
    pp = run.params.section("probe")
    batch_size, max_groups = pp.int("batch_size", lo=1), pp.section("max_groups").int(family, lo=1)
    probes = first_groups(read_jsonl(run.data_dir / "probe.jsonl"), max_groups)
    model, codec = load_run_model(family, run.model_dir, run.device(), run.family_params)

    outputs, labels = run_probes(model, codec, run.task, probes, batch_size, desc=f"probe {run.model_dir}")
    rows = [{**p, "output": o, "label": lab} for p, o, lab in zip(probes, outputs, labels)]
    write_jsonl(run.run_dir / "probe_outputs.jsonl", rows)
    pairs = find_pairs(probes, labels)
    write_json(run.run_dir / "pairs.json", {"pairs": [[probes[m]["prompt"], probes[g]["prompt"]] for m, g in pairs]})
    write_json(run.metrics_dir / "probe.json", summarise(probes, labels))


@click.command()
@click.argument("family")
@click.argument("task")
@click.argument("rep", type=int)
def cli(family, task, rep):
    run_main(main, family, task, rep)


if __name__ == "__main__":
    cli()
