"""Stage data: a task's training examples and its held-out probe groups (val / probe / test), and
the overlap counts that show the parts share no prompt (nor, for arithmetic, any addend multiset)."""
import click

from memgen.errors import OneLineCommand, UserError, run_main
from memgen.io import atomic_path, write_json, write_jsonl
from memgen.params import load_params
from memgen.paths import data_dir
from memgen.splits import SPLITS, draw_dataset, overlaps
from memgen.tasks import load_task


def main(task_name):
    params = load_params()
    task = load_task(params, task_name)
    tp = params.section("tasks").section(task_name)
    n_groups = {s: tp.int(f"n_{s}_groups", lo=1) for s in SPLITS}
    data = draw_dataset(task, tp.int("n_train", lo=1), n_groups, params.int("seed", lo=0))
    shared = {"prompt": overlaps(data), task.holdout_unit: overlaps(data, task.unit_of)}
    if any(n for counts in shared.values() for n in counts.values()):  # cannot happen by construction: a check
        raise UserError(f"data {task_name}: parts share held-out units {shared}")

    with atomic_path(data_dir(task_name), is_dir=True) as out:
        for part, rows in data.items():
            write_jsonl(out / f"{part}.jsonl", rows)
        write_json(out / "task.json", {"task": task_name, **task.describe()})
    write_json(f"metrics/data/{task_name}.json", {
        "overlap": shared, "holdout_unit": task.holdout_unit, "prompts": {part: len({r["prompt"] for r in rows}) for part, rows in data.items()}})


@click.command(cls=OneLineCommand)
@click.argument("task")
def cli(task):
    run_main(main, task)


if __name__ == "__main__":
    cli()
