"""Stage probe: decode the probe groups, label MEM / GEN / OTHER, keep the MEM/GEN pairs.
With params `parallel.num_processes` > 1 the processes share the batches out."""

from memgen.behaviour import find_pairs, first_groups, run_probes, summarise
from memgen.distributed import is_main, read_parallel, relaunch_if_asked
from memgen.generate import read_num_beams
from memgen.io import read_jsonl, write_json, write_jsonl
from memgen.pairs import write_pairs
from memgen.run import run_command


def main(run):
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    max_groups = run.family_params.section("probe").int("max_groups", lo=1)
    num_beams = read_num_beams(run.params)
    relaunch_if_asked(read_parallel(run.params))  # once its params are checked: a mistake is one line
    probes = first_groups(read_jsonl(run.data_dir / "probe.jsonl"), max_groups)
    model, codec = run.load_model()

    outputs, labels = run_probes(model, codec, run.task, probes, batch_size, desc=f"probe {run.model_dir}",
                                 num_beams=num_beams)
    if not is_main():  # every process holds all the outputs; one writes them
        return
    rows = [{**p, "output": o, "label": lab} for p, o, lab in zip(probes, outputs, labels)]
    write_jsonl(run.run_dir / "probe_outputs.jsonl", rows)
    write_pairs(run.run_dir / "pairs.json", probes, find_pairs(probes, labels))
    write_json(run.metrics_dir / "probe.json", summarise(probes, labels))


if __name__ == "__main__":
    run_command(main)()
