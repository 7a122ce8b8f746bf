"""The steering methods side by side (memgen.methods), each on a toy where its answer is known: a pure
residual stream whose behaviour is read off the last layer's state along one direction u (MEM where
h . u > 0), with the two behaviours' states also apart along a nuisance axis of large spread."""
from pathlib import Path

import pytest
import torch

from memgen.errors import UserError
from memgen.experiment import RANDOM_DIRECTION, Plan
from memgen.methods import METHODS, Candidate, build, candidates, method_arms, read_methods
from memgen.neuron_store import SiteNeurons
from memgen.params import Params, load_params
from memgen.sites import shift_last, site_shifts
from memgen.stats import RunningMoments, SecondMoments, discriminant_direction, nmd_and_rho
from memgen.steering import TO_GEN, TO_MEM, select_top, targeted

LAYERS, WIDTH, N = 3, 6, 400
ROOT = Path(__file__).resolve().parents[1]
U = torch.tensor([1.0, 0, 0, 0, 0, 0])         # the behaviour's axis: little spread
NUISANCE = torch.tensor([0, 1.0, 0, 0, 0, 0])  # the classes differ here too, but it is mostly noise


class Carry(torch.nn.Module):
    """A block that adds nothing: the residual stream carries its input on."""
    def forward(self, x):
        return x.clone()


@pytest.fixture(scope="module")
def toy():
    g = torch.Generator().manual_seed(0)
    spread = torch.tensor([0.3, 4.0, 1.0, 1.0, 1.0, 1.0])

    def states(centre):  # [N, layers, width]: the same state at every layer (nothing is added on the way)
        x = centre + spread * torch.randn(N, WIDTH, generator=g)
        return x[:, None, :].expand(N, LAYERS, WIDTH).clone()
    mem, gen = states(2 * U + 3 * NUISANCE), states(-2 * U)
    moments = {}
    for name, x in (("mem", mem), ("gen", gen)):
        moments[name] = RunningMoments()
        moments[name].update(x)
    second = SecondMoments()
    second.update(torch.cat([mem, gen]))
    nmd, rho = nmd_and_rho(moments["mem"], moments["gen"])
    site = SiteNeurons(nmd, rho, discriminant_direction(moments["mem"], moments["gen"], second, 1e-3),
                       {"null_p95": None, "n_above": None, "n_permutations": 0})
    return site, {"mem": mem.mean(0), "gen": gen.mean(0)}, mem, gen


def last_layer_states(inputs, iv, alpha):
    """The last layer's state of each input (its state at every layer) under the intervention at the
    residual stream, the hooks as the steerer sets them."""
    blocks, share = [Carry() for _ in range(LAYERS)], alpha if iv.to_target else None
    with shift_last(blocks, site_shifts("resid_post", iv.at(alpha), share), share=share):
        h = torch.stack([torch.zeros_like(inputs), inputs], dim=1)  # two positions: the edit is at the last
        for block in blocks:
            h = block(h)
    return h[:, -1]


def mem_share(states):
    return float(((states @ U) > 0).float().mean())


@pytest.mark.parametrize("method", ["mean_difference", "linear_probe"])
def test_a_dense_shift_at_alpha_one_carries_each_behaviour_to_the_other(toy, method):
    site, means, mem, gen = toy
    assert mem_share(mem[:, 0]) == 1 and mem_share(gen[:, 0]) == 0
    for direction, source, expected in ((TO_MEM, gen, 1.0), (TO_GEN, mem, 0.0)):
        iv = build(Candidate(method, "prompt_end", 1, None, 1.0), site, means, direction)
        assert sorted(iv.idx.tolist()) == list(range(WIDTH, 2 * WIDTH))  # every neuron of layer 1, nothing else
        assert mem_share(last_layer_states(source[:, 0], iv, 1.0)) == expected
        assert mem_share(last_layer_states(source[:, 0], iv, 0.25)) == 1 - expected  # too weak to cross


def test_the_mean_difference_moves_one_mean_onto_the_other_and_the_probe_ignores_the_noisy_axis(toy):
    site, means, mem, gen = toy
    md = build(Candidate("mean_difference", "every_step", 2, None, 1.0), site, means, TO_MEM).at(1.0)[2][1]
    assert torch.allclose(means["gen"][2] + md, means["mem"][2], atol=1e-5)
    probe = build(Candidate("linear_probe", "every_step", 2, None, 1.0), site, means, TO_MEM).at(1.0)[2][1]
    cos = lambda v: float(v @ U / v.norm())  # noqa: E731
    assert cos(md) < 0.85 < 0.99 < cos(probe)  # the mean difference leans on the nuisance axis; the probe does not
    assert float(probe @ U) == pytest.approx(float(md @ U), rel=0.05)  # both cross the class means' distance along u


def test_patching_pulls_each_state_to_the_target_mean(toy):
    site, means, mem, gen = toy
    iv = build(Candidate("patch", "prompt_end", 0, None, 1.0), site, means, TO_GEN)
    assert iv.to_target
    patched = last_layer_states(mem[:, 0], iv, 1.0)
    assert torch.allclose(patched, means["gen"][0].expand(N, WIDTH), atol=1e-6)
    assert mem_share(patched) == 0
    half = last_layer_states(mem[:, 0], iv, 0.5)
    assert torch.allclose(half, (mem[:, 0] + means["gen"][0]) / 2, atol=1e-6)
    # at a later layer as well: the stream carries the patched state on, nothing is added twice
    later = build(Candidate("patch", "prompt_end", 2, None, 1.0), site, means, TO_MEM)
    assert torch.allclose(last_layer_states(gen[:, 0], later, 1.0), means["mem"][2].expand(N, WIDTH), atol=1e-6)


