import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from memgen.activations import write_activations
from memgen.distributed import pin_threads
from memgen.errors import UserError
from memgen.params import Params
from memgen.stats import cluster_bootstrap, group_tally, jaccard_chance, site_stats, swap_signs, wilson_interval
from memgen.steering import TO_GEN, TO_MEM, n_selected, select_top, targeted


def neuron_stats(path, chunk_bytes=2 << 20, n_permutations=0, seed=0):
    """NMD, rho and the number of pairs of the store's one site."""
    s = site_stats(path, "resid_post", n_permutations, seed, chunk_bytes=chunk_bytes)
    return s.nmd, s.rho, s.n_pairs


def write_store(path, mem, gen):
    write_activations(path, {"resid_post": {"mem": mem, "gen": gen}}, metadata={})


@pytest.fixture
def store(tmp_path):
    g = torch.Generator().manual_seed(0)
    n, layers, width = 37, 3, 11
    gen = torch.randn(n, layers, width, generator=g) * 2 + 5
    mem = gen + torch.randn(n, layers, width, generator=g) + torch.linspace(-1, 1, layers * width).view(layers, width)
    mem[:, 0, 0] = gen[:, 0, 0] = 1.5  # a constant neuron
    path = tmp_path / "acts.safetensors"
    write_store(path, mem, gen)
    return path, mem, gen


def test_nmd_and_rho_match_scipy(store):
    path, mem, gen = store
    nmd, rho, n = neuron_stats(path, chunk_bytes=5 * 3 * 11 * 4)  # 5-row chunks, the last one short
    assert n == len(mem)
    assert torch.allclose(nmd, (mem - gen).mean(0), atol=1e-5)
    labels = np.r_[np.ones(len(mem)), np.zeros(len(gen))]
    x = torch.cat([mem, gen]).double().numpy()
    for layer in range(mem.shape[1]):
        for neuron in range(mem.shape[2]):
            if layer == neuron == 0:
                assert rho[0, 0] == 0  # constant: no correlation (scipy says nan)
                continue
            expected = pearsonr(x[:, layer, neuron], labels).statistic
            assert abs(rho[layer, neuron].item() - expected) <= 1e-6
    assert torch.equal(torch.sign(rho[nmd.abs() > 1e-6]), torch.sign(nmd[nmd.abs() > 1e-6]))


def test_chunking_does_not_change_results(store):
    path, _, _ = store
    a, b = neuron_stats(path, chunk_bytes=1), neuron_stats(path, chunk_bytes=10**6)  # 1 row / all rows
    assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6) and a[2] == b[2]


def test_broken_store_names_the_file(tmp_path):
    path = tmp_path / "acts.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(UserError, match="acts.safetensors"):
        neuron_stats(path)
    with pytest.raises(UserError, match="not found"):
        neuron_stats(tmp_path / "missing.safetensors")


def test_truncated_store_names_the_file(store):
    path, _, _ = store
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(UserError, match=r"acts.safetensors: not a readable activation store .*cut short"):
        neuron_stats(path)


def test_top_selection_is_global_by_abs_rho():
    rho = torch.tensor([[0.1, -0.9, 0.3], [0.8, -0.2, 0.05]])
    assert n_selected(rho.shape, 0.5) == 3
    assert select_top(rho, 0.5).tolist() == [1, 3, 2]  # |-0.9|, 0.8, 0.3
    assert select_top(rho, 1e-9).tolist() == [1]       # at least one neuron


def test_targeted_shift_signs_and_layers():
    nmd = torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.0, -4.0]])
    idx = torch.tensor([5, 1])
    to_gen = targeted(nmd, idx, TO_GEN).at(2.0)
    assert to_gen[0][0].tolist() == [1] and to_gen[0][1].tolist() == [2.0]    # -alpha * -1.0
    assert to_gen[1][0].tolist() == [2] and to_gen[1][1].tolist() == [8.0]    # -alpha * -4.0
    to_mem = targeted(nmd, idx, TO_MEM).at(2.0)
    assert to_mem[1][1].tolist() == [-8.0]


def test_store_without_pairs_gives_zeros(tmp_path):
    path = tmp_path / "empty.safetensors"
    write_store(path, torch.zeros(0, 2, 5), torch.zeros(0, 2, 5))
    nmd, rho, n = neuron_stats(path)
    assert n == 0 and nmd.shape == rho.shape == (2, 5) and not nmd.any() and not rho.any()


