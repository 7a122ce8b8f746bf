"""Stage report: one summary of every run (behaviour, pairs, steering, baseline) as JSON and Markdown."""
import click

from memgen.errors import run_main
from memgen.io import atomic_path, read_json, require_keys, write_json
from memgen.params import load_params
from memgen.paths import metrics_dir


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}"


def main():
    params = load_params()
    runs = params.section("runs")
    summary, lines = {}, [
        "# memgen summary", "",
        f"topN = {params.raw('topN')}, alpha = {params.raw('alpha')}, seed = {params.raw('seed')}", "",
        "| run | MEM % | GEN % | OTHER % | pair yield % | pairs | neurons | M->G % (n) | random M->G % "
        "| G->M % (n) | random G->M % |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for family in runs.list("families"):
        for task in runs.list("tasks"):
            for rep in runs.list("replicates"):
                mdir = metrics_dir(family, task, rep)
                probe = require_keys(read_json(mdir / "probe.json"), ["mem", "gen", "other", "pair_yield", "n_pairs"],
                                     mdir / "probe.json")
                steer = require_keys(read_json(mdir / "steer.json"), ["alpha", "n_pairs"], mdir / "steer.json")
                name = f"{family}/{task}/r{rep}"
                summary[name] = {"probe": probe, "steer": steer}
                if "skipped" in steer:
                    lines.append(f"| {name} | {pct(probe['mem'])} | {pct(probe['gen'])} | {pct(probe['other'])} "
                                 f"| {pct(probe['pair_yield'])} | 0 | {steer['skipped']} | | | | |")
                    continue
                t, r = steer["targeted"], steer["random"]
                lines.append(
                    f"| {name} | {pct(probe['mem'])} | {pct(probe['gen'])} | {pct(probe['other'])} "
                    f"| {pct(probe['pair_yield'])} | {probe['n_pairs']} | {steer['n_neurons']} "
                    f"| {pct(t['m2g']['success'])} ({t['m2g']['n']}) | {pct(r['m2g']['success'])} "
                    f"| {pct(t['g2m']['success'])} ({t['g2m']['n']}) | {pct(r['g2m']['success'])} |")
    lines += [
        "",
        "M->G: of held-out probes whose unsteered output is MEM, the share whose steered output is GEN "
        "(G->M likewise); n is that count. Steering shifts the top-N neurons by |rho| by -/+ alpha*NMD at "
        "the last position of every decoding step. Random: the authors' baseline, as many random neurons "
        "shifted by U(-m, m), m the largest |NMD| among the selected neurons.",
        "In arithmetic and cipher the MEM answer is a `<mem-XXXXXXXX>` code, a token string of its own "
        "(as in the paper); in incontext both answers are colour words."]
    write_json("metrics/summary.json", summary)
    with atomic_path("metrics/report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


@click.command()
def cli():
    run_main(main)


if __name__ == "__main__":
    cli()
