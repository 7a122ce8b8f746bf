"""Stage extract: the state at the last prompt token at every site and layer, for both prompts of each pair."""
from memgen.activations import PAIR_SIDES, write_activations
from memgen.pairs import read_pairs
from memgen.run import run_command
from memgen.sites import capture_prompt_ends


def main(run):
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    pairs = read_pairs(run.run_dir / "pairs.json")
    model, codec = run.load_model()
    modules = run.plugin.all_site_modules(model)
    by_condition = {cond: capture_prompt_ends(model, codec, modules, [p[i] for p in pairs], batch_size,
                                              f"extract {cond}") for i, cond in enumerate(PAIR_SIDES)}
    states = {site: {cond: by_condition[cond][site] for cond in PAIR_SIDES} for site in modules}
    write_activations(run.run_dir / "activations.safetensors", states,
                      metadata={"family": run.family, "task": run.task_name, "n_pairs": len(pairs)})


if __name__ == "__main__":
    run_command(main)()
