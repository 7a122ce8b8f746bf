"""The report on a small hand-made context: the headline numbers, the answer table's verdicts, and the
two renderings (Markdown linking its figures, HTML embedding them)."""
import copy
import json
import re

import pytest

from memgen.experiment import null_summary
from memgen.report import Context, record_dict
from memgen.report.document import table, to_html, to_markdown
from memgen.report.headline import headline
from memgen.methods import NAMES as METHOD_NAMES
from memgen.report.sections import answer_section, controls_section, methods_section
from memgen.report.sections.scope import scope_section
from memgen.results import MethodsRecord, SteerRecord
from memgen.stats import wilson_interval
from memgen.steering import DIRECTIONS, TARGETED

NULLS = ("random_neurons", "random_direction", "random_sign", "authors_baseline")


def rates(k, n, other=0.0, **extra):
    return {"n": n, "k": k, "success": k / n if n else None, "ci95": list(wilson_interval(k, n)), "other": other,
            "route_k": k, "route": k / n if n else None, "unchanged": 1 - k / n if n else None, "changed": k,
            "specificity": 1.0 if k else None, **extra}


def null_of(targeted, draw_ks, can_fail=True, counted=True):
    """A null's summary over draws with these successes, as the engine writes it."""
    n = targeted["n"]
    return {**null_summary(targeted, [rates(k, n) for k in draw_ks]), "counted": counted, "can_fail": can_fail}


def by_group(k, n, size=2):
    """k hits over n prompts as the steer stage tallies them per probe group (groups of `size`, hits first)."""
    sizes = [min(size, n - start) for start in range(0, n, size)]
    hits = [min(s, max(0, k - start)) for s, start in zip(sizes, range(0, n, size))]
    return [[h, s] for h, s in zip(hits, sizes)]


def measured_at(targeted, null_ks, flagged=()):
    """One setting's measurements: the targeted steer and its nulls (draws' successes), every direction alike."""
    targeted = {**targeted, "by_group": by_group(targeted["k"], targeted["n"])}
    return {d: {TARGETED: targeted, **{c: null_of(targeted, null_ks[c], c not in flagged, c != "authors_baseline")
                                       for c in NULLS}} for d in DIRECTIONS}


def steer_record(pairs, searched=True, above_chance=True, test=None, skipped=None):
    point = {"schedule": "every_step", "site": "mlp_in", "vector": "nmd", "topN": 0.05, "alpha": 3}
    return record_dict(SteerRecord(n_pairs=pairs, chance={}, paper_point=point, rule="r", skipped=skipped,
                                   searched=searched, above_chance=above_chance, draws=20, test=test or {}))


def run(pairs, sites, steer, methods=None):
    methods = methods or record_dict(MethodsRecord(n_pairs=pairs, site="resid_post", rule="r",
                                                   skipped="no MEM/GEN pairs were found on the probes"))
    return {"probe": {"n_pairs": pairs, "pair_yield": pairs / 1000}, "neurons": {"sites": sites}, "steer": steer,
            "methods": methods}


def methods_measured(ks, n):
    """The methods stage's test results, every direction alike: {arm: k} over n probes (None: not chosen)."""
    point = {"schedule": "every_step", "site": "mlp_in", "vector": "nmd", "topN": 0.05, "alpha": 3}
    arms = {arm: rates(k, n if k is not None else 0, label=f"layer 1, alpha {k}", p_above_nmd=0.5, p_below_nmd=0.5)
            if k is not None else {"candidate": None, **rates(0, 0)} for arm, k in ks.items()}
    for arm, r in arms.items():
        if arm != "paper" and r["n"]:
            r["nulls"] = {"random_direction": null_of(r, [3] * 19 + [95])}  # one draw of 20 above 91
    arms["paper"]["point"] = point
    return record_dict(MethodsRecord(n_pairs=50, site="resid_post", rule="r", draws=20, test={d: arms for d in DIRECTIONS},
                                     budget=dict.fromkeys(("nmd", "mean_difference", "linear_probe", "patch"), 24)))


def site(max_abs_rho, null_p95):
    return {"max_abs_rho": max_abs_rho, "null_p95": null_p95, "n_above": int(max_abs_rho > null_p95)}


QUIET = dict.fromkeys(NULLS, [1] * 20)


