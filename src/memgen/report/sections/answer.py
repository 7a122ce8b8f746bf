"""The report's first screen and its verdicts, and ours set against the paper's claims."""
from ...experiment import NULL_NAMES
from ...steering import DIRECTIONS, TARGETED
from .. import paper, prose
from ..compute import COMPARISON_SETTINGS, SETTINGS, claim_summary
from ..document import table
from ..format import (ARROW, beats_every_null, counted_nulls, flagged_nulls, null_cell, p_cell, pct, rate_cell,
                      strongest_null)
from ..headline import strongest_site
from .steering import controls_figure_block


def answer_section(ctx):
    """Our operating point, after the paper's method: per run and direction, did steering work, against what."""
    rows = [[n, chance_level(run), ARROW[d], *answer_cells(ctx, n, d)] for n, run in ctx.runs.items() for d in DIRECTIONS]
    columns = ["run", "max |rho| vs null p95 (site)", "direction", "chosen point: success % [95 % CI] (k/n)",
               "paper's setting", "paper's range %", "strongest null at the chosen point (mean of draws)",
               "p (empirical) vs it", "verdict"]
    return [("h2", "Our operating point (not the paper's method)"), ("p", prose.OURS), ("p", tally(ctx)),
            table(columns, rows, merged=2),
            controls_figure_block(ctx, "chosen")]


def chance_level(run):
    if not run["probe"]["n_pairs"]:
        return "no pairs"
    site, s = strongest_site(run["neurons"])
    if s["null_p95"] is None:
        return f"{s['max_abs_rho']:.3f} ({site}), no null"
    return f"{s['max_abs_rho']:.3f} vs {s['null_p95']:.3f} ({site})" + (
        "" if s["max_abs_rho"] > s["null_p95"] else ": at chance")


def answer_cells(ctx, name, d):
    """Success at both settings, the paper's range, the strongest control and the verdict of one run-direction."""
    span = "-".join(pct(x) for x in paper.SUCCESS[d])
    steer = ctx.runs[name]["steer"]
    if "skipped" in steer or not steer["test"]["chosen"][d][TARGETED]["n"]:
        return ["-", "-", span, "-", "-", verdict(ctx, name, d)]
    chosen = steer["test"]["chosen"][d]
    strongest = strongest_null(chosen)
    if strongest is None:
        return [rate_cell(chosen[TARGETED]), rate_cell(steer["test"]["paper"][d][TARGETED]), span,
                "no null can fail here", "-", verdict(ctx, name, d)]
    top, summary = strongest
    return [rate_cell(chosen[TARGETED]), rate_cell(steer["test"]["paper"][d][TARGETED]), span,
            f"{NULL_NAMES[top]}: {null_cell(summary)}", p_cell(summary["p_empirical"]), verdict(ctx, name, d)]


def verdict(ctx, name, d):
    """One line: the success at the chosen point against the controls, and the paper's setting against the
    paper's range; or why there is nothing to judge."""
    steer = ctx.runs[name]["steer"]
    if "skipped" in steer:
        return "no MEM/GEN pairs: not steered"
    chosen, paper_tests = (steer["test"][setting][d] for setting in SETTINGS)
    if not chosen[TARGETED]["n"]:
        return "no test probe shows the source behaviour: not measured"
    if not ctx.above_chance(name):
        return "ranking at chance: not evidence"
    at_paper = f"the paper's setting {pct(paper_tests[TARGETED]['success'], 0)} %: {in_range(paper_tests, d)}"
    if not steer["searched"]:  # the chosen point is the paper's setting
        return f"not searched; {at_paper}, {against_controls(paper_tests)}"
    return f"chosen {pct(chosen[TARGETED]['success'], 0)} %: {against_controls(chosen)}, {in_range(chosen, d)}; {at_paper}"


def in_range(tests, d):
    lo, hi = paper.SUCCESS[d]
    success = tests[TARGETED]["success"]
    return f"{'below' if success < lo else 'above' if success > hi else 'within'} the paper's range"


def against_controls(tests):
    flagged = flagged_nulls(tests)
    note = f" ({', '.join(NULL_NAMES[f] for f in flagged)}: cannot fail here, not counted)" if flagged else ""
    if not counted_nulls(tests):
        return "no null can fail here: no evidence" + note
    return ("above every null (empirical p < 0.05)" if beats_every_null(tests) else "not above every null") + note