def test_the_nmd_method_is_the_papers_shift_and_its_null_a_random_direction_of_the_same_norm(toy):
    site, means, _, _ = toy
    c = Candidate("nmd", "every_step", None, 0.25, 2.0)
    iv, paper = build(c, site, means, TO_GEN), targeted(site.nmd, select_top(site.rho, 0.25), TO_GEN)
    assert torch.equal(iv.idx, paper.idx) and torch.equal(iv.per_alpha, paper.per_alpha)
    dense = build(Candidate("mean_difference", "every_step", 1, None, 1.0), site, means, TO_MEM)
    plan = Plan(dense, "resid_post", "every_step", 1.0, 3)
    made = [RANDOM_DIRECTION.draw(plan, torch.Generator().manual_seed(s)).intervention for s in (3, 3, 4)]
    assert torch.equal(made[0].per_alpha, made[1].per_alpha) and not torch.equal(made[0].per_alpha, made[2].per_alpha)
    for r in made:
        assert torch.equal(r.idx, dense.idx)
        assert float(r.per_alpha.norm()) == pytest.approx(float(dense.per_alpha.norm()), rel=1e-5)
        assert abs(float(r.per_alpha @ dense.per_alpha)) < 0.9 * float(dense.per_alpha.norm()) ** 2


def test_the_patch_null_pulls_to_a_random_target_as_far_from_the_source_mean(toy):
    site, means, _, _ = toy
    settings = {"site": "resid_post", "schedules": ["prompt_end"], "alphas": [1.0], "layer_alphas": [1.0],
                "shares": [1.0, 2.0], "layers": [1]}
    arm = method_arms(settings, [0.1], site, means)["patch"]
    plan = arm.plan(arm.candidates[0], TO_GEN)  # from MEM to GEN's mean
    drawn = RANDOM_DIRECTION.draw(plan, torch.Generator().manual_seed(0)).intervention
    assert drawn.to_target and torch.equal(drawn.idx, plan.intervention.idx)
    target_step = (means["gen"][1] - means["mem"][1]).norm()
    assert float((drawn.per_alpha - means["mem"][1]).norm()) == pytest.approx(float(target_step), rel=1e-5)
    assert not torch.allclose(drawn.per_alpha, means["gen"][1])


def test_each_method_has_its_grid_and_the_default_budget_is_equal():
    s = {"site": "resid_post", "schedules": ["every_step", "prompt_end"], "alphas": [1.0, 4.0], "layer_alphas": [2.0],
         "shares": [1.0, 2.0], "layers": [0, 2]}
    grids = {m: candidates(m, s, [0.05, 0.1]) for m in METHODS}
    assert len(grids["nmd"]) == 2 * 2 * 2 and {c.layer for c in grids["nmd"]} == {None}
    assert len(grids["mean_difference"]) == len(grids["linear_probe"]) == 2 * 2 * 1
    assert {(c.schedule, c.layer, c.alpha) for c in grids["patch"]} == {
        (sch, layer, share) for sch in s["schedules"] for layer in (0, 2) for share in (1.0, 2.0)}
    assert Candidate("patch", "prompt_end", 3, None, 0.5).label() == "prompt_end, layer 3, share 0.5"
    default = load_params(ROOT / "params.yaml")
    section = read_methods(default.section("methods"), 4, ("mlp_in", "resid_post"))
    budget = {m: len(candidates(m, section, default.one_or_list("topN"))) for m in METHODS}
    assert set(budget.values()) == {24}, budget


def test_a_scope_keeps_every_method_out_of_the_layers_it_leaves_out(toy):
    """before_readout (layers 0..L-2): no one-layer candidate at the last layer, and the NMD shift's neurons none of
    its units, at every topN; each arm's plans at the site it is given."""
    site, means, _, _ = toy
    s = {"site": "resid_post", "schedules": ["prompt_end"], "alphas": [1.0], "layer_alphas": [2.0], "shares": [1.0],
         "layers": [0, 1, 2]}
    inside = range(LAYERS - 1)
    arms = method_arms(s, [0.2, 0.6], site, means, "mlp_hidden", inside)
    for method, arm in arms.items():
        assert arm.candidates and (method == "nmd" or {c.layer for c in arm.candidates} == set(inside))
        for c in arm.candidates:
            plan = arm.plan(c, TO_GEN)
            assert plan.site == "mlp_hidden" and not (plan.intervention.idx // WIDTH == LAYERS - 1).any()
    everywhere = method_arms(s, [0.6], site, means)["nmd"].plan(Candidate("nmd", "prompt_end", None, 0.6, 1.0), TO_GEN)
    assert everywhere.site == "resid_post" and (everywhere.intervention.idx // WIDTH == LAYERS - 1).any()


@pytest.mark.parametrize("change,message", [
    ({"site": "nowhere"}, "methods.site"), ({"schedule": ["sometimes"]}, "methods.schedule"),
    ({"alpha": [0]}, "methods.alpha"), ({"share": [-1.5]}, "methods.share"), ({"layer_alpha": [0]}, "layer_alpha"),
    ({"layers": [3]}, "methods.layers")])
def test_bad_methods_params_are_one_line_errors(change, message):
    section = {"site": "resid_post", "schedule": ["prompt_end"], "alpha": [1, 2], "layer_alpha": [1], "share": [1.0],
               "layers": None}
    read_methods(Params(section, "methods"), 3, ("mlp_in", "resid_post"))
    with pytest.raises(UserError, match=message):
        read_methods(Params({**section, **change}, "methods"), 3, ("mlp_in", "resid_post"))
