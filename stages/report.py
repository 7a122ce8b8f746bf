"""Stage report: every run's behaviour, pairs, steering against the controls (with 95 % intervals),
the alpha grid, the per-layer ablation, intra/inter consistency and behaviour prediction, beside
the paper's headline numbers: metrics/summary.json, metrics/report.md, metrics/report.html, figures."""
from pathlib import Path

import click

from memgen.errors import OneLineCommand, run_main
from memgen.io import atomic_path, read_json, require_keys, write_json
from memgen.params import load_params
from memgen.paths import comparison_path, metrics_dir
from memgen.report import (ARROW, CONDITION_NAMES, CONDITIONS, PAPER, PAPER_PAIR_YIELD, controls_figure,
                           direction_lines, lines_figure, pct, rate_cell, separated, to_html, to_markdown)
from memgen.stats import mean_and_spread
from memgen.steering import DIRECTIONS

FIGURES = Path("metrics/figures")


def read_run(family, task, rep):
    mdir = metrics_dir(family, task, rep)
    files = {"train": ["chosen_step"], "probe": ["mem", "gen", "other", "pair_yield", "n_pairs"],
             "steer": ["alpha", "n_pairs"], "predict": ["n_pairs"]}
    return {name: require_keys(read_json(mdir / f"{name}.json"), keys, mdir / f"{name}.json")
            for name, keys in files.items()}


def spread_cell(s):
    """'12.3 ± 4.5 (n=3)' from mean_and_spread's dict."""
    return "-" if s["mean"] is None else f"{pct(s['mean'])} ± {pct(s['std'])} (n={s['n']})"


def replicate_rows(runs, families, tasks, reps):
    """Mean and spread over replicate seeds per family x task: pair yield and each steer success."""
    rows, aggregate = [], {}
    for family in families:
        for task in tasks:
            group = [runs[f"{family}/{task}/r{r}"] for r in reps]
            agg = {"pair_yield": mean_and_spread([g["probe"]["pair_yield"] for g in group])}
            for cond in ("targeted", "random"):
                for d in DIRECTIONS:
                    agg[f"{cond}_{d}"] = mean_and_spread(
                        [g["steer"][cond][d]["success"] for g in group if "skipped" not in g["steer"]])
            aggregate[f"{family}/{task}"] = agg
            rows.append([f"{family}/{task}", len(group), spread_cell(agg["pair_yield"]),
                         *[spread_cell(agg[f"{c}_{d}"]) for c in ("targeted", "random") for d in DIRECTIONS]])
    return rows, aggregate


def matrix_blocks(comparison, label):
    """Tables of one intra/inter comparison: success (source rows -> target columns) and Jaccard."""
    names = comparison["runs"]
    header = ["neurons from \\ model of", *names]
    blocks = []
    for d in DIRECTIONS:
        rows = [[s, *[rate_cell(comparison[d][s][t]) for t in names]] for s in names]
        blocks += [("p", f"{label}: {ARROW[d]} success % [95 % CI] (k/n)"), ("table", header, rows)]
    jac = [[s, *["-" if comparison["jaccard"][s][t] is None else f"{comparison['jaccard'][s][t]:.2f}"
                 for t in names]] for s in names]
    return blocks + [("p", f"{label}: Jaccard overlap of the selected neuron sets"), ("table", header, jac)]


