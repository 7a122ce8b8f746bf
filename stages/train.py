"""Stage train: one model per (family, task, replicate), checkpoint chosen by pair yield.
Model "multitask": one model on every task of `runs.tasks`, its val probes from all of them.
Each checkpoint's loss and val shares are logged with DVCLive as training runs, so
`dvc plots show metrics/plots/train_curve/<run>` draws the curves before the stage ends.
With params `parallel` asking for more processes, mixed precision or accumulation, it trains through accelerate."""
from dvclive import Live

from memgen.behaviour import first_groups, read_screen
from memgen.distributed import is_main, read_parallel, relaunch_if_asked
from memgen.errors import UserError
from memgen.generate import read_num_beams
from memgen.io import atomic_path, read_jsonl, write_json
from memgen.model_card import write_model_card
from memgen.paths import MULTITASK, data_dir
from memgen.run import run_command
from memgen.training import rebalance, train


def per_task(t, key, task_name, read):
    """A train setting given as one value, or as a mapping task -> value."""
    return read(t.section(key), task_name) if isinstance(t.raw(key, None), dict) else read(t, key)


def read_share(p, key):
    """null (the data's own mix) or a share of memorized examples in (0, 1)."""
    if p.raw(key, None) is None:
        return None
    share = p.float(key, lo=0.0, hi=1.0, lo_open=True)
    if share == 1.0:
        raise UserError(f"params: '{p.prefix}.{key}' must be below 1 (no rule examples would be left)")
    return share


def train_settings(fp, task_name):
    """families.<family>.train; `steps`, `lr` and `mem_share` are one value or one per task."""
    t = fp.section("train")
    return {"steps": per_task(t, "steps", task_name, lambda p, k: p.int(k, lo=1)),
            "mem_share": per_task(t, "mem_share", task_name, read_share),
            "batch_size": t.int("batch_size", lo=1),
            "lr": per_task(t, "lr", task_name, lambda p, k: p.float(k, lo=0.0, lo_open=True)),
            "weight_decay": t.float("weight_decay", lo=0.0),
            "warmup": t.int("warmup", lo=0), "eval_every": t.int("eval_every", lo=1),
            "eval_batch_size": t.int("eval_batch_size", lo=1), "eval_groups": t.int("eval_groups", lo=1),
            "max_other": t.float("max_other", lo=0.0, hi=1.0)}


def training_data(run, eval_groups):
    """Training examples and the val probes that choose the checkpoint (eval_groups per task)."""
    if run.model != MULTITASK:
        return read_jsonl(run.data_dir / "train.jsonl"), first_groups(read_jsonl(run.data_dir / "val.jsonl"), eval_groups)
    examples, val = [], []
    for name in run.task.tasks:  # the trainer shuffles, so the tasks mix in every batch
        examples += read_jsonl(data_dir(name) / "train.jsonl")
        val += [{**p, "task": name, "group": f"{name}/{p['group']}"}
                for p in first_groups(read_jsonl(data_dir(name) / "val.jsonl"), eval_groups)]
    return examples, val


CURVE = ("loss", "mem", "gen", "other", "pair_yield")  # logged at each checkpoint


def log_checkpoint(live, row):
    live.step = row["step"]
    for key in CURVE:
        live.log_metric(key, row[key])


def main(run):
    fp = run.family_params
    num_beams = read_num_beams(run.params)  # the val probes' decoding, screened where the probe stage screens
    screen, _ = read_screen(fp.section("probe"), num_beams)
    check_groups = fp.section("train").int("eval_check_groups", lo=1) if screen else 0
    cfg = {**train_settings(fp, run.model), "num_beams": num_beams, "check_groups": check_groups}
    run.plugin.check(fp)
    parallel = read_parallel(run.params)
    slices = parallel.num_processes * parallel.gradient_accumulation_steps
    if cfg["batch_size"] % slices:
        raise UserError(f"params: '{fp.prefix}.train.batch_size' ({cfg['batch_size']}) must split evenly over "
                        f"parallel.num_processes x gradient_accumulation_steps ({slices})")
    relaunch_if_asked(parallel)
    device = run.device()

    examples, val = training_data(run, cfg["eval_groups"])
    if cfg["mem_share"] is not None:
        examples = rebalance(examples, run.task.is_memorized, cfg["mem_share"])
    texts = [e["prompt"] + e["target"] for e in examples] + [p[k] for p in val for k in ("prompt", "mem", "gen")]
    model, codec, save = run.plugin.new_model(fp, texts, seed=run.seed)
    model.to(device)
    if not is_main():  # it trains its slice of each batch; the main process logs and writes
        train(model, codec, run.task, examples, val, cfg, run.seed, desc=None, parallel=parallel)
        return
    with Live(dir=str(run.plot_path("train_curve", ext=None)), save_dvc_exp=False, dvcyaml=None, report=None,
              monitor_system=False) as live:
        _, chosen = train(model, codec, run.task, examples, val, cfg, run.seed, desc=f"train {run.model_dir}",
                          on_eval=lambda row: log_checkpoint(live, row), parallel=parallel)

    with atomic_path(run.model_dir, is_dir=True) as out:
        save(out)
        write_model_card(out, run, cfg, chosen, codec, examples)
    write_json(run.metrics_dir / "train.json", {"chosen_step": chosen["step"], **{
        k: chosen[k] for k in ("mem", "gen", "other", "pair_yield", "n_pairs", "loss")}})


if __name__ == "__main__":
    run_command(main)()