@pytest.fixture
def runs():
    return {
        # mlp_in holds the largest |rho|, resid_post the largest margin over its null
        "f/strong/r0": run(50, {"mlp_in": site(0.61234567, 0.6), "resid_post": site(0.5, 0.2)}, steer_record(
            50, test={"chosen": measured_at(rates(80, 100, other=0.0512345), {**QUIET, "random_sign": [2] * 20}),
                      "paper": measured_at(rates(70, 100), {**QUIET, "random_direction": [80] * 20},
                                           flagged=("random_sign",))}),
            methods_measured({"paper": 70, "nmd": 60, "mean_difference": 90, "linear_probe": 91, "patch": None}, 100)),
        "f/chance/r0": run(40, {"mlp_in": site(0.02, 0.03), "resid_post": site(0.01, 0.03)}, steer_record(
            40, searched=False, above_chance=False,
            test={s: measured_at(rates(1, 100), QUIET) for s in ("chosen", "paper")}),
            methods_measured({"paper": 1, "nmd": 2, "mean_difference": 3, "linear_probe": 4, "patch": 5}, 100)),
        "f/empty/r0": run(0, {"mlp_in": site(0.0, 0.0), "resid_post": site(0.0, 0.0)},
                          steer_record(0, False, False, skipped="no MEM/GEN pairs were found on the probes")),
    }


def test_headline_numbers(runs):
    h = headline(runs)
    strong = h["f/strong/r0"]
    assert (strong["pairs"], strong["max_abs_rho"], strong["null_p95"]) == (50, 0.5, 0.2)  # the widest margin
    lo, hi = wilson_interval(80, 100)
    assert strong["m2g"] == {"chosen": 0.8, "chosen_lo": round(lo, 4), "chosen_hi": round(hi, 4), "paper": 0.7,
                             "other": 0.0512, "by_method": {"nmd": 0.6, "mean_difference": 0.9, "linear_probe": 0.91,
                                                            "patch": None}}
    assert h["f/chance/r0"]["max_abs_rho"] == 0.02 and h["f/chance/r0"]["g2m"]["chosen"] == 0.01
    empty = h["f/empty/r0"]
    assert empty["pairs"] == 0 and empty["max_abs_rho"] is None
    assert empty["g2m"] == {**dict.fromkeys(("chosen", "chosen_lo", "chosen_hi", "paper", "other")),
                            "by_method": dict.fromkeys(("nmd", "mean_difference", "linear_probe", "patch"))}

    assert set(empty["m2g"]["by_method"].values()) == {None}
    numbers = re.findall(r": (-?[0-9.]+|null)[,\n]", json.dumps(h, indent=1) + "\n")
    assert len(numbers) == 3 * 21  # the default run's 3 runs stay near 60 numbers
    assert all(len(x.split(".")[-1]) <= 4 for x in numbers if "." in x)


def test_the_answer_table_leads_with_a_verdict_per_run(runs, tmp_path):
    ctx = Context(None, ["f"], ["strong", "chance", "empty"], [0], runs, {}, {}, {}, tmp_path)
    blocks = answer_section(ctx)
    assert [b[0] for b in blocks] == ["h2", "p", "p", "table", "img"]
    assert blocks[1][1].startswith("What differs from the paper's method")
    assert blocks[2][1].startswith("1 of 3 runs rank neurons above chance")
    frame = blocks[3][1].set_index(["run", "direction"])
    strong = frame.loc[("f/strong/r0", "M->G")]
    assert strong["chosen point: success % [95 % CI] (k/n)"].startswith("80.0 [")
    assert strong["strongest null at the chosen point (mean of draws)"].startswith(
        "same neurons, random signs: 2.0 [2.0, 2.0], p 0.048")
    assert strong["p (empirical) vs it"] == "0.048"  # 1 / 21: no draw of 20 at or above 80 %
    assert strong["verdict"] == ("chosen 80 %: above every null (empirical p < 0.05), within the paper's range; "
                                 "the paper's setting 70 %: within the paper's range")
    assert frame.loc[("f/strong/r0", "G->M"), "verdict"].endswith("the paper's setting 70 %: above the paper's range")
    assert frame.loc[("f/strong/r0", "M->G"), "max |rho| vs null p95 (site)"] == "0.500 vs 0.200 (resid_post)"
    assert frame.loc[("f/chance/r0", "M->G"), "verdict"] == "ranking at chance: not evidence"
    assert frame.loc[("f/chance/r0", "M->G"), "max |rho| vs null p95 (site)"] == "0.020 vs 0.030 (mlp_in): at chance"
    assert frame.loc[("f/empty/r0", "G->M"), "verdict"] == "no MEM/GEN pairs: not steered"
    assert (tmp_path / "controls_chosen.png").read_bytes()[:4] == b"\x89PNG"