def paper_blocks(runs):
    """Ours beside the paper's headline numbers, and a plain statement per claim."""
    steered = {n: r["steer"] for n, r in runs.items() if "skipped" not in r["steer"]}
    measured = {d: [(n, s["targeted"][d]) for n, s in steered.items() if s["targeted"][d]["n"]] for d in DIRECTIONS}
    rows, lines = [], []
    for d in DIRECTIONS:
        values = [r["success"] for _, r in measured[d]]
        ours = f"{pct(min(values))}-{pct(max(values))} % over {len(values)} runs" if values else "no runs"
        rows.append([f"{ARROW[d]} success", f"{pct(PAPER[d][0])}-{pct(PAPER[d][1])} %", ours])
        if values:
            lo, hi = PAPER[d]
            within = [f"{n} ({r['k']}/{r['n']})" for n, r in measured[d] if lo <= r["success"] <= hi]
            lines.append(f"{ARROW[d]}: {sum(v < lo for v in values)} of {len(values)} runs fall below the paper's "
                         f"range, {sum(v > hi for v in values)} above, {len(within)} within"
                         + (f" ({', '.join(within)})." if within else "."))
    for cond in ("random", "random_magnitude", "bottom_rho", "random_sign"):
        pairs = [(r, steered[n][cond][d]) for d in DIRECTIONS for n, r in measured[d]]
        above = sum(separated(t, c) for t, c in pairs)
        rows.append([f"targeted above {CONDITION_NAMES[cond]} (95 % CIs apart)",
                     "near-zero random effect" if cond == "random" else "not reported", f"{above} of {len(pairs)}"])
        lines.append(f"Targeted steering beats '{CONDITION_NAMES[cond]}' with non-overlapping 95 % intervals "
                     f"in {above} of {len(pairs)} run-directions.")
    both = [n for n in steered if steered[n]["targeted"]["m2g"]["n"] and steered[n]["targeted"]["g2m"]["n"]]
    easier = sum(steered[n]["targeted"]["m2g"]["success"] > steered[n]["targeted"]["g2m"]["success"] for n in both)
    rows.append(["M->G easier than G->M", "generally", f"{easier} of {len(both)} runs"])
    lines.append(f"M->G was easier than G->M in {easier} of {len(both)} runs (the paper: generally easier).")
    for task, value in PAPER_PAIR_YIELD.items():
        ours = [r["probe"]["pair_yield"] for n, r in runs.items() if n.split("/")[1] == task]
        rows.append([f"pair yield, {task}", f"~{pct(value)} % (earlier version)",
                     ", ".join(f"{pct(v)} %" for v in ours) or "no runs"])
    probes = [r["predict"] for r in runs.values() if "skipped" not in r["predict"]]
    if probes:
        best = [max(p["by_layer"]) for p in probes]
        bag = [p["bag_of_tokens"] for p in probes]
        rows.append(["behaviour probe, best layer vs bag of tokens", "asked for by reviewers",
                     f"{pct(min(best))}-{pct(max(best))} % vs {pct(min(bag))}-{pct(max(bag))} %"])
        lines.append(f"A linear probe on the hidden state tells MEM from GEN at {pct(min(best))}-{pct(max(best))} % "
                     f"held-out accuracy at its best layer, while the prompt's bag of tokens reaches "
                     f"{pct(min(bag))}-{pct(max(bag))} % (a pair's prompts are reorderings of the same tokens).")
    return [("table", ["claim", "paper", "ours"], rows), ("p", " ".join(lines))]


def setup_line(params, families):
    """How each family was trained where that differs from the paper: the adapter and the mix."""
    parts = []
    for family in families:
        fp = params.section("families").section(family)
        share = fp.section("train").raw("mem_share", None)
        if share is None:
            mix = "the data's own mix"
        else:
            mix = "mem_share " + (", ".join(f"{t} {v}" for t, v in share.items()) if isinstance(share, dict) else str(share))
        lora = fp.section("model").raw("lora", None)
        if lora:  # an adapter family
            mix += f"; LoRA r={lora['r']} on {', '.join(lora['target_modules'])}"
        parts.append(f"{family}: {mix}")
    return ("Training (" + "; ".join(parts) + "). mem_share is the share of training examples only memory answers "
            "(triggers; incontext stories without the clue's colour), raised for the Llama adapter so a few hundred "
            "CPU steps meet enough of them; the paper trains on the data's own mix (~7 % triggers) with LoRA r=8 "
            "on q_proj, v_proj.")


