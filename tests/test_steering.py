"""Intervals, the targeted steer, the rule, the grid and the behaviour probes: each does what it claims."""
import random
import statistics

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, hypergeom

from memgen.evaluate import rates
from memgen.predict import classify_layers, logistic, split_pairs
from memgen.stats import exact_greater, mean_and_spread, wilson_interval
from memgen.errors import UserError
from memgen.families import BUILT_IN
from memgen.params import Params
from memgen.sites import shift_last, site_shifts
from memgen.experiment import choose
from memgen.neuron_store import SiteNeurons
from memgen.search import Point, read_grid, read_search, searches, steer_arm
from memgen.steering import ADAPTIVE, SCOPES, TO_GEN, TO_MEM, scope_layers, select_top, targeted
from memgen.tasks import GEN, MEM, OTHER
from memgen.tasks.base import TOKEN_PATTERN


# The last four: Newcombe (1998), Statistics in Medicine 17:857, Table I, the score interval without correction.
@pytest.mark.parametrize("k,n,expected", [(5, 10, (0.2366, 0.7634)), (0, 10, (0.0, 0.2775)), (10, 10, (0.7225, 1.0)),
                                          (1, 57, (0.0031, 0.0929)), (81, 263, (0.2553, 0.3662)),
                                          (15, 148, (0.0624, 0.1605)), (0, 20, (0.0, 0.1611)), (1, 29, (0.0061, 0.1718))])
def test_wilson_matches_textbook_values(k, n, expected):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(expected[0], abs=1e-4) and hi == pytest.approx(expected[1], abs=1e-4)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 40), (3, 7), (11, 71), (228, 229), (300, 300), (50, 300)])
def test_wilson_is_scipys_and_plain_floats(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert (lo, hi) == (ci.low, ci.high)
    assert type(lo) is float and type(hi) is float  # written to JSON as they are


def test_wilson_without_data_and_rates():
    assert wilson_interval(0, 0) == (None, None)
    r = rates([GEN, GEN, MEM, OTHER], TO_GEN)
    assert (r["n"], r["k"], r["success"], r["other"], r["unchanged"]) == (4, 2, 0.5, 0.25, 0.25)
    assert r["ci95"] == list(wilson_interval(2, 4))
    assert (r["route_k"], r["route"], r["route_ci95"]) == (3, 0.75, list(wilson_interval(3, 4)))  # left MEM at all
    assert rates([], TO_MEM)["success"] is None


def test_exact_greater_is_fishers_one_sided_test():
    # 3/3 against 0/3: of the C(6,3) = 20 ways to place the 3 successes, only "all in the first row" is as extreme
    assert exact_greater(3, 3, 0, 3) == pytest.approx(1 / 20)
    # 7/10 against 2/10: P(X >= 7), X the first row's successes, hypergeometric (20 probes, 9 successes, 10 drawn)
    assert exact_greater(7, 10, 2, 10) == pytest.approx(hypergeom.sf(6, 20, 9, 10))
    assert exact_greater(0, 5, 4, 5) == 1.0  # no success at all cannot beat anything
    assert exact_greater(4, 8, 4, 8) > 0.5  # equal rates: no evidence either way
    assert exact_greater(2, 0, 1, 3) is None and exact_greater(2, 4, 0, 0) is None


def test_mean_and_spread():
    values = [0.1, 0.4, None, 0.25]
    s = mean_and_spread(values)
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.25) and s["std"] == pytest.approx(statistics.stdev([0.1, 0.4, 0.25]))
    assert mean_and_spread([0.3]) == {"mean": 0.3, "std": None, "n": 1}  # one value has no spread
    assert mean_and_spread([None])["mean"] is None


@pytest.fixture
def neurons():
    g = torch.Generator().manual_seed(0)
    nmd = torch.randn(4, 50, generator=g)
    rho = torch.tanh(nmd + 0.3 * torch.randn(4, 50, generator=g))
    return nmd, rho


def shift_map(shifts, width):
    """{flat index: value} of a set of per-layer shifts."""
    return {int(layer * width + i): float(v) for layer, (idx, vals) in shifts.items() for i, v in zip(idx, vals)}


def test_targeted_shifts_move_the_top_neurons_by_alpha_nmd(neurons):
    nmd, rho = neurons
    top = select_top(rho, 0.1)
    assert len(top) == 20
    assert rho.flatten()[top].abs().min() >= rho.flatten().abs().topk(20).values.min()
    for direction, sign in ((TO_GEN, -1), (TO_MEM, 1)):
        got = shift_map(targeted(nmd, top, direction).at(3.0), 50)
        assert got == pytest.approx({int(i): sign * 3.0 * float(nmd.flatten()[i]) for i in top})


