"""Ground truth: the ranking and steering against memories planted in known units."""
from ...experiment import NULL_NAMES
from .. import prose
from ..document import table
from ..figures import lines_figure
from ..format import ARROW, null_cell, p_cell, pct, rate_cell


SCORE_NAMES = {"abs_rho": "|rho| (the paper's)", "abs_nmd": "|NMD|", "nmd_over_sd": "|NMD| / spread",
               "discriminant": "probe weight", "grad_x_act": "gradient x activation",
               "attribution": "attribution patching"}


PLANTED_ARMS = {"oracle": "planted units (oracle)", "ranked": "top k by |rho|"}


def planted_section(ctx):
    if not ctx.planted:
        return []
    loc_rows, steer_rows, panels = [], [], {}
    for name, run in ctx.planted.items():
        loc, plant = run["localize"], run["plant"]
        rule, taught = plant["rule"], plant["plant"]
        head = [name, f"{loc['n_planted']} of {loc['n_units']} (layers {', '.join(map(str, plant['layers']))})",
                f"{pct(rule['gen'])} / {pct(taught['mem'])} / {pct(taught['other'])}", loc["n_pairs"]]
        c = loc["chance"]
        if "skipped" in loc:
            loc_rows.append(head + ["-"] * (len(SCORE_NAMES) + 2))
            panels[name] = "no MEM/GEN pairs on the planted model"
            continue
        loc_rows.append(head + [f"{pct(sc['recall'], 0)} % / {sc['auroc']:.3f}" for sc in
                                (loc["scores"][key] for key in SCORE_NAMES)] +
                        [f"{pct(c['recall'], 1)} % (p95 {pct(c['recall_p95'], 0)} %) / "
                         f"{c['auroc_band'][0]:.2f}-{c['auroc_band'][1]:.2f}",
                         f"{', '.join(map(str, loc['scores']['abs_rho']['top_k_by_layer']))} "
                         f"(planted: {', '.join(map(str, loc['planted_by_layer']))})"])
        ks = sorted(int(k) for k in loc["chance_at"])
        panels[name] = {**{SCORE_NAMES[key]: (ks, [100 * loc["scores"][key]["recall_at"][str(k)] for k in ks],
                                              f"C{i}o-") for i, key in enumerate(SCORE_NAMES)},
                        "random ranking": (ks, [100 * loc["chance_at"][str(k)] for k in ks], "k--")}
        for d, arms in loc["steering"].items():
            points = ", ".join(f"{arm} {p['schedule']} alpha {p['alpha']}" for arm, p in arms["point"].items())
            steer_rows.append([name, ARROW[d], *[rate_cell(arms[a]) for a in PLANTED_ARMS],
                               null_cell(arms.get("random_neurons")), *[pct(arms[a]["other"]) for a in PLANTED_ARMS],
                               p_cell(arms["ranked"]["p_oracle_greater"]), points])
    lines_figure(ctx.figures / "planted_recall.png", "Planted units found in the top k, by score (k log scale)", panels,
                 "k (units taken from the top)", "% of planted units found", log_x=True)
    return [("h2", "Ground truth: memories planted in known units"), ("p", prose.PLANTED),
            table(["planted run", "planted units", "rule model GEN / planted MEM / OTHER (val %)", "pairs",
                   *[f"{v}: recall / AUROC" for v in SCORE_NAMES.values()], "random ranking: recall / AUROC 95 %",
                   "top k by |rho|, units per layer"],
                  loc_rows),
            ("img", "figures/planted_recall.png", "planted units found in the top k"),
            ("p", prose.PLANTED_STEER),
            table(["planted run", "direction", *[f"{v}: success" for v in PLANTED_ARMS.values()],
                   f"{NULL_NAMES['random_neurons']} (beside the ranked units): success, p ranked > it",
                   *[f"{v}: OTHER %" for v in PLANTED_ARMS.values()], "p oracle > ranked",
                   "val-chosen schedule and alpha"], steer_rows, merged=1)]
