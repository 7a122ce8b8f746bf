"""Stage neurons: NMD and Pearson rho of every (layer, neuron), and the sorted-NMD heatmap."""

from memgen.io import write_json, write_tensors
from memgen.plots import nmd_heatmap, write_csv
from memgen.run import run_command
from memgen.stats import neuron_stats


def main(run):
    nmd, rho, n_pairs = neuron_stats(run.run_dir / "activations.safetensors")
    write_tensors(run.run_dir / "neurons.safetensors", {"nmd": nmd, "rho": rho},
                  metadata={"layout": "[layer, neuron]", "rho": "Pearson r with label MEM=1, GEN=0",
                            "n_pairs": str(n_pairs)})
    nmd_heatmap(run.plot_path("nmd_heatmap", "png"), nmd, f"{run.family} {run.task_name} r{run.rep}: sorted NMD per layer")
    by_layer = [{"layer": layer, "max_abs_rho": float(rho[layer].abs().max()),
                 "mean_abs_nmd": float(nmd[layer].abs().mean())} for layer in range(rho.shape[0])]
    write_csv(run.plot_path("neurons_by_layer"), by_layer)
    write_json(run.metrics_dir / "neurons.json", {
        "n_pairs": n_pairs, "layers": rho.shape[0], "width": rho.shape[1], "max_abs_rho": float(rho.abs().max()),
        "max_abs_nmd": float(nmd.abs().max())})


if __name__ == "__main__":
    run_command(main)()
