"""Stage predict: can a linear classifier tell MEM from GEN states, layer by layer, better than the
prompt's own tokens can? Held-out accuracy per layer beside an ordered-tokens baseline (positions and n-grams)."""
from memgen.activations import read_site, store_sites
from memgen.io import write_json
from memgen.pairs import read_pairs
from memgen.params import derive_seed
from memgen.plots import write_csv
from memgen.predict import classify_layers
from memgen.run import run_command
from memgen.tasks.base import TOKEN_PATTERN

MIN_PAIRS = 10  # fewer pairs leave too little to train on and a test split of one or two pairs


def main(run):
    pp = run.params.section("predict")
    test_fraction = pp.float("test_fraction", lo=0.0, hi=0.5, lo_open=True)
    l2, max_iter = pp.float("l2", lo=0.0), pp.int("max_iter", lo=1)
    store_path = run.run_dir / "activations.safetensors"
    states = {site: read_site(store_path, site) for site in store_sites(store_path)}
    pairs = read_pairs(run.run_dir / "pairs.json")
    n_pairs, n_layers = len(pairs), next(iter(states.values()))[0].shape[1]
    columns = [f"state_{site}" for site in states]
    if n_pairs < MIN_PAIRS:
        write_json(run.metrics_dir / "predict.json", {"n_pairs": n_pairs,
                                                      "skipped": f"fewer than {MIN_PAIRS} MEM/GEN pairs"})
        write_csv(run.plot_path("predict_by_layer"),
                  [{"layer": l, **{c: "" for c in columns}, "ordered_tokens": ""} for l in range(n_layers)])
        return
    result = classify_layers(states, pairs, TOKEN_PATTERN, test_fraction, derive_seed(run.seed, "predict-split"), l2, max_iter)
    write_json(run.metrics_dir / "predict.json", {"n_pairs": n_pairs, "chance": 0.5, **result})
    write_csv(run.plot_path("predict_by_layer"),
              [{"layer": l, **{f"state_{site}": acc[l] for site, acc in result["by_layer"].items()},
                "ordered_tokens": result["ordered_tokens"]} for l in range(n_layers)])


if __name__ == "__main__":
    run_command(main)()
