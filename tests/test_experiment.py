"""The experiment engine on a toy model whose answers are known: arms, the rule, nulls that can fail,
the shared ladder, and the typed results records."""
from dataclasses import asdict, dataclass

import pytest
import torch

from memgen.errors import UserError
from memgen.experiment import (AUTHORS_BASELINE, NEURON_NULLS, RANDOM_DIRECTION, RANDOM_NEURONS, RANDOM_SIGN, Arm,
                               Bench, Null, Plan, can_fail, measure, null_summary, search)
from memgen.results import SCHEMA_VERSION, SteerRecord, read_record, write_record
from memgen.steering import ADAPTIVE, TO_GEN, TO_MEM, Intervention
from memgen.tasks import GEN, MEM, OTHER

WIDTH, LAYERS = 8, 3
LADDER = [1, 2, 4, 8]


class ToySteerer:
    """A model of probes whose output is read off the shift: each probe listens to one neuron and answers
    GEN once the shift there falls to -threshold, MEM once it reaches +threshold, else its own answer.
    Decodes are counted, per alpha."""

    def __init__(self):
        self.calls = []

    def decode(self, probes, shifts=None, site=None, schedule="every_step", desc=None, share=None, accumulate=False):
        flat = {}
        for layer, (idx, values) in (shifts or {}).items():
            flat.update({layer * WIDTH + int(i): float(v) for i, v in zip(idx, values)})
        self.calls.append(len(probes))
        return [("G" if flat.get(p["neuron"], 0.0) <= -p["threshold"] else
                 "M" if flat.get(p["neuron"], 0.0) >= p["threshold"] else p["own"]) for p in probes]

    def labels(self, outputs, probes):
        return [{"M": MEM, "G": GEN}.get(o, OTHER) for o in outputs]


def probes(n, neuron=WIDTH + 2, own="M", start=0):
    """n probes listening to one neuron (layer 1, unit 2), thresholds 1.5, 2.5, ... (each moves at its own alpha)."""
    return [{"prompt": f"p{start + i}", "mem": "M", "gen": "G", "own": own, "neuron": neuron, "threshold": 1.5 + i}
            for i in range(n)]


@dataclass(frozen=True)
class Strength:
    alpha: object

    def as_dict(self):
        return asdict(self)


def one_neuron_plan(alpha, neuron=WIDTH + 2, size=1.0):
    """Neuron `neuron` moved by -size x alpha (towards GEN)."""
    return Plan(Intervention(torch.tensor([neuron]), torch.tensor([-size]), WIDTH), "resid_post", "prompt_end", alpha,
                LAYERS)


def bench(items):
    return Bench("toy", ToySteerer(), items, LADDER)


def test_a_toy_arm_runs_through_the_engine_end_to_end():
    # the whole arm: candidates, a plan, and a null (the same shift on a neuron no probe listens to)
    elsewhere = Null("elsewhere", lambda plan, g: one_neuron_plan(plan.alpha, neuron=0))
    arm = Arm("toy", (Strength(1.0), Strength(2.0), Strength(ADAPTIVE)), lambda c, d: one_neuron_plan(c.alpha),
              (elsewhere,))
    val, test = bench(probes(4)), bench(probes(6))
    (chosen, row, within), rows = search(val, arm, TO_GEN, max_other=0.1)
    assert [r["success"] for r in rows] == [0.0, 0.25, 1.0] and chosen == Strength(ADAPTIVE) and within
    found, got = measure(test, val, arm, arm.plan(chosen, TO_GEN), TO_GEN, 5, seed=0)
    assert found["toy"]["success"] == 1.0  # thresholds 1.5..6.5: every one is met on the ladder up to 8
    assert found["toy"]["specificity"] == 1.0 and found["toy"]["changed"] == 6
    null = found["elsewhere"]
    assert null["draws"] == 5 and null["success"] == 0.0 and null["p_empirical"] == pytest.approx(1 / 6)
    assert null["can_fail"] is False  # another neuron of a model that listens to one: it cannot fail here
    assert got.labels == [GEN] * 6 and got.moved_at == [2, 4, 4, 8, 8, 8]


def test_a_null_that_moves_nothing_is_flagged_and_one_that_moves_is_not():
    still = Null("still", lambda plan, g: Plan(Intervention(torch.tensor([0]), torch.tensor([0.0]), WIDTH),
                                               plan.site, plan.schedule, plan.alpha, LAYERS))
    same = Null("same", lambda plan, g: plan)
    val = bench(probes(3))
    plan = one_neuron_plan(ADAPTIVE)
    assert can_fail(val, plan, still, TO_GEN, 20, torch.Generator()) is False
    assert can_fail(val, plan, same, TO_GEN, 20, torch.Generator()) is True
    assert can_fail(val, plan, same, TO_MEM, 20, torch.Generator()) is None  # no probe starts from GEN


