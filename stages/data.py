"""Stage data: a task's training examples and its probe groups (val / probe / test)."""
import random

import click

from memgen.errors import OneLineCommand, run_main
from memgen.io import atomic_path, write_json, write_jsonl
from memgen.params import derive_seed, load_params
from memgen.paths import data_dir
from memgen.tasks import load_task

SPLITS = ("val", "probe", "test")  # checkpoint choice / pair finding / held-out steering


def main(task_name):
    params = load_params()
    task = load_task(params, task_name)
    tp = params.section("tasks").section(task_name)
    sizes = {"train": tp.int("n_train", lo=1), **{s: tp.int(f"n_{s}_groups", lo=1) for s in SPLITS}}
    seed = params.int("seed", lo=0)

    with atomic_path(data_dir(task_name), is_dir=True) as out:
        rng = random.Random(derive_seed(seed, "data", task_name, "train"))
        write_jsonl(out / "train.jsonl", task.training_examples(rng, sizes["train"]))
        for split in SPLITS:
            rng = random.Random(derive_seed(seed, "data", task_name, split))
            write_jsonl(out / f"{split}.jsonl", task.probe_groups(rng, sizes[split]))
        write_json(out / "task.json", {"task": task_name, **task.describe()})


@click.command(cls=OneLineCommand)
@click.argument("task")
def cli(task):
    run_main(main, task)


if __name__ == "__main__":
    cli()
