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
from memgen.training import rebalance, train, train_settings


def training_data(run, eval_groups):
    """Training examples and the val probes that choose the checkpoint (eval_groups per task)."""
    if run.trained_on != MULTITASK:
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
    cfg = {**train_settings(fp, run.trained_on), "num_beams": num_beams, "check_groups": check_groups}
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