def test_one_layer_keeps_only_that_layer(neurons):
    nmd, rho = neurons
    iv = targeted(nmd, select_top(rho, 0.2), TO_MEM)
    whole = iv.at(1.0)
    for layer in range(4):
        one = iv.only_layer(layer).at(1.0)
        assert set(one) <= {layer}
        if layer in whole:
            assert torch.equal(one[layer][0], whole[layer][0]) and torch.equal(one[layer][1], whole[layer][1])


def row(success, other, n_neurons=10, alpha=3.0, n=20):
    return {"success": success, "other": other, "n_neurons": n_neurons, "alpha": alpha, "n": n}


class Carry(torch.nn.Module):
    """A block that adds nothing: the residual stream carries its input on to the next layer."""
    def forward(self, x):
        return x.clone()


def states_under(site, shifts, layers=4, width=5, accumulate=False):
    """The last position's state after each layer of a pure residual stream steered at `site`."""
    blocks, states = [Carry() for _ in range(layers)], []
    with shift_last(blocks, site_shifts(site, shifts, accumulate=accumulate)):
        h = torch.zeros(1, 2, width)
        for block in blocks:
            h = block(h)
            states.append(h[0, -1].clone())
    return torch.stack(states)


def test_a_residual_stream_shift_sits_at_its_own_value_at_every_shifted_layer():
    """Neuron 1 shifted at layers 0, 1 and 3, neuron 3 at layer 1 only: at the residual stream each
    shifted layer holds its own value (alpha x NMD), not the sum the stream carries from before."""
    shifts = {0: (torch.tensor([1]), torch.tensor([2.0])),
              1: (torch.tensor([1, 3]), torch.tensor([5.0, -1.0])),
              3: (torch.tensor([1]), torch.tensor([0.5]))}
    stream = states_under("resid_post", shifts)
    assert stream[:, 1].tolist() == [2.0, 5.0, 5.0, 0.5]
    assert stream[:, 3].tolist() == [0.0, -1.0, -1.0, -1.0]
    assert stream[:, [0, 2, 4]].abs().sum() == 0
    # a site off the stream (an MLP's input) takes each layer's values as given; in this toy they add up
    assert states_under("mlp_in", shifts)[:, 1].tolist() == [2.0, 7.0, 7.0, 7.5]
    assert site_shifts("resid_post", {}) == {}


def test_the_papers_method_accumulates_its_shifts_down_the_stream():
    """As the authors' code adds alpha x NMD at each decoder layer's output: the stream carries every earlier
    shift, so neuron 1 holds 2, 2 + 5, 7 and 7 + 0.5 (steer.paper_stream: accumulate), where increments hold 2, 5, 0.5."""
    shifts = {0: (torch.tensor([1]), torch.tensor([2.0])),
              1: (torch.tensor([1, 3]), torch.tensor([5.0, -1.0])),
              3: (torch.tensor([1]), torch.tensor([0.5]))}
    stream = states_under("resid_post", shifts, accumulate=True)
    assert stream[:, 1].tolist() == [2.0, 7.0, 7.0, 7.5]
    assert stream[:, 3].tolist() == [0.0, -1.0, -1.0, -1.0]
    assert torch.equal(stream, states_under("mlp_in", shifts, accumulate=True))  # off the stream: as given either way


def test_the_rule_takes_the_best_val_success_within_the_other_bound():
    rows = [row(0.9, 0.3), row(0.7, 0.05), row(0.7, 0.0, n_neurons=5), row(0.7, 0.0, n_neurons=5, alpha=ADAPTIVE),
            row(0.7, 0.1, n_neurons=5, alpha=1.0)]
    best, within = choose(rows, max_other=0.1)
    assert within and best is rows[4]  # 0.9 breaks too much; of the 0.7s: fewest neurons, then the smallest alpha
    best, within = choose([row(0.9, 0.5), row(0.2, 0.3)], max_other=0.1)
    assert not within and best["other"] == 0.3  # none within bounds: the least OTHER
    assert choose([row(None, None, n=0)], 0.1) == (None, False)  # no val probe starts there


def test_the_grid_is_every_combination_of_the_knobs(params_data):
    from memgen.params import Params

    params_data.update(topN=[0.05, 0.1], alpha=[3, "adaptive"], schedule="prompt_end", site=["resid_post"],
                       vector=["nmd", "discriminant"])
    grid = read_grid(Params(params_data), BUILT_IN["gpt2"])
    assert len(grid) == 8 and grid[0] == Point("prompt_end", "resid_post", "nmd", 0.05, 3.0)
    assert {p.alpha for p in grid} == {3.0, ADAPTIVE}


