"""Stage extract: the state at the last prompt token at every site and layer, for both prompts of each pair.
With params `parallel.num_processes` > 1 the processes share the batches out."""
from memgen.activations import PAIR_SIDES, write_activations
from memgen.distributed import is_main, read_parallel, relaunch_if_asked
from memgen.pairs import read_pairs
from memgen.run import run_command
from memgen.sites import capture_prompt_ends


def main(run):
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    relaunch_if_asked(read_parallel(run.params))  # once its params are checked: a mistake is one line
    pairs = read_pairs(run.run_dir / "pairs.json")
    model, codec = run.load_model()
    modules, widths = run.plugin.all_site_modules(model), run.plugin.site_widths(model)
    by_condition = {cond: capture_prompt_ends(model, codec, modules, [p[i] for p in pairs], batch_size,
                                              f"extract {cond}", widths) for i, cond in enumerate(PAIR_SIDES)}
    if not is_main():  # every process holds all the states; one writes them
        return
    states = {site: {cond: by_condition[cond][site] for cond in PAIR_SIDES} for site in modules}
    write_activations(run.run_dir / "activations.safetensors", states,
                      metadata={"family": run.family, "task": run.task_name, "n_pairs": len(pairs)})


if __name__ == "__main__":
    run_command(main)()
