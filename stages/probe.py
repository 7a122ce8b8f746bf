"""Stage probe: decode the probe groups, label MEM / GEN / OTHER, keep the MEM/GEN pairs.

With `families.<f>.probe.screen` it first screens every prompt's route from one forward pass: greedy
decoding writes the argmax token at the prompt end first, so a prompt whose first token starts neither
answer ends OTHER, and a group without one prompt that can end MEM and another that can end GEN holds
no pair. Only the groups that can pair are decoded, and the first `check_groups` in full, which give
the behaviour rates and check the screen against full decoding.
With params `parallel.num_processes` > 1 the processes share the batches out."""

from memgen.behaviour import (find_pairs, first_groups, leading_groups, read_screen, run_probes, screened_probes,
                               screened_summary, summarise)
from memgen.distributed import is_main, read_parallel, relaunch_if_asked
from memgen.generate import read_num_beams
from memgen.io import read_jsonl, write_json, write_jsonl
from memgen.pairs import write_pairs
from memgen.run import run_command
from memgen.tasks import GEN, MEM


def screen_record(probes, routes, labels, can_pair, check_groups):
    """How the screen did on the fully decoded check groups: whether every prompt decoded MEM or GEN was
    routed so, and how many of their pairs lie in groups the screen alone would have skipped."""
    checking = leading_groups(probes, check_groups)
    checked = [i for i, p in enumerate(probes) if p["group"] in checking]
    told = [i for i in checked if labels[i] in (MEM, GEN)]
    pairs = find_pairs([probes[i] for i in checked], [labels[i] for i in checked])
    missed = sum(probes[checked[m]]["group"] not in can_pair for m, _ in pairs)
    return {"prompts_screened": len(probes), "groups_can_pair": len(can_pair), "check_groups": check_groups,
            "check_prompts_told": len(told),
            "routes_agree": sum(routes[i] == labels[i] for i in told) / len(told) if told else None,
            "check_pairs": len(pairs), "pairs_missed": missed}


def main(run):
    batch_size = run.params.section("probe").int("batch_size", lo=1)
    pp = run.family_params.section("probe")
    max_groups = pp.int("max_groups", lo=1)
    num_beams = read_num_beams(run.params)
    screen, check_groups = read_screen(pp, num_beams)
    relaunch_if_asked(read_parallel(run.params))  # once its params are checked: a mistake is one line
    probes = first_groups(read_jsonl(run.data_dir / "probe.jsonl"), max_groups)
    model, codec = run.load_model()

    if screen:
        decoded, outputs, labels, routes, can_pair = screened_probes(model, codec, run.task, probes, batch_size,
                                                                     check_groups, desc=f"probe {run.model_dir}")
    else:
        decoded = range(len(probes))
        outputs, labels = run_probes(model, codec, run.task, probes, batch_size, desc=f"probe {run.model_dir}",
                                     num_beams=num_beams)
    if not is_main():  # every process holds all the outputs; one writes them
        return
    decode = [probes[i] for i in decoded]
    write_jsonl(run.run_dir / "probe_outputs.jsonl",
                [{**p, "output": o, "label": lab} for p, o, lab in zip(decode, outputs, labels)])
    write_pairs(run.run_dir / "pairs.json", decode, find_pairs(decode, labels))
    if not screen:
        write_json(run.metrics_dir / "probe.json", summarise(probes, labels))
        return
    label_of = dict(zip(decoded, labels))
    write_json(run.metrics_dir / "probe.json", {
        **screened_summary(probes, decoded, labels, check_groups),
        "screen": screen_record(probes, routes, [label_of.get(i) for i in range(len(probes))], can_pair, check_groups)})


if __name__ == "__main__":
    run_command(main)()