def test_a_knob_read_from_a_section_is_checked_under_the_sections_name():
    from memgen.params import Params
    from memgen.search import read_knob

    doses = Params({"localize": {"doses": {"alpha": [3, "adaptive"], "schedule": "sometimes"}}}).section(
        "localize").section("doses")
    assert read_knob(doses, "alpha", BUILT_IN["gpt2"]) == [3.0, ADAPTIVE]
    with pytest.raises(UserError, match="localize.doses.schedule"):
        read_knob(doses, "schedule", BUILT_IN["gpt2"])


def test_a_family_grid_narrows_the_knobs_it_names(params_data):
    params_data.update(topN=[0.05, 0.1], alpha=[3, "adaptive"], schedule=["every_step", "prompt_end"],
                       site=["mlp_in", "resid_post"], vector="nmd")
    narrow = Params({"grid": {"schedule": "prompt_end", "alpha": [3, 8], "topN": [0.2]}}, "families.llama.steer")
    grid = read_grid(Params(params_data), BUILT_IN["llama"], narrow.section("grid"))
    assert {p.schedule for p in grid} == {"prompt_end"} and {p.alpha for p in grid} == {3.0}
    assert {p.topN for p in grid} == {0.05, 0.1}  # 0.2 is not among topN's values (as after -S topN=...): both kept
    assert len(grid) == 4
    bad = Params({"grid": {"alpha": [3], "strength": [1]}}, "families.llama.steer").section("grid")
    with pytest.raises(UserError, match="'families.llama.steer.grid' names 'strength', which is not a knob"):
        read_grid(Params(params_data), BUILT_IN["llama"], bad)


def test_pairs_stay_together_on_one_side_of_the_split():
    train, test = split_pairs(40, 0.25, seed=3)  # sample i is pair i's MEM prompt, 40 + i its GEN prompt
    assert sorted([*train, *test]) == list(range(80))
    assert set((test + 40) % 80) == set(test) and set((train + 40) % 80) == set(train)  # each prompt beside its partner
    assert len(test) == 2 * 10
    assert (split_pairs(40, 0.25, seed=3)[1] == test).all() and not (split_pairs(40, 0.25, seed=4)[1] == test).all()


def planted_states(n_pairs, g):
    """[pairs, 3 layers, 16] states: at layer 1 neuron 0 is above 1 for MEM and below -1 for GEN; all else noise."""
    gen, mem = torch.randn(n_pairs, 3, 16, generator=g), torch.randn(n_pairs, 3, 16, generator=g)
    mem[:, 1, 0] = 1 + mem[:, 1, 0].abs()
    gen[:, 1, 0] = -1 - gen[:, 1, 0].abs()
    return mem, gen


def test_the_state_classifier_finds_the_planted_layer_and_repeats_itself():
    mem, gen = planted_states(200, torch.Generator().manual_seed(0))
    prompts = [("A: 1 + 2 + 3", "A: 3 + 2 + 1")] * 200  # a pair's prompts are reorderings of one another
    args = ({"resid_post": (mem, gen)}, prompts, TOKEN_PATTERN, 0.3, 5, 0.01, 100)
    result = classify_layers(*args)
    assert (result["n_train_pairs"], result["n_test_pairs"]) == (140, 60)
    acc = result["by_layer"]["resid_post"]
    assert acc[1] == 1.0
    assert abs(acc[0] - 0.5) < 0.15 and abs(acc[2] - 0.5) < 0.15  # 120 test prompts: chance is 0.5 +- 0.05
    assert result["ordered_tokens"] == 1.0  # the same tokens, told apart by their positions
    assert classify_layers(*args) == result


def reordered_pairs(n, cue, seed):
    """n pairs of prompts holding the same letters, "Z" among them; with `cue` the MEM prompt puts Z last and
    the GEN prompt elsewhere (an order cue no bag of tokens can see), without it both place Z at random."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        letters = rng.sample("ABCDEFGHIJKLMNOPQRSTUVWXY", 4)
        spots = (4, rng.randrange(4)) if cue else (rng.randrange(5), rng.randrange(5))
        pairs.append(tuple(" ".join(letters[:i] + ["Z"] + letters[i:]) for i in spots))
    return pairs


def test_the_ordered_tokens_baseline_finds_an_order_cue_and_only_that():
    """Above chance where the MEM prompt's order differs systematically, at chance where it does not; both
    prompts of every pair hold the same tokens, so a bag of tokens would score 0.5 on both."""
    states = {"resid_post": (torch.zeros(300, 1, 4), torch.zeros(300, 1, 4))}
    with_cue = classify_layers(states, reordered_pairs(300, True, 1), TOKEN_PATTERN, 0.3, 2, 0.01, 200)
    without = classify_layers(states, reordered_pairs(300, False, 1), TOKEN_PATTERN, 0.3, 2, 0.01, 200)
    assert with_cue["ordered_tokens"] > 0.9
    assert abs(without["ordered_tokens"] - 0.5) < 0.1  # 180 test prompts: chance is 0.5 +- 0.04


@pytest.mark.parametrize("l2", [0.01, 0.3])
def test_the_logistic_regression_minimises_mean_log_loss_plus_l2(l2):
    """At the fit, the gradient of mean log-loss + l2 ||w||^2 vanishes (the C it is given is right)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, 3, generator=g).double().numpy()
    y = (x[:, 0] + torch.randn(50, generator=g).double().numpy() > 0).astype(float)
    model = logistic(l2, 1000, len(x)).set_params(tol=1e-12).fit(x, y)
    w, b = model.coef_[0], model.intercept_[0]
    residual = 1 / (1 + np.exp(-(x @ w + b))) - y
    assert np.abs(x.T @ residual / len(x) + 2 * l2 * w).max() < 1e-6 and abs(residual.mean()) < 1e-6
    assert np.abs(w).max() > 0.05  # not the trivial zero fit