def tally(ctx):
    """The report's second line: how many runs count as evidence and what they show."""
    evidence = [s for n, s in ctx.steered.items() if ctx.above_chance(n)]
    measured = [(d, s["test"]) for s in evidence for d in DIRECTIONS if s["test"]["chosen"][d][TARGETED]["n"]]
    above = sum(beats_every_null(t["chosen"][d]) for d, t in measured)
    within = sum(paper.SUCCESS[d][0] <= t["paper"][d][TARGETED]["success"] <= paper.SUCCESS[d][1] for d, t in measured)
    return (f"{len(evidence)} of {len(ctx.runs)} runs rank neurons above chance (the others are reported, not "
            f"counted). Of their {len(measured)} run-directions, {above} beat every matched null at the chosen point "
            f"(empirical p < 0.05 over the draws) and {within} reach the paper's range at the paper's setting.")


def against_paper_section(ctx):
    """Ours beside the paper's headline numbers, counting only runs whose ranking beats chance."""
    evidence = {n: s for n, s in ctx.steered.items() if ctx.above_chance(n)}
    left_out = [n for n in ctx.steered if n not in evidence]
    rows, lines = [], []
    for setting in SETTINGS:
        for d in DIRECTIONS:
            measured = [(n, s["test"][setting][d][TARGETED]) for n, s in evidence.items()
                        if s["test"][setting][d][TARGETED]["n"]]
            values = [r["success"] for _, r in measured]
            lo, hi = paper.SUCCESS[d]
            ours = f"{pct(min(values))}-{pct(max(values))} % over {len(values)} runs" if values else "no runs"
            rows.append([f"{ARROW[d]} success, {SETTINGS[setting]}", f"{pct(lo)}-{pct(hi)} %", ours])
            if values:
                within = [f"{n} ({r['k']}/{r['n']})" for n, r in measured if lo <= r["success"] <= hi]
                lines.append(f"{ARROW[d]} at {SETTINGS[setting]}: {sum(v < lo for v in values)} of {len(values)} runs "
                             f"fall below the paper's range, {sum(v > hi for v in values)} above, {len(within)} within"
                             + (f" ({', '.join(within)})." if within else "."))
        pairs = [(s["test"][setting][d]) for s in evidence.values() for d in DIRECTIONS
                 if s["test"][setting][d][TARGETED]["n"]]
        above = sum(beats_every_null(t) for t in pairs)
        rows.append([f"targeted above every matched null (empirical p < 0.05), {SETTINGS[setting]}",
                     paper.CLAIMS["random"], f"{above} of {len(pairs)} run-directions"])
        both = [s["test"][setting] for s in evidence.values() if all(s["test"][setting][d][TARGETED]["n"]
                                                                    for d in DIRECTIONS)]
        easier = sum(t["m2g"][TARGETED]["success"] > t["g2m"][TARGETED]["success"] for t in both)
        rows.append([f"M->G easier than G->M, {SETTINGS[setting]}", paper.CLAIMS["m2g_easier"], f"{easier} of {len(both)} runs"])
    for task, value in paper.PAIR_YIELD.items():
        ours = [r["probe"]["pair_yield"] for n, r in ctx.runs.items() if n.split("/")[1] == task]
        rows.append([f"pair yield, {task}", f"~{pct(value)} % (earlier version)", ", ".join(f"{pct(v)} %" for v in ours)
                     or "no runs"])
    rows += claim_rows(ctx)
    note = (f"Left out as not evidence (selection at chance): {', '.join(left_out)}." if left_out else
            "Every steered run's selection beats chance.")
    return [("h2", "Against the paper"), table(["claim", "paper", "ours"], rows), ("p", " ".join(lines)),
            ("p", note)]


def claim_rows(ctx):
    """The consistency claims: per family, its off-diagonal transfer pooled over its comparisons (intra: across
    seeds, inter: across tasks) at each setting and direction. A family trained from scratch is a negative
    control for both (its replicates share no neuron identity)."""
    rows = []
    for kind, what in (("intra", "neurons steer other seeds' models"), ("inter", "neurons steer other tasks' models")):
        comparisons = getattr(ctx, kind)
        for family in ctx.families:
            for setting in COMPARISON_SETTINGS:
                for d in DIRECTIONS:
                    c = claim_summary(comparisons, family, setting, d)
                    ours = "no evaluable cell" if c is None else (
                        f"mean transfer ratio {c['mean_ratio']:.2f} over {c['evaluable']} evaluable of {c['cells']} "
                        f"off-diagonal cells, {c['above_control']} above the matched random control")
                    rows.append([f"{kind}: {what}, {family}, {COMPARISON_SETTINGS[setting]}, {ARROW[d]}",
                                 paper.CLAIMS[kind], ours])
    return rows