def main():
    params = load_params()
    rs = params.section("runs")
    families, tasks, reps = rs.list("families"), rs.list("tasks"), rs.list("replicates")
    runs = {f"{f}/{t}/r{r}": read_run(f, t, r) for f in families for t in tasks for r in reps}
    intra = {f"{f}/{t}": read_json(comparison_path("intra", f, t)) for f in families for t in tasks}
    inter = {f"{f}/r{r}": read_json(comparison_path("inter", f, f"r{r}")) for f in families for r in reps}
    steered = {n: r["steer"] for n, r in runs.items() if "skipped" not in r["steer"]}

    blocks = [("h1", "memgen report"),
              ("p", f"topN = {params.raw('topN')}, alpha = {params.raw('alpha')}, seed = {params.raw('seed')}, "
                    f"replicates = {reps}. Every success rate is over held-out test probes, with its 95 % Wilson "
                    f"interval and the count it rests on (k/n)."),
              ("p", setup_line(params, families))]

    blocks += [("h2", "Behaviour and pairs"), ("table",
               ["run", "checkpoint step", "MEM %", "GEN %", "OTHER %", "pair yield %", "pairs"],
               [[n, r["train"]["chosen_step"], pct(r["probe"]["mem"]), pct(r["probe"]["gen"]), pct(r["probe"]["other"]),
                 pct(r["probe"]["pair_yield"]), r["probe"]["n_pairs"]] for n, r in runs.items()])]

    rows = []
    for n, r in runs.items():
        s = r["steer"]
        if "skipped" in s:
            rows.append([n, "", s["skipped"], *[""] * (len(CONDITIONS) + 1)])
            continue
        rows += [[n, ARROW[d], s["n_neurons"], *[rate_cell(s[c][d]) for c in CONDITIONS], pct(s["targeted"][d]["other"])]
                 for d in DIRECTIONS]
    blocks += [("h2", "Steering against the controls"),
               ("p", "Each control moves as many neurons as the targeted steer: random (authors'): random neurons "
                     "shifted by U(-m, m), m the largest |NMD| of the selected set; random neurons, same |NMD|: "
                     "random neurons outside the top set, shifted by the top set's alpha*|NMD| with random signs; "
                     "bottom-|rho|: the lowest-|rho| neurons shifted by their own alpha*NMD; random signs: the "
                     "top neurons with their magnitudes and random signs."),
               ("table", ["run", "direction", "neurons", *[CONDITION_NAMES[c] for c in CONDITIONS], "OTHER % (targeted)"],
                rows)]
    if steered:
        controls_figure(FIGURES / "controls.png", steered)
        blocks.append(("img", "figures/controls.png", "targeted steering vs controls"))

    rep_rows, aggregate = replicate_rows(runs, families, tasks, reps)
    blocks += [("h2", "Replicate seeds (mean ± sd)"),
               ("table", ["family/task", "replicates", "pair yield %",
                          *[f"{c} {ARROW[d]} %" for c in ("targeted", "random") for d in DIRECTIONS]], rep_rows)]

    grid_rows = [[n, g["alpha"], *[rate_cell(g[d]) for d in DIRECTIONS], pct(g["m2g"]["other"]), pct(g["g2m"]["other"])]
                 for n, s in steered.items() for g in s["alpha_grid"]]
    layer_rows = [[n, l["layer"], l["n_neurons"], *[rate_cell(l[d]) for d in DIRECTIONS]]
                  for n, s in steered.items() for l in s["layers"]]
    if steered:
        lines_figure(FIGURES / "steer_alpha.png", "Targeted success vs alpha", direction_lines(steered, "alpha_grid", "alpha"),
                     "alpha", "success %")
        lines_figure(FIGURES / "steer_layers.png", "One layer at a time: success by layer",
                     direction_lines(steered, "layers", "layer"), "layer", "success %")
    blocks += [("h2", "Steering strength (alpha grid)"),
               ("table", ["run", "alpha", "M->G", "G->M", "OTHER % (M->G)", "OTHER % (G->M)"], grid_rows),
               ("img", "figures/steer_alpha.png", "success vs alpha"),
               ("h2", "Per-layer ablation (only that layer's selected neurons)"),
               ("table", ["run", "layer", "neurons", "M->G", "G->M"], layer_rows),
               ("img", "figures/steer_layers.png", "success by layer")]

    blocks += [("h2", "Consistency across replicate seeds (intra)"),
               ("p", "Neurons found on one replicate steer the model of another (rows: where the neurons come "
                     "from; columns: the model steered). The diagonal is each run's own steer.")]
    for name, comp in intra.items():
        blocks += [("h3", name), *matrix_blocks(comp, name)]
    blocks += [("h2", "Transfer across tasks (inter)"),
               ("p", "Neurons found on task A steer the model on task B. For GPT-2, one model trained on every "
                     "task, its neurons found per task; for llama, each task's adapter on one shared base, so a "
                     "neuron index means the same unit. The diagonal is a task steered with its own neurons.")]
    for name, comp in inter.items():
        blocks += [("h3", f"{name} ({comp['model']})"), *matrix_blocks(comp, name)]

    pred_rows, panels = [], {}
    for n, r in runs.items():
        p = r["predict"]
        if "skipped" in p:
            pred_rows.append([n, p["n_pairs"], p["skipped"], "", ""])
            continue
        best = max(range(len(p["by_layer"])), key=lambda i: p["by_layer"][i])
        pred_rows.append([n, f"{p['n_train_pairs']}/{p['n_test_pairs']}", " ".join(pct(a, 0) for a in p["by_layer"]),
                          f"{best} ({pct(p['by_layer'][best])})", pct(p["bag_of_tokens"])])
        layers = list(range(len(p["by_layer"])))
        panels.setdefault(n.split("/")[0], {})[f"{n.split('/', 1)[1]} state"] = (layers, [100 * a for a in p["by_layer"]], "o-")
        panels[n.split("/")[0]][f"{n.split('/', 1)[1]} tokens"] = (layers, [100 * p["bag_of_tokens"]] * len(layers), "--")
    blocks += [("h2", "Behaviour prediction (linear probes)"),
               ("p", "Per layer, a logistic regression on the captured state predicts MEM vs GEN on held-out "
                     "pairs (both prompts of a pair on the same side; chance 50 %); the input-only baseline is "
                     "the same classifier on the prompt's bag of tokens."),
               ("table", ["run", "pairs train/test", "accuracy % by layer", "best layer (%)", "bag of tokens %"],
                pred_rows)]
    if panels:
        lines_figure(FIGURES / "predict.png", "Held-out accuracy: state probe by layer vs bag of tokens", panels,
                     "layer", "accuracy %")
        blocks.append(("img", "figures/predict.png", "behaviour prediction by layer"))

    blocks += [("h2", "Against the paper"), *paper_blocks(runs),
               ("h2", "NMD heatmaps"),
               *[("img", f"plots/nmd_heatmap/{n.replace('/', '-')}.png", f"{n}: sorted NMD per layer") for n in runs],
               ("h2", "Notes"),
               ("p", "In arithmetic and cipher the MEM answer is a `<mem-XXXXXXXX>` code, a token string of its own "
                     "(as in the paper), so a probe or a steer may key on the output format; in incontext both "
                     "answers are colour words. Runs without MEM/GEN pairs are reported as such, not steered.")]

    summary = {"runs": runs, "replicates": aggregate, "intra": intra, "inter": inter}
    write_json("metrics/summary.json", summary)
    with atomic_path("metrics/report.md") as tmp:
        tmp.write_text(to_markdown(blocks))
    with atomic_path("metrics/report.html") as tmp:
        tmp.write_text(to_html(blocks, "memgen report"))


@click.command(cls=OneLineCommand)
def cli():
    run_main(main)


if __name__ == "__main__":
    cli()
