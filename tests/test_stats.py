import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from memgen.errors import UserError
from memgen.io import write_tensors
from memgen.stats import neuron_stats
from memgen.steering import n_selected, random_shifts, select_top, targeted_shifts


@pytest.fixture
def store(tmp_path):
    g = torch.Generator().manual_seed(0)
    n, layers, width = 37, 3, 11
    gen = torch.randn(n, layers, width, generator=g) * 2 + 5
    mem = gen + torch.randn(n, layers, width, generator=g) + torch.linspace(-1, 1, layers * width).view(layers, width)
    mem[:, 0, 0] = gen[:, 0, 0] = 1.5  # a constant neuron
    path = tmp_path / "acts.safetensors"
    write_tensors(path, {"mem": mem, "gen": gen})
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
    to_gen = targeted_shifts(nmd, idx, alpha=2.0, direction="m2g")
    assert to_gen[0][0].tolist() == [1] and to_gen[0][1].tolist() == [2.0]    # -alpha * -1.0
    assert to_gen[1][0].tolist() == [2] and to_gen[1][1].tolist() == [8.0]    # -alpha * -4.0
    to_mem = targeted_shifts(nmd, idx, alpha=2.0, direction="g2m")
    assert to_mem[1][1].tolist() == [-8.0]


def test_random_baseline_shape_and_range():
    shifts = random_shifts((4, 10), count=7, max_abs=0.5, generator=torch.Generator().manual_seed(1))
    idx = [(layer, int(i)) for layer, (ids, _) in shifts.items() for i in ids]
    values = torch.cat([v for _, v in shifts.values()])
    assert len(idx) == len(set(idx)) == 7
    assert values.abs().max() <= 0.5


def test_store_without_pairs_gives_zeros(tmp_path):
    path = tmp_path / "empty.safetensors"
    write_tensors(path, {"mem": torch.zeros(0, 2, 5), "gen": torch.zeros(0, 2, 5)})
    nmd, rho, n = neuron_stats(path)
    assert n == 0 and nmd.shape == rho.shape == (2, 5) and not nmd.any() and not rho.any()
