"""The report on a small hand-made context: the headline numbers."""
import json
import re

import pytest

from memgen.report.headline import headline
from memgen.stats import wilson_interval
from memgen.steering import CONTROLS, DIRECTIONS, TARGETED


def rates(k, n, other=0.0, **extra):
    return {"n": n, "k": k, "success": k / n if n else None, "ci95": list(wilson_interval(k, n)), "other": other,
            **extra}


def measured_at(targeted, control_k):
    """One setting's measurements: the targeted steer and four controls, every direction alike."""
    n = targeted["n"]
    return {d: {TARGETED: targeted, **{c: rates(control_k[c], n) for c in CONTROLS}} for d in DIRECTIONS}


def run(pairs, sites, steer):
    return {"probe": {"n_pairs": pairs}, "neurons": {"sites": sites}, "steer": steer}


def site(max_abs_rho, null_p95):
    return {"max_abs_rho": max_abs_rho, "null_p95": null_p95, "n_above": int(max_abs_rho > null_p95)}


QUIET = dict.fromkeys(CONTROLS, 1)


@pytest.fixture
def runs():
    return {
        # mlp_in holds the largest |rho|, resid_post the largest margin over its null
        "f/strong/r0": run(50, {"mlp_in": site(0.61234567, 0.6), "resid_post": site(0.5, 0.2)}, {
            "searched": True, "above_chance": True,
            "test": {"chosen": measured_at(rates(80, 100, other=0.0512345), {**QUIET, "random": 2}),
                     "paper": measured_at(rates(70, 100), QUIET)}}),
        "f/chance/r0": run(40, {"mlp_in": site(0.02, 0.03), "resid_post": site(0.01, 0.03)}, {
            "searched": False, "above_chance": False,
            "test": {s: measured_at(rates(1, 100), QUIET) for s in ("chosen", "paper")}}),
        "f/empty/r0": run(0, {"mlp_in": site(0.0, 0.0), "resid_post": site(0.0, 0.0)},
                          {"skipped": "no MEM/GEN pairs were found on the probes"}),
    }


def test_headline_numbers(runs):
    h = headline(runs)
    strong = h["f/strong/r0"]
    assert (strong["pairs"], strong["max_abs_rho"], strong["null_p95"]) == (50, 0.5, 0.2)  # the widest margin
    lo, hi = wilson_interval(80, 100)
    assert strong["m2g"] == {"chosen": 0.8, "chosen_lo": round(lo, 4), "chosen_hi": round(hi, 4), "paper": 0.7,
                             "other": 0.0512}
    assert h["f/chance/r0"]["max_abs_rho"] == 0.02 and h["f/chance/r0"]["g2m"]["chosen"] == 0.01
    empty = h["f/empty/r0"]
    assert empty["pairs"] == 0 and empty["max_abs_rho"] is None and set(empty["g2m"].values()) == {None}

    numbers = re.findall(r": (-?[0-9.]+|null)[,\n]", json.dumps(h, indent=1) + "\n")
    assert len(numbers) == 3 * 13  # the default run's 3 runs stay under ~40 numbers
    assert all(len(x.split(".")[-1]) <= 4 for x in numbers if "." in x)
