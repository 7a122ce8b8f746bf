"""metrics/headline.json: the few numbers per run that `dvc metrics diff` shows, so that a diff between
two experiments stays short. Every other number lives in the run's own metric files."""
from ..methods import METHODS
from ..sites import SITE_NAMES
from ..steering import DIRECTIONS, TARGETED
from .compute import COMPARISON_SETTINGS, transfer_summary

DIGITS = 4  # enough to tell runs apart, few enough that a diff reads at a glance


def strongest_site(neurons):
    """(site, its chance stats): the site whose largest |rho| stands furthest above its null's p95.

    Not simply the largest |rho|: by the margin, the pair shown is above chance exactly when the run counts
    as evidence (some neuron at a steered site beats its null). Of the sites every family maps (not the
    hidden units of the planted runs' site); sites without a null come last."""
    def margin(item):
        s = item[1]
        return (s["null_p95"] is not None, s["max_abs_rho"] - (s["null_p95"] or 0.0))
    return max(((site, s) for site, s in neurons["sites"].items() if site in SITE_NAMES), key=margin)


def headline(runs, planted=None, across_seeds=None, comparisons=None):
    """{run: {pairs, max_abs_rho, null_p95, m2g: {...}, g2m: {...}}} from {run: {file stem: its JSON}}:
    21 numbers a run (each direction's by_method: the methods side by side), null where the run has no
    pairs or a direction no test probe; per planted run {pairs, recall, auroc, m2g: {oracle, ranked},
    g2m: {...}} (planted_headline); per family/task the across-seed estimates (seed_headline); per
    comparison ("intra/<family>/<task>", "inter/<family>/r<k>") its off-diagonal transfer (comparison_headline)."""
    return {**{name: run_headline(run) for name, run in runs.items()},
            **{name: planted_headline(run["localize"]) for name, run in (planted or {}).items()},
            **{name: seed_headline(agg) for name, agg in (across_seeds or {}).items()},
            **{name: comparison_headline(comp) for name, comp in (comparisons or {}).items()}}


def comparison_headline(comparison):
    """Per setting and direction: the mean transfer ratio of the evaluable off-diagonal cells, and how many of
    them beat the target's matched random control (report.sections.consistency.transfer_summary)."""
    def cell(setting, d):
        t = transfer_summary(comparison, setting, d)
        return {"ratio": rounded(t["mean_ratio"]), "evaluable": t["evaluable"], "above_control": t["above_control"]}
    return {setting: {d: cell(setting, d) for d in DIRECTIONS} for setting in COMPARISON_SETTINGS}


def seed_headline(aggregate):
    """Over a family/task's seeds (report.compute.replicate_aggregates): per direction the mean test success
    at the chosen point with its cluster-bootstrap interval, at the paper's setting and at the point the authors'
    grid chose (null where not measured)."""
    def direction(d):
        chosen, grid = aggregate[f"chosen_{d}"], aggregate.get(f"paper_grid_{d}", {})
        return {"chosen": rounded(chosen["mean"]), "chosen_lo": rounded(chosen["lo"]),
                "chosen_hi": rounded(chosen["hi"]), "paper": rounded(aggregate[f"paper_{d}"]["mean"]),
                "paper_grid": rounded(grid.get("mean"))}
    return {"seeds": aggregate["chosen_m2g"]["n_seeds"], **{d: direction(d) for d in DIRECTIONS}}


def planted_headline(localize):
    """The ranking (|rho|) against the planted units: recall in the top k and AUROC; steering success on
    test of the planted units (oracle) and the ranked ones. Null where nothing was measured."""
    rho = localize.get("scores", {}).get("abs_rho", {})
    steering = localize.get("steering", {})
    return {"pairs": localize["n_pairs"], "recall": rounded(rho.get("recall")), "auroc": rounded(rho.get("auroc")),
            **{d: {arm: rounded(steering[d][arm]["success"]) if d in steering else None for arm in ("oracle", "ranked")}
               for d in DIRECTIONS}}


def run_headline(run):
    pairs = run["probe"]["n_pairs"]
    site = strongest_site(run["neurons"])[1] if pairs else {"max_abs_rho": None, "null_p95": None}
    steer, methods = run["steer"], run.get("methods", {})  # methods: on runs.side_replicates only
    return {"pairs": pairs, "max_abs_rho": rounded(site["max_abs_rho"]), "null_p95": rounded(site["null_p95"]),
            **{d: {**direction_headline(steer, d), "by_method": method_headline(methods, d)} for d in DIRECTIONS}}


def method_headline(methods, direction):
    """Each steering method's test success at its own val-chosen point (null where not measured)."""
    tests = methods.get("test", {}).get(direction, {})
    return {m: rounded(tests[m]["success"]) if m in tests else None for m in METHODS}


def direction_headline(steer, direction):
    """Targeted success at the chosen point with its 95 % interval, at the paper's setting, and the
    chosen point's OTHER share; null when the run was not steered."""
    if "skipped" in steer:
        return dict.fromkeys(("chosen", "chosen_lo", "chosen_hi", "paper", "other"))
    chosen = steer["test"]["chosen"][direction][TARGETED]
    return {"chosen": rounded(chosen["success"]), "chosen_lo": rounded(chosen["ci95"][0]),
            "chosen_hi": rounded(chosen["ci95"][1]),
            "paper": rounded(steer["test"]["paper"][direction][TARGETED]["success"]),
            "other": rounded(chosen["other"])}


def rounded(x):
    return None if x is None else round(x, DIGITS)