def test_null_matches_swapping_pairs_by_hand(store):
    """Each permutation's rho equals Pearson's r after swapping MEM and GEN in the chosen pairs."""
    path, mem, gen = store
    stats = site_stats(path, "resid_post", n_permutations=5, seed=11, chunk_bytes=4 * 3 * 11 * 4)
    signs = swap_signs(5, len(mem), 11)
    labels = np.r_[np.ones(len(mem)), np.zeros(len(gen))]
    for row, s in zip(stats.null_max, signs):
        swap = s < 0
        a, b = mem.clone(), gen.clone()
        a[swap], b[swap] = gen[swap], mem[swap]
        x = torch.cat([a, b]).double().numpy().reshape(2 * len(mem), -1)
        by_hand = max(abs(pearsonr(x[:, j], labels).statistic) for j in range(1, x.shape[1]))  # 0: constant
        assert row.item() == pytest.approx(by_hand, abs=1e-6)


def test_null_puts_a_planted_neuron_above_and_noise_below(tmp_path):
    g = torch.Generator().manual_seed(3)
    gen = torch.randn(80, 3, 40, generator=g)
    mem = torch.randn(80, 3, 40, generator=g)
    noise = tmp_path / "noise.safetensors"
    write_store(noise, mem, gen)
    chance = site_stats(noise, "resid_post", n_permutations=300, seed=1).chance
    assert chance["n_above"] == 0 and chance["n_permutations"] == 300 and 0.2 < chance["null_p95"] < 0.6
    planted = mem.clone()
    planted[:, 2, 17] += 1.0  # one neuron carries the behaviour
    path = tmp_path / "planted.safetensors"
    write_store(path, planted, gen)
    s = site_stats(path, "resid_post", n_permutations=300, seed=1)
    assert s.chance["n_above"] == 1 and (s.rho.abs() > s.chance["null_p95"]).nonzero().tolist() == [[2, 17]]


def test_discriminant_finds_a_signal_hidden_by_a_noisy_neighbour(tmp_path):
    """Two neurons share a large common noise; only their difference carries the behaviour. NMD is
    the same on both, the discriminant sees that one must go up and the other down."""
    g = torch.Generator().manual_seed(5)
    n = 200
    common = 5 * torch.randn(2 * n, generator=g)
    states = 0.1 * torch.randn(2 * n, 1, 2, generator=g)
    states[:, 0, 0] += common
    states[:, 0, 1] += common
    states[:n, 0, 0] += 0.5  # MEM rows
    mem, gen = states[:n], states[n:]
    path = tmp_path / "acts.safetensors"
    write_store(path, mem, gen)
    s = site_stats(path, "resid_post", shrinkage=1e-3)
    along = s.discriminant[0] / s.discriminant[0].norm()
    assert along[0] > 0.6 and along[1] < -0.6  # (1, -1)/sqrt(2): the contrast, not the common noise
    nmd = s.nmd[0]
    assert float((s.discriminant[0] * along).sum()) == pytest.approx(float((nmd * along).sum()), rel=1e-4)  # NMD's component


def clustered_seeds(rng, n_seeds, n_groups, per_group, mean, seed_sd, group_sd):
    """Synthetic steering outcomes: each seed's rate and each group's around it drawn uniformly (so
    every seed's expected rate is exactly `mean`), prompts Bernoulli within a group."""
    seeds = []
    for _ in range(n_seeds):
        p_seed = mean + rng.uniform(-seed_sd, seed_sd)
        p_groups = np.clip(p_seed + rng.uniform(-group_sd, group_sd, n_groups), 0, 1)
        hits = rng.binomial(per_group, p_groups)
        seeds.append([[int(h), per_group] for h in hits])
    return seeds


def test_cluster_bootstrap_covers_the_mean_at_about_its_nominal_rate():
    """On clustered data (seed and group effects), the two-stage bootstrap's 95 % interval covers the
    true mean in about 95 % of datasets, while a Wilson interval that treats prompts as independent does not."""
    rng = np.random.default_rng(7)
    covered, naive = 0, 0
    n_datasets = 200
    for i in range(n_datasets):
        seeds = clustered_seeds(rng, n_seeds=8, n_groups=20, per_group=3, mean=0.4, seed_sd=0.2, group_sd=0.3)
        est = cluster_bootstrap(seeds, n_resamples=500, seed=i)
        covered += est["lo"] <= 0.4 <= est["hi"]
        k, n = sum(h for s in seeds for h, _ in s), sum(m for s in seeds for _, m in s)
        lo, hi = wilson_interval(k, n)
        naive += lo <= 0.4 <= hi
    assert 0.88 <= covered / n_datasets <= 0.99, covered
    assert naive / n_datasets < 0.8, naive


