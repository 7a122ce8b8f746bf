"""Stage neurons: NMD, Pearson rho and the discriminant direction of every (site, layer, neuron), the
permutation null of the ranking, and the sorted-NMD heatmap."""
from memgen.activations import store_sites
from memgen.io import write_json
from memgen.neuron_store import write_neurons
from memgen.params import derive_seed
from memgen.plots import nmd_heatmap, write_csv
from memgen.run import run_command
from memgen.stats import site_stats


def main(run):
    knobs = run.params.section("neurons")
    n_permutations = knobs.int("n_permutations", lo=0)
    shrinkage = knobs.float("discriminant_shrinkage", lo=0.0, lo_open=True)
    store = run.run_dir / "activations.safetensors"
    stats = {site: site_stats(store, site, n_permutations, derive_seed(run.seed, "null", site), shrinkage)
             for site in store_sites(store)}
    write_neurons(run.run_dir / "neurons.safetensors", stats)
    paper = stats[run.plugin.paper_site]
    nmd_heatmap(run.plot_path("nmd_heatmap", "png"), paper.nmd,
                f"{run.family} {run.task_name} r{run.rep}: sorted NMD per layer ({run.plugin.paper_site})")
    write_csv(run.plot_path("neurons_by_layer"), [
        {"layer": layer, **{f"max_abs_rho_{site}": float(s.rho[layer].abs().max()) for site, s in stats.items()}}
        for layer in range(paper.rho.shape[0])])
    write_json(run.metrics_dir / "neurons.json", {
        "n_pairs": paper.n_pairs, "layers": paper.rho.shape[0], "width": paper.rho.shape[1],
        "sites": {site: {"max_abs_rho": float(s.rho.abs().max()), "max_abs_nmd": float(s.nmd.abs().max()),
                         **s.chance} for site, s in stats.items()}})


if __name__ == "__main__":
    run_command(main)()
