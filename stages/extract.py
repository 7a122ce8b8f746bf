"""Stage extract: the state at the last prompt token at every site and layer, for both prompts of each pair."""
from memgen.activations import CONDITIONS, write_activations
from memgen.io import read_json, require_keys
from memgen.run import run_command
from memgen.sites import all_site_modules, capture_prompt_ends


def main(run):
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    pairs_path = run.run_dir / "pairs.json"
    pairs = require_keys(read_json(pairs_path), ["pairs"], pairs_path)["pairs"]
    model, codec = run.load_model()
    modules = all_site_modules(model, run.family)
    by_condition = {cond: capture_prompt_ends(model, codec, modules, [p[i] for p in pairs], batch_size,
                                              f"extract {cond}") for i, cond in enumerate(CONDITIONS)}
    states = {site: {cond: by_condition[cond][site] for cond in CONDITIONS} for site in modules}
    write_activations(run.run_dir / "activations.safetensors", states,
                      metadata={"family": run.family, "task": run.task_name, "n_pairs": len(pairs)})


if __name__ == "__main__":
    run_command(main)()