def test_a_null_that_cannot_fail_is_flagged_and_not_counted(runs, tmp_path):
    ctx = Context(None, ["f"], ["strong", "chance", "empty"], [0], runs, {}, {}, {}, tmp_path)
    frame = controls_section(ctx, "paper")[2][1].set_index(["run", "direction"])
    strong = frame.loc[("f/strong/r0", "M->G")]
    assert strong["same neurons, random signs"].endswith("; cannot fail here")
    assert strong["above every counted null"] == "no"  # the random direction's draws reach 80 %, above 70 %
    assert strong["random direction, same layers and norm"] == "80.0 [80.0, 80.0], p 1"
    runs["f/strong/r0"]["steer"]["test"]["paper"]["m2g"]["random_direction"]["can_fail"] = False
    runs["f/strong/r0"]["steer"]["test"]["paper"]["m2g"]["random_neurons"]["can_fail"] = False
    frame = controls_section(ctx, "paper")[2][1].set_index(["run", "direction"])
    assert frame.loc[("f/strong/r0", "M->G"), "above every counted null"] == "no null can fail here"


def test_the_methods_table_and_figure(runs, tmp_path):
    ctx = Context(None, ["f"], ["strong", "chance", "empty"], [0], runs, {}, {}, {}, tmp_path)
    blocks = methods_section(ctx)
    assert [b[0] for b in blocks] == ["h2", "p", "img", "table"] and blocks[1][1].endswith("(the search budget): nmd 24, mean_difference 24, linear_probe 24, patch 24.")
    frame = blocks[3][1].set_index(["run", "direction", "method"])
    assert len(frame) == 2 * 2 * 5  # the runs with pairs, both directions, the paper's setting and 4 methods
    strong = lambda arm: frame.loc[("f/strong/r0", "M->G", METHOD_NAMES[arm])]  # noqa: E731
    column = "its random direction: success, p method > it"
    assert strong("linear_probe")["test success"].startswith("91.0 [") and strong("linear_probe")[column].endswith("p 0.095")
    assert strong("nmd")[column].endswith("p 0.095") and strong("paper")[column] == "-"  # 1 of 20 draws at or above
    assert strong("paper")["val-chosen point"] == "every_step, mlp_in, nmd, topN 0.05, alpha 3"
    assert strong("patch")["val-chosen point"] == "not chosen: no val probe" and strong("patch")["test success"] == "-"
    assert frame.loc[("f/chance/r0", "G->M", METHOD_NAMES["nmd"]), "note"] == "ranking at chance"
    assert (tmp_path / "methods.png").read_bytes()[:4] == b"\x89PNG"
    # each method searched again within a scope: its own column, marked where it beats its random direction
    methods = runs["f/strong/r0"]["methods"]
    methods["scopes"] = {"before_readout": {d: copy.deepcopy(methods["test"][d]) for d in ("m2g", "g2m")}}
    methods["scopes"]["before_readout"]["m2g"]["nmd"]["nulls"]["random_direction"]["p_empirical"] = 0.01
    blocks = methods_section(ctx)
    assert [b[0] for b in blocks[-2:]] == ["p", "table"]
    scoped = blocks[-1][1].set_index(["run", "direction", "method"])
    assert list(scoped.columns) == ["all layers: test success", "before the readout: test success"]
    assert len(scoped) == 2 * 4  # the run with scopes, both directions, the 4 methods (not the paper's setting)
    nmd = scoped.loc[("f/strong/r0", "M->G", METHOD_NAMES["nmd"])]
    assert nmd.iloc[1].endswith("(beats its random direction)") and not nmd.iloc[0].endswith("direction)")