def test_the_random_neuron_null_keeps_the_count_per_layer_and_the_sizes():
    idx = torch.tensor([0, 3, WIDTH + 1, 2 * WIDTH + 4, 2 * WIDTH + 5, 2 * WIDTH + 7])
    per_alpha = torch.tensor([0.5, -1.0, 2.0, -3.0, 4.0, 0.25])
    plan = Plan(Intervention(idx, per_alpha, WIDTH), "resid_post", "every_step", 3.0, LAYERS)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        drawn = RANDOM_NEURONS.draw(plan, g).intervention
        assert torch.bincount(drawn.idx // WIDTH, minlength=LAYERS).tolist() == [2, 1, 3]
        assert len(set(drawn.idx.tolist())) == len(idx)  # no unit drawn twice
        for layer in range(LAYERS):
            mine, theirs = idx // WIDTH == layer, drawn.idx // WIDTH == layer
            assert sorted(drawn.per_alpha[theirs].abs().tolist()) == sorted(per_alpha[mine].abs().tolist())
    dense = RANDOM_DIRECTION.draw(plan, g).intervention
    assert len(dense.idx) == LAYERS * WIDTH  # every unit of the three layers the plan touches
    for layer in range(LAYERS):
        assert dense.per_alpha[dense.idx // WIDTH == layer].norm() == pytest.approx(per_alpha[idx // WIDTH == layer].norm())
    signs = RANDOM_SIGN.draw(plan, g).intervention
    assert torch.equal(signs.idx, idx) and torch.equal(signs.per_alpha.abs(), per_alpha.abs())
    authors = AUTHORS_BASELINE.draw(plan, g)
    assert len(authors.intervention.idx) == 6 and authors.intervention.per_alpha.abs().max() <= 4.0
    assert authors.alpha == 3.0  # scaled by alpha, like every arm
    full = Plan(Intervention(torch.arange(WIDTH), torch.arange(WIDTH) + 1.0, WIDTH), "resid_post", "every_step", 1.0,
                LAYERS)
    drawn = RANDOM_NEURONS.draw(full, g).intervention  # a whole layer: its sizes shuffled over it, random signs
    assert sorted(drawn.idx.tolist()) == list(range(WIDTH)) and sorted(drawn.per_alpha.abs().tolist()) == list(range(1, 9))
    assert not torch.equal(drawn.per_alpha, full.intervention.per_alpha)


def test_under_the_adaptive_dose_every_null_climbs_the_ladder_and_stops_where_its_output_changes():
    # a null that is the plan itself (a shift of -1 per alpha on the probes' neuron) moves probe i, threshold 1.5 + i,
    # at the first alpha of the ladder at or above it, exactly as the arm does
    flip = Null("flip", lambda plan, g: plan)
    test = bench(probes(4))
    found, _ = measure(test, None, Arm("a", (), None, (flip,)), one_neuron_plan(ADAPTIVE), TO_GEN, 1, seed=0)
    outs, moved_at = test.outcome(one_neuron_plan(ADAPTIVE), TO_GEN)
    assert moved_at == [2, 4, 4, 8]  # the smallest ladder alpha >= 1.5, 2.5, 3.5, 4.5
    assert found["flip"]["success_draws"] == [1.0]
    # the decodes follow the stopping rule: 4 probes at alpha 1, 4 at 2, 3 at 4, 1 at 8 (per arm and per draw)
    steerer = ToySteerer()
    Bench("count", steerer, probes(4), LADDER).outcome(one_neuron_plan(ADAPTIVE), TO_GEN)
    assert steerer.calls == [4, 4, 4, 3, 1]  # the unsteered decode, then the ladder


def test_the_null_summary_counts_draws_at_or_above_the_targeted_rate():
    targeted = {"n": 10, "k": 6, "success": 0.6}
    draws = [{"n": 10, "k": k, "success": k / 10, "route_k": k, "route": k / 10, "other": 0.0, "unchanged": 1 - k / 10,
              "changed": k} for k in (0, 1, 6, 7, 2)]
    s = null_summary(targeted, draws)
    assert s["p_empirical"] == pytest.approx((1 + 2) / 6)  # 6 and 7 are at or above 6
    assert s["success"] == pytest.approx(0.32) and s["draws"] == 5 and s["specificity"] == 1.0
    assert s["p95"] <= 0.7 and s["ci95"][0] >= 0.0


def test_a_results_record_round_trips_and_an_older_schema_is_refused(tmp_path):
    record = SteerRecord(n_pairs=3, chance={"resid_post": {"p95": 0.4}}, paper_point={"alpha": 3}, rule="r",
                         searched=True, draws=20, test={"paper": {"m2g": {"targeted": {"n": 1}}}})
    path = tmp_path / "steer.json"
    write_record(path, record)
    assert read_record(path, SteerRecord) == record
    old = path.read_text().replace(f'"version": {SCHEMA_VERSION}', '"version": 1')
    path.write_text(old)
    with pytest.raises(UserError, match=rf"steer.json: results of steer v1, this code reads steer v{SCHEMA_VERSION} \(re-run"):
        read_record(path, SteerRecord)
    path.write_text('{"n_pairs": 0}')
    with pytest.raises(UserError, match="results of no schema"):
        read_record(path, SteerRecord)


def test_nulls_of_a_neuron_set_are_the_matched_three_and_the_authors_baseline():
    assert [n.name for n in NEURON_NULLS] == ["random_neurons", "random_direction", "random_sign", "authors_baseline"]
    assert [n.counted for n in NEURON_NULLS] == [True, True, True, False]