def test_the_search_runs_above_chance_or_always():
    modes = {mode: [searches(mode, above) for above in (True, False)] for mode in (True, False, "always")}
    assert modes == {True: [True, False], False: [False, False], "always": [True, True]}
    with pytest.raises(UserError, match="'families.gpt2.steer.search' must be true, false or always, got 'yes'"):
        read_search(Params({"search": "yes"}, "families.gpt2.steer"))


class Carry(torch.nn.Module):
    """A block that adds nothing: the residual stream carries its input on."""
    def forward(self, x):
        return x.clone()


def test_the_before_readout_scope_never_touches_the_last_block():
    """The scope keeps the count of neurons and takes none from the last layer, even where the last layer
    ranks highest; through the residual-stream hooks, a block's output is edited exactly at the layers
    holding a selected neuron, so before the readout the last block's output is never touched."""
    g = torch.Generator().manual_seed(5)
    layers, width = 4, 16
    rho = torch.rand(layers, width, generator=g)
    rho[-1] += 1.0  # the last layer holds every top neuron
    nmd = torch.randn(layers, width, generator=g)
    site = SiteNeurons(nmd, rho, nmd, {"null_p95": 0.0, "n_above": 1, "n_permutations": 1})
    point = Point("every_step", "resid_post", "nmd", 0.25, 3.0)
    ivs = {scope: steer_arm([point], {"resid_post": site}, scope).plan(point, TO_GEN).intervention
           for scope in ("all", "before_readout")}
    assert len(ivs["all"].idx) == len(ivs["before_readout"].idx) == 16
    assert set((ivs["all"].idx // width).tolist()) == {layers - 1}
    assert (ivs["before_readout"].idx // width).max() < layers - 1
    for scope, iv in ivs.items():
        blocks, edited = [Carry() for _ in range(layers)], []
        with shift_last(blocks, site_shifts("resid_post", iv.at(3.0))):
            h = torch.zeros(1, 2, width)
            for block in blocks:
                out = block(h)
                edited.append(not torch.equal(out, h))
                h = out
        assert edited == [layer in set((iv.idx // width).tolist()) for layer in range(layers)], scope
        assert edited[-1] == (scope == "all")
    assert scope_layers("all", layers) is None and list(scope_layers("before_readout", layers)) == [0, 1, 2]


def test_the_mlp_hidden_scope_moves_the_same_point_to_the_hidden_units():
    """Scope mlp_hidden: the point's schedule, vector, topN and alpha, at the MLP's hidden units, their own top
    neurons by |rho| (topN a fraction of their count), whatever site the point names."""
    g = torch.Generator().manual_seed(6)
    stores = {site: SiteNeurons(torch.randn(2, width, generator=g), torch.rand(2, width, generator=g),
                                torch.randn(2, width, generator=g), {"null_p95": 0.0, "n_above": 1, "n_permutations": 1})
              for site, width in (("resid_post", 8), ("mlp_hidden", 32))}
    point = Point("prompt_end", "resid_post", "nmd", 0.25, 3.0)
    plan = steer_arm([point], stores, "mlp_hidden").plan(point, TO_MEM)
    assert (plan.site, plan.schedule, plan.alpha) == ("mlp_hidden", "prompt_end", 3.0)
    assert set(plan.intervention.idx.tolist()) == set(select_top(stores["mlp_hidden"].rho, 0.25).tolist())
    assert len(plan.intervention.idx) == 16 and plan.intervention.width == 32
    assert steer_arm([point], stores).plan(point, TO_MEM).site == "resid_post"
    assert "mlp_hidden" in SCOPES