def test_cluster_bootstrap_of_one_seed_has_no_spread_and_an_interval_from_its_groups():
    est = cluster_bootstrap([[[3, 3], [0, 3], [2, 3], [1, 3]]], n_resamples=1000)
    assert est["values"] == [0.5] and est["mean"] == 0.5 and est["spread"] is None and est["n_seeds"] == 1
    assert 0.0 < est["lo"] < 0.5 < est["hi"] < 1.0
    assert cluster_bootstrap([[[2, 2]], []])["n_seeds"] == 1  # a seed with no prompts is left out
    assert cluster_bootstrap([])["mean"] is None


def test_group_tally_counts_hits_per_group_in_first_appearance_order():
    assert group_tally([4, 4, 1, 4, 1], [True, False, True, True, False]) == [[2, 3], [1, 2]]


HANG_CHECK = """
import sys, torch
from memgen.stats import site_stats
torch.set_num_threads(2)  # as params parallel.threads pins it: torch 2.13's batched LU solve hung here
s = site_stats(sys.argv[1], "resid_post", 0, 0)
print(bool(torch.isfinite(s.discriminant).all()))
"""


@pytest.mark.parametrize("n_pairs", [1, 10])
def test_discriminant_under_a_pinned_thread_count_finishes(tmp_path, n_pairs):
    """A wide site with few pairs (a rank-deficient covariance, as a planted run's hidden units give) under
    an explicitly set thread count: the direction comes back finite within seconds (one pair: NMD's)."""
    g = torch.Generator().manual_seed(3)
    mem, gen = torch.randn(n_pairs, 2, 256, generator=g), torch.randn(n_pairs, 2, 256, generator=g)
    path = tmp_path / "acts.safetensors"
    write_store(path, mem, gen)
    done = subprocess.run([sys.executable, "-c", HANG_CHECK, str(path)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True" and "MKL ERROR" not in done.stdout + done.stderr, done.stderr
    if n_pairs == 1:
        assert torch.equal(site_stats(path, "resid_post").discriminant, (mem - gen)[0].float())


def test_pin_threads_follows_params(tmp_path):
    before = torch.get_num_threads()
    try:
        assert pin_threads(Params({"parallel": {"threads": 1}}, "")) == 1
        assert pin_threads(Params({}, "")) == 1  # no parallel section: torch's choice, left as it is
        with pytest.raises(UserError, match="parallel.threads"):
            pin_threads(Params({"parallel": {"threads": 0}}, ""))
    finally:
        torch.set_num_threads(before)


def test_jaccard_chance_is_what_random_sets_share():
    rng = np.random.default_rng(0)
    draws = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in
             ((rng.choice(200, 20, replace=False), rng.choice(200, 20, replace=False)) for _ in range(4000))]
    assert jaccard_chance(200, 20) == pytest.approx(np.mean(draws), abs=0.005)
    assert jaccard_chance(50, 50) == 1.0 and jaccard_chance(50, 0) is None


def test_the_t_interval_over_a_few_draws():
    from memgen.stats import t_interval
    est = t_interval([1.0, 2.0, None, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) x sd 1 / sqrt(3)
    assert est["mean"] == 2.0 and est["n"] == 3
    assert est["lo"] == pytest.approx(2.0 - half) and est["hi"] == pytest.approx(2.0 + half)
    assert t_interval([0.4])["lo"] is None and t_interval([])["mean"] is None


def test_the_t_interval_stays_within_the_values_range():
    from memgen.stats import t_interval
    est = t_interval([0.0, 0.5, 1.0], bounds=(0, 1))
    assert (est["lo"], est["mean"], est["hi"]) == (0, 0.5, 1)
    assert t_interval([0.4, 0.5, 0.6], bounds=(0, 1)) == t_interval([0.4, 0.5, 0.6])  # inside its range: unchanged


def test_the_power_to_detect_a_difference_is_what_a_simulated_test_rejects():
    from memgen.stats import power_to_detect
    assert power_to_detect(0.5, 0.1, 387) < 0.8 <= power_to_detect(0.5, 0.1, 388)  # the textbook 388 per arm
    assert power_to_detect(0.5, 0.1, 0) is None
    rng = np.random.default_rng(0)
    for p, n in ((0.5, 100), (0.9, 150), (0.05, 300)):
        q = p - 0.1 if p >= 0.1 else p + 0.1
        a, b = rng.binomial(n, p, 20000) / n, rng.binomial(n, q, 20000) / n
        pooled = (a + b) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            rejected = np.mean(np.abs(a - b) / np.sqrt(2 * pooled * (1 - pooled) / n) > 1.959964)
        assert abs(rejected - power_to_detect(p, 0.1, n)) < 0.04, (p, n, rejected)