def test_html_stands_alone_and_markdown_links(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG fake")
    blocks = [("h1", "title"), ("p", "a <b> & `c`"),
              table(["run", "direction", "value"], [["r0", "M->G", "1"], ["r0", "G->M", "2"], ["r1", "M->G", "3"]],
                    merged=1),
              ("details", "long table", [table(["x"], [["a\nb"]])]),
              ("img", "figures/a.png", "caption")]
    page = to_html(blocks, "t", tmp_path)
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page and "figures/a.png" not in page
    assert "<p>a &lt;b&gt; &amp; c</p>" in page
    assert '<td rowspan="2">r0</td>' in page and page.count("<td>r0</td>") == 0 and "<td>r1</td>" in page
    assert "<details><summary>long table</summary>" in page
    md = to_markdown(blocks)
    assert "![caption](figures/a.png)" in md
    assert "| r0 | M->G | 1 |\n|  | G->M | 2 |\n| r1 | M->G | 3 |" in md
    assert "**long table**\n\n| x |" in md and "| a ⏎ b |" in md


def test_the_summary_is_computed_apart_from_the_sections(runs, tmp_path):
    from memgen.report.compute import summary
    from memgen.report.sections import SECTIONS

    ctx = Context(None, ["f"], ["strong", "chance", "empty"], [0], runs, {}, {}, {}, tmp_path)
    before = summary(ctx)  # no section has run
    assert before["replicates"]["f/strong"]["chosen_m2g"]["mean"] == 0.8
    assert before["replicates"]["f/empty"]["chosen_m2g"]["mean"] is None  # nothing steered there
    assert before["evidence"] == {"f/strong/r0": True, "f/chance/r0": False, "f/empty/r0": False}
    for section in reversed(SECTIONS[-3:]):
        section(ctx)
    assert summary(ctx) == before


def test_the_scope_table_sets_each_measurement_beside_its_before_readout_twin(runs, tmp_path):
    """Without scoped measurements there is no section; with them, one row per run, direction and setting, each
    scope (before the readout, the MLP's hidden units) beside its own strongest null, and one sentence per run on
    where the effect lives."""
    ctx = Context(None, ["f"], ["strong", "chance", "empty"], [0], runs, {}, {}, {}, tmp_path)
    assert scope_section(ctx) == []
    test = runs["f/strong/r0"]["steer"]["test"]
    test["chosen_before_readout"] = measured_at(rates(10, 100), {**QUIET, "random_direction": [12] * 20})
    test["paper_before_readout"] = measured_at(rates(5, 100), QUIET)
    test["chosen_mlp_hidden"] = measured_at(rates(30, 100), QUIET)
    test["paper_mlp_hidden"] = measured_at(rates(3, 100), QUIET)
    blocks = scope_section(ctx)
    assert [b[0] for b in blocks] == ["h2", "p", "table", "p"]
    frame = blocks[2][1].set_index(["run", "direction", "setting"])
    chosen = frame.loc[("f/strong/r0", "M->G", "ours, chosen on val")]
    assert chosen["the MLP's hidden units: success"].startswith("30.0 [")
    assert chosen["all layers: success"].startswith("80.0 [") and chosen["all layers: success"].endswith(
        "(80/100) (beats every null)")
    assert chosen["before the readout: success"].endswith("(10/100)")  # the random direction's draws reach 12 %
    assert chosen.iloc[3] == "12.0, p 1"
    assert frame.loc[("f/strong/r0", "G->M", "the paper's setting")]["before the readout: success"].endswith(
        "(beats every null)")
    assert blocks[3][1] == ("f/strong/r0, at the chosen point: M->G 80.0 % with every layer, 10.0 % before the "
                            "readout, 30.0 % at the MLP's hidden units; G->M 80.0 % with every layer, 10.0 % before the "
                            "readout, 30.0 % at the MLP's hidden units.")


def test_across_seeds_each_seed_counts_once_and_the_interval_resamples_groups(tmp_path):
    """Three seeds of one task: the across-seed row gives each seed's value and their mean, inside an interval
    wider than the pooled prompts' Wilson interval (seeds disagree); the headline carries the same mean."""
    from memgen.report.compute import replicate_aggregates
    from memgen.report.sections.consistency import replicate_section

    def seeded(k):
        return run(50, {"resid_post": site(0.5, 0.2)}, steer_record(
            50, test={s: measured_at(rates(k, 100), QUIET) for s in ("chosen", "paper")}))
    runs = {f"f/t/r{r}": seeded(k) for r, k in zip(range(3), (20, 50, 80))}
    ctx = Context(None, ["f"], ["t"], [0, 1, 2], runs, {}, {}, {}, tmp_path)
    est = replicate_aggregates(ctx)["f/t"]["chosen_m2g"]
    assert est["values"] == [0.2, 0.5, 0.8] and est["mean"] == pytest.approx(0.5) and est["n_seeds"] == 3
    pooled = wilson_interval(150, 300)
    assert est["lo"] < pooled[0] and est["hi"] > pooled[1] and est["spread"] == pytest.approx(0.3)
    text = to_markdown(replicate_section(ctx))
    assert "| f/t | chosen | 50.0 [" in text and "(20.0, 50.0, 80.0)" in text and "3 seed(s)" in text
    h = headline(runs, across_seeds=replicate_aggregates(ctx))["f/t"]
    assert h["seeds"] == 3 and h["m2g"]["chosen"] == 0.5 and h["m2g"]["chosen_lo"] == round(est["lo"], 4)


def test_a_transfer_cell_on_few_prompts_is_not_evaluable_and_jaccard_has_its_chance(tmp_path):
    from memgen.report.compute import transfer_summary
    from memgen.report.sections.consistency import matrix_blocks
    from memgen.stats import ratio_bootstrap
    skipped = {"skipped": "b found no MEM/GEN pairs"}
    cells = {"m2g": {"a": {"a": rates(20, 40), "b": rates(3, 12)}, "b": {"a": skipped, "b": skipped}},
             "g2m": {s: {t: rates(15 if s == t else 12, 30) for t in "ab"} for s in "ab"}}
    for d in cells:  # hits per probe group, as the compare stage tallies them
        for row in cells[d].values():
            for cell in row.values():
                if "k" in cell:
                    cell["by_group"] = by_group(cell["k"], cell["n"])
    ratio = {d: {s: {t: ratio_bootstrap(cells[d][s][t]["by_group"], cells[d][t][t]["by_group"])
                     if "by_group" in cells[d][s][t] and "by_group" in cells[d][t][t] else None for t in "ab"}
                 for s in "ab"} for d in cells}
    control = {"m2g": {"a": null_of(rates(20, 40), [2] * 10)},
               "g2m": {t: null_of(rates(15, 30), [1] * 9 + [14]) for t in "ab"}}
    jaccard = {d: {"a": {"a": 1.0, "b": None}, "b": {"a": None, "b": None}} for d in cells}
    chance = {d: {"a": {"a": 0.0123, "b": None}, "b": {"a": None, "b": None}} for d in cells}
    comparison = {"runs": ["a", "b"], "paper": {**cells, "ratio": ratio, "control": control, "jaccard": jaccard,
                                                "jaccard_chance": chance}}
    text = to_markdown(matrix_blocks(comparison, "paper", "x"))
    assert "not evaluable (n=12)" in text and "25.0 [" not in text  # 3 of 12: no rate
    assert "50.0 [" in text and "40.0 [" in text  # 40 and 30 prompts: rates
    assert "1.00 (0.012)" in text  # Jaccard beside what two random sets of the same sizes share
    assert "0.80 [" in text  # g2m: 12 of b's own 15
    assert "5.0 (p95" in text  # the control's mean over its draws and its 95th percentile
    g2m = transfer_summary(comparison, "paper", "g2m")
    assert g2m["evaluable"] == 2 and g2m["mean_ratio"] == pytest.approx(0.8)
    m2g = transfer_summary(comparison, "paper", "m2g")
    assert m2g["cells"] == 2 and m2g["evaluable"] == 0  # 12 prompts, and a source without pairs
    control["g2m"]["b"] = null_of(rates(15, 30), [15] * 10)  # b's own steer no better than random ones
    g2m = transfer_summary(comparison, "paper", "g2m")
    assert g2m["evaluable"] == 1 and g2m["ratios"] == [pytest.approx(0.8)]  # a -> b is no longer read



def test_the_transfer_table_pools_each_scope_apart(tmp_path):
    """Two replicates whose neurons transfer whole at every layer and not at all before the readout: the scope table
    gives each scope its own pooled ratio and count above the control; comparisons without scopes add no table."""
    from memgen.report.format import ARROW
    from memgen.report.sections.consistency import scope_blocks
    from memgen.stats import ratio_bootstrap
    reps = ("r0", "r1")

    def setting(k_other):  # each column's own steer moves 20 of 40, another replicate's neurons k_other
        cells = {d: {s: {t: {**rates(20 if s == t else k_other, 40), "by_group": by_group(20 if s == t else k_other, 40)}
                         for t in reps} for s in reps} for d in DIRECTIONS}
        ratio = {d: {s: {t: ratio_bootstrap(cells[d][s][t]["by_group"], cells[d][t][t]["by_group"]) for t in reps}
                     for s in reps} for d in DIRECTIONS}
        return {**cells, "ratio": ratio, "control": {d: {t: null_of(cells[d][t][t], [2] * 10) for t in reps}
                                                     for d in DIRECTIONS}}
    comp = {"family": "f", "runs": list(reps), "paper": setting(20), "chosen": setting(20)}
    ctx = Context(None, ["f"], ["t"], [0, 1], {}, {}, {"f/t": comp}, {}, tmp_path)
    assert scope_blocks(ctx, "intra") == []
    comp["scopes"] = {"before_readout": {"paper": setting(0), "chosen": setting(0)}}
    frame = scope_blocks(ctx, "intra")[1][1].set_index(["setting", "direction"])
    row = frame.loc[("the paper's setting", ARROW["m2g"])]
    assert row["all layers"] == "1.00 (2 of 2; 2 above control)"
    assert row["before the readout"] == "0.00 (2 of 2; 0 above control)"


def test_the_report_leads_with_the_papers_method_and_a_verdict_per_claim(tmp_path):
    """Three seeds of a task whose ranking beats chance and three at chance: the first table gives the paper's method
    at the authors' grid and at its single setting over seeds; the verdicts judge only the task above chance (its
    M->G mean below the paper's range, G->M within it: the asymmetry reversed), intra from a comparison whose cells
    transfer whole, inter without a comparison."""
    from memgen.params import Params
    from memgen.report.sections.paper_method import paper_method_section
    from memgen.stats import ratio_bootstrap

    def seeded(m2g, g2m, above=True):
        def setting(k_m2g, k_g2m):
            return {d: measured_at(rates(k, 100), QUIET)[d] for d, k in (("m2g", k_m2g), ("g2m", k_g2m))}
        test = {"paper_grid": setting(m2g, g2m), "paper": setting(1, 2), "chosen": setting(90, 90)}
        return run(50, {"resid_post": site(0.5 if above else 0.01, 0.2)}, steer_record(
            50, searched=above, above_chance=above, test=test))
    runs = {**{f"f/strong/r{r}": seeded(k, 40 + 10 * r) for r, k in zip(range(3), (10, 12, 14))},
            **{f"f/weak/r{r}": seeded(1, 1, above=False) for r in range(3)}}
    cell = {**rates(20, 40), "by_group": by_group(20, 40)}
    cells = {d: {s: {t: cell for t in ("r0", "r1")} for s in ("r0", "r1")} for d in DIRECTIONS}
    intra = {"f/strong": {"family": "f", "runs": ["r0", "r1"], "paper": {
        **cells, "ratio": {d: {s: {t: ratio_bootstrap(cell["by_group"], cell["by_group"]) for t in ("r0", "r1")}
                               for s in ("r0", "r1")} for d in DIRECTIONS},
        "control": {d: {t: null_of(cell, [2] * 10) for t in ("r0", "r1")} for d in DIRECTIONS}}}}
    params = Params({"steer": {"paper": {"topN": 0.05, "alpha": 3}, "paper_grid": {"topN": [0.05, 0.1], "alpha": [1, 3, 5]}}})
    ctx = Context(params, ["f"], ["strong", "weak"], [0, 1, 2], runs, {}, intra, {}, tmp_path)
    blocks = paper_method_section(ctx)
    assert [b[0] for b in blocks][:3] == ["h1", "p", "h2"] and blocks[2][1] == "The paper's method"
    first = blocks[4][1].set_index(["family/task", "the paper's method at", "layers"])
    grid = first.loc[("f/strong", "the authors' grid (topN [0.05, 0.1] x alpha [1, 3, 5]), chosen on val", "all layers")]
    assert grid.iloc[0].startswith("12.0 [") and grid.iloc[0].endswith("(10.0, 12.0, 14.0)")
    assert first.loc[("f/strong", "the paper's setting (topN 0.05, alpha 3)", "all layers")].iloc[1].startswith("2.0 [")
    assert blocks[5][1].endswith("most seeds: f/strong):")  # the task at chance is shown, not judged
    verdicts = blocks[6][1].set_index("claim")["verdict"]
    assert verdicts["M->G success, the authors' grid"] == "not reproduced: 1 of 1 below the paper's range, 0 above, 0 overlapping it"
    assert verdicts["G->M success, the authors' grid"] == "reproduced"
    assert verdicts["targeted above every matched null (empirical p < 0.05), the authors' grid"] == "holds"
    assert verdicts["M->G easier than G->M, the authors' grid"] == "reversed"
    assert verdicts["intra: neurons steer other seeds' models, the paper's setting"] == "holds"
    assert verdicts["inter: neurons steer other tasks' models, the paper's setting"] == "not evaluable"


def test_the_size_sweep_section_reads_the_sweep_file_or_says_it_was_not_run(runs, tmp_path):
    from memgen.report.sections.size import size_section

    ctx = Context(None, ["f"], ["strong"], [0], runs, {}, {}, {}, tmp_path)
    assert size_section(ctx) == []  # no sweep file
    ctx.sweeps = {"size": {"command": "python experiments/size_sweep.py", "sizes": []}}
    assert size_section(ctx)[1] == ("p", "Not run yet: `python experiments/size_sweep.py` writes metrics/sweeps/size.json.")

    def size(n_layer, n_embd, k):
        test = {s: {d: rates(k, 40) for d in DIRECTIONS} for s in ("paper", "paper_grid", "paper_grid_before_readout")}
        return {"n_layer": n_layer, "n_embd": n_embd, "n_head": 2, "parameters": 1000 * n_layer * n_embd, "pairs": 40,
                "site": "mlp_in", "max_abs_rho": 0.3, "null_p95": 0.1, "test": test, "seconds": 90.0}
    ctx.sweeps["size"] = {"command": "c", "family": "gpt2", "task": "cipher", "rep": 0, "changes": "x", "seconds": 600,
                          "sizes": [size(2, 64, 4), size(4, 128, 20)]}
    blocks = size_section(ctx)
    frame = blocks[2][1].set_index("layers x width")
    assert frame.loc["4 x 128", "authors' grid: M->G %"].startswith("50.0 [") and frame.loc["2 x 64", "pairs"] == 40
    assert frame.loc["2 x 64", "parameters"] == "128,000" and frame.loc["2 x 64", "minutes"] == "1.5"
    assert frame.loc["2 x 64", "authors' grid before the readout: G->M %"].startswith("10.0 [")
    assert "in 10 min" in blocks[1][1] and (tmp_path / "size.png").read_bytes()[:4] == b"\x89PNG"


def test_the_localizers_table_averages_the_planted_draws_beside_chang_et_al(tmp_path):
    from memgen.report.sections.planted import SCORE_NAMES, localizer_rows

    def draw(recall, auroc, mem_kept):
        scores = {key: {"recall": recall, "auroc": auroc} for key in SCORE_NAMES}
        arms = {**{key: {"mem_kept": mem_kept, "gen_kept": 1.0} for key in SCORE_NAMES},
                "planted": {"mem_kept": 0.0, "gen_kept": 0.9}}
        return {"localize": {"scores": scores, "chance": {"recall": 0.01}, "deletion": {
            "arms": arms, "random": {"mem_kept": [1.0, 0.8], "gen_kept": [1.0, 1.0]}}}}
    rows = {r[0]: r for r in localizer_rows({"a": draw(0.25, 0.6, 0.5), "b": draw(0.75, 0.8, 0.7)})}
    slim = rows["slimming"]
    assert slim[1].startswith("50.0 [") and slim[1].endswith("] (25, 75)")  # mean, t interval, per draw
    assert slim[2].startswith("0.700 [") and slim[3] == "60.0" and slim[4] == "100.0" and slim[5] == 48.1
    assert rows["|rho| (the paper's)"][5] == "-"  # Chang et al. have no such method
    assert rows["the planted units (knocked out)"][3:5] == ["0.0", "90.0"]
    assert rows["random (ranking; k random units knocked out)"][3] == "90.0"


def test_what_each_score_found_is_steered_beside_the_oracle_over_the_draws():
    from memgen.report.sections.planted import SCORE_NAMES, found_rows

    def draw(oracle, score, n):
        rates = lambda s: {"n": n, "k": round(s * n), "success": s, "other": 0.1}  # noqa: E731
        cell = {"n": n, "power_10_points": 0.5, "oracle": rates(oracle), "random_neurons": rates(0.0),
                **{key: {**rates(score), "p_oracle_greater": 0.01} for key in SCORE_NAMES}}
        return {"found": {setting: {d: cell for d in ("m2g", "g2m")} for setting in ("paper", "oracle_point")}}
    rows = found_rows([draw(0.9, 0.2, 100), draw(0.7, 0.4, 50)])
    assert len(rows) == 2 * 2 * (len(SCORE_NAMES) + 2)
    oracle = rows[0]
    assert oracle[:3] == ["the paper's setting", "M->G", "planted units (oracle)"]
    assert oracle[3].startswith("80.0 [") and oracle[3].endswith("] (90, 70)") and oracle[4] == "10.0"
    assert oracle[6] == "100 (50 %), 50 (50 %)" and oracle[5] == "-"
    assert rows[1][3].startswith("30.0 [0.0, ") and rows[1][5] == "0.01, 0.01"  # clipped at 0; p per draw


def test_a_side_runs_planted_draws_join_the_report_marked_and_checked():
    from memgen.errors import UserError
    from memgen.report import side_planted
    from memgen.report.sections.planted import by_task
    from memgen.results import SCHEMA_VERSION

    def files(pairs):
        localize = {"schema": {"kind": "localize", "version": SCHEMA_VERSION}, "n_pairs": pairs, "site": "mlp_hidden",
                    "n_planted": 32, "n_units": 2048, "chance": {}, "chance_at": {}, "ranking_above_chance": False,
                    "null": {}}
        return {"plant": {"n_units": 32, "rule": {}, "plant": {}}, "probe": {"n_pairs": pairs}, "localize": localize}
    sweep = {"command": "dvc exp run -S 'plant.tasks=[arithmetic]' localize",
             "runs": {"gpt2/planted/r0/arithmetic": files(120), "gpt2/planted/r0/cipher": files(5)}}
    default = {"gpt2/planted/r0/cipher": files(102)}
    side = side_planted({"planted_arithmetic": sweep, "size": {"sizes": []}}, default)
    assert list(side) == ["gpt2/planted/r0/arithmetic"]  # a run the default makes is the default's
    assert side["gpt2/planted/r0/arithmetic"]["side"] == sweep["command"]
    assert side["gpt2/planted/r0/arithmetic"]["localize"]["n_pairs"] == 120
    assert list(by_task({**default, **side})) == ["cipher", "arithmetic"]
    sweep["runs"]["gpt2/planted/r0/arithmetic"]["localize"]["schema"]["version"] = -1
    with pytest.raises(UserError, match="planted_arithmetic.json: results of localize v-1"):
        side_planted({"planted_arithmetic": sweep}, default)


def test_the_planting_variants_table_has_the_rule_model_each_variant_and_the_random_move():
    from memgen.report.sections.planted import variants_section

    def variant(mem, accuracy, track):
        return {"variant": {}, "chosen": {"step": 300, "mem": mem, "gen": 0.1, "other": 0.05, "n_pairs": 4},
                "rule_accuracy_after_content": 0.7, "track": [{"step": 25, "mem": 0.0, "rule_accuracy": r} for r in track],
                "after": {"rule_accuracy": accuracy, "missed": 10, "missed_codes": 1, "missed_one_off": 8}}
    sweep = {"command": "python experiments/planting_variants.py --task arithmetic --draw 0", "draw": 0,
             "rule_model": {"rule_accuracy": 0.66, "missed": 5, "missed_codes": 0, "missed_one_off": 4},
             "variants": {"as run": variant(0.85, 0.5, [0.3, 0.55]), "least active units": variant(0.9, 0.52, [0.4])},
             "random_move_rule_accuracy": [0.5, 0.6]}
    blocks = variants_section({"planting_variants_arithmetic": sweep, "planted_arithmetic": {}})
    assert blocks[0] == ("h3", "arithmetic: the planting done several ways from one rule model (draw 0, side run)")
    assert sweep["command"] in blocks[1][1]
    rows = blocks[2][1].values.tolist()
    assert [r[0] for r in rows[:3]] == ["the rule model (no planting)", "as run", "least active units"]
    assert rows[0][4] == "66.0" and rows[0][5] == "0 / 4 of 5"
    assert rows[1][1:] == ["85.0 / 5.0 (step 300)", "70.0", "30.0 / 55.0", "50.0", "1 / 8 of 10"]
    assert rows[3][4] == "55.0 (range 50.0-60.0)" and "2 draws" in rows[3][0]
    assert variants_section({"planted_arithmetic": {}}) == []


def test_a_planting_is_called_strong_only_when_it_meets_every_part_of_the_bar():
    from memgen.report.sections.planted import strength
    kept = {"rule_model": 0.99, "planted": 0.96}
    assert strength(0.85, kept, 150) == "yes"
    assert strength(0.79, kept, 150) == "no: val MEM under 80 %"
    assert strength(0.85, {"rule_model": 0.99, "planted": 0.93}, 100) == "no: rule accuracy down more than 5 points"
    assert strength(0.9, None, 99) == "no: rule accuracy not measured; under 100 pairs"
