"""Intervals, the controls beside a targeted steer, and the behaviour probes: each does what it claims."""
import statistics

import pytest
import torch
from scipy.stats import binomtest

from memgen.evaluate import rates
from memgen.predict import bag_of_tokens, probe_layers, split_pairs
from memgen.stats import mean_and_spread, wilson_interval
from memgen.steering import (TO_GEN, TO_MEM, control_shifts, flat_indices, layer_shifts, select_bottom, select_top,
                             targeted_shifts)
from memgen.tasks import GEN, MEM, OTHER
from memgen.tasks.base import TOKEN_PATTERN


@pytest.mark.parametrize("k,n,expected", [(5, 10, (0.2366, 0.7634)), (0, 10, (0.0, 0.2775)), (10, 10, (0.7225, 1.0)),
                                          (1, 57, (0.0031, 0.0929))])
def test_wilson_matches_textbook_values(k, n, expected):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(expected[0], abs=1e-4) and hi == pytest.approx(expected[1], abs=1e-4)


@pytest.mark.parametrize("k,n", [(0, 1), (3, 7), (11, 71), (228, 229), (50, 300)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)


def test_wilson_without_data_and_rates():
    assert wilson_interval(0, 0) == (None, None)
    r = rates([GEN, GEN, MEM, OTHER], TO_GEN)
    assert (r["n"], r["k"], r["success"], r["other"], r["unchanged"]) == (4, 2, 0.5, 0.25, 0.25)
    assert r["ci95"] == list(wilson_interval(2, 4))
    assert rates([], TO_MEM)["success"] is None


def test_mean_and_spread():
    values = [0.1, 0.4, None, 0.25]
    s = mean_and_spread(values)
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.25) and s["std"] == pytest.approx(statistics.stdev([0.1, 0.4, 0.25]))
    assert mean_and_spread([0.3]) == {"mean": 0.3, "std": 0.0, "n": 1}
    assert mean_and_spread([None])["mean"] is None


@pytest.fixture
def neurons():
    g = torch.Generator().manual_seed(0)
    nmd = torch.randn(4, 50, generator=g)
    rho = torch.tanh(nmd + 0.3 * torch.randn(4, 50, generator=g))
    return nmd, rho


def shift_map(shifts, width):
    """{flat index: value} of a set of shifts."""
    return {int(layer * width + i): float(v) for layer, (idx, vals) in shifts.items() for i, v in zip(idx, vals)}


def test_targeted_shifts_move_the_top_neurons_by_alpha_nmd(neurons):
    nmd, rho = neurons
    top = select_top(rho, 0.1)
    assert len(top) == 20
    assert rho.flatten()[top].abs().min() >= rho.flatten().abs().topk(20).values.min()
    for direction, sign in ((TO_GEN, -1), (TO_MEM, 1)):
        got = shift_map(targeted_shifts(nmd, top, 3.0, direction), 50)
        assert got == pytest.approx({int(i): sign * 3.0 * float(nmd.flatten()[i]) for i in top})


def test_each_control_selects_what_it_claims(neurons):
    nmd, rho = neurons
    top = select_top(rho, 0.1)
    top_set = {int(i) for i in top}
    alpha = 2.0
    magnitudes = sorted(alpha * abs(float(nmd.flatten()[i])) for i in top)
    controls = control_shifts(nmd, rho, top, alpha, TO_GEN, torch.Generator().manual_seed(1))
    assert set(controls) == {"random", "random_magnitude", "bottom_rho", "random_sign"}
    for name, shifts in controls.items():
        assert len(flat_indices(shifts, 50)) == len(top), name  # as many neurons as the targeted set

    # (a) the authors' baseline: values within +-max|NMD| of the selected set, not scaled by alpha
    max_abs = float(nmd.flatten()[top].abs().max())
    assert all(abs(v) <= max_abs for v in shift_map(controls["random"], 50).values())

    # (b) random neurons outside the top set, with the top set's magnitudes
    rm = shift_map(controls["random_magnitude"], 50)
    assert not set(rm) & top_set
    assert sorted(abs(v) for v in rm.values()) == pytest.approx(magnitudes)

    # (c) the lowest-|rho| neurons, each shifted by its own alpha*NMD in the direction's sign
    bottom = select_bottom(rho, len(top))
    assert not {int(i) for i in bottom} & top_set
    assert rho.flatten()[bottom].abs().max() <= rho.flatten().abs().sort().values[len(top) - 1]
    assert shift_map(controls["bottom_rho"], 50) == pytest.approx(
        {int(i): -alpha * float(nmd.flatten()[i]) for i in bottom})

    # (d) the top neurons themselves, same magnitudes, signs at random (not all equal to the targeted ones)
    rs = shift_map(controls["random_sign"], 50)
    assert set(rs) == top_set
    assert sorted(abs(v) for v in rs.values()) == pytest.approx(magnitudes)
    targeted = shift_map(targeted_shifts(nmd, top, alpha, TO_GEN), 50)
    agree = sum((rs[i] > 0) == (targeted[i] > 0) for i in top_set)
    assert 0 < agree < len(top_set)


def test_layer_shifts_keep_only_that_layer(neurons):
    nmd, rho = neurons
    shifts = targeted_shifts(nmd, select_top(rho, 0.2), 1.0, TO_MEM)
    for layer in range(4):
        one = layer_shifts(shifts, layer)
        assert set(one) <= {layer}
        if layer in shifts:
            assert torch.equal(one[layer][0], shifts[layer][0])


def test_pairs_stay_together_and_probes_find_a_planted_signal():
    train, test = split_pairs(40, 0.25, seed=3)
    assert len(test) == 10 and not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(40))

    g = torch.Generator().manual_seed(0)
    gen = torch.randn(60, 3, 16, generator=g)
    mem = torch.randn(60, 3, 16, generator=g)
    mem[:, 1, 0] += 4.0  # layer 1 carries the behaviour; layers 0 and 2 are noise
    prompts = [("A: 1 + 2 + 3", "A: 3 + 2 + 1")] * 60  # a pair's prompts are reorderings of one another
    result = probe_layers(mem, gen, prompts, TOKEN_PATTERN, 0.3, seed=5, l2=0.01, max_iter=100)
    assert result["by_layer"][1] > 0.9
    assert max(result["by_layer"][0], result["by_layer"][2]) < 0.8
    assert result["bag_of_tokens"] == 0.5  # the same tokens cannot tell the two apart


def test_bag_of_tokens_counts_with_a_fixed_vocabulary():
    x, vocab = bag_of_tokens(["AB: 1 1", "AB: 2"], TOKEN_PATTERN)
    assert vocab == sorted(vocab) and x.sum(1).tolist() == [5.0, 3.0]  # "AB:", " ", "1", " ", "1"
    y, _ = bag_of_tokens(["AB: 9"], TOKEN_PATTERN, vocab)  # unseen tokens are dropped
    assert y.sum().item() == 2.0
