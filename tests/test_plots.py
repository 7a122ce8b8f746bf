"""The NMD heatmap's colour limit: robust to an outlier neuron, which it names."""
import numpy as np
import torch

from memgen.plots import nmd_heatmap, robust_limit


def planted(outlier):
    """4 layers x 100 neurons of N(0, 1), one neuron at layer 2 set to `outlier`."""
    values = np.random.default_rng(0).normal(size=(4, 100))
    values[2, 17] = outlier
    return values


def test_one_outlier_does_not_set_the_scale():
    limit, outliers = robust_limit(planted(50.0))
    assert 1.5 < limit < 4  # the bulk's 99th percentile, not 50
    assert outliers[0] == (2, 50.0)
    assert len(outliers) == int((np.abs(planted(50.0)) > limit).sum()) == 4  # 1 % of 400 cells
    assert robust_limit(planted(-5000.0))[0] == limit  # however far out it lies
    assert robust_limit(planted(-5000.0))[1][0] == (2, -5000.0)


def test_flat_values_keep_a_usable_scale():
    assert robust_limit(np.zeros((3, 8))) == (1.0, [])
    sparse = np.zeros((3, 100))
    sparse[1, 5] = -0.5  # the 99th percentile is 0: the largest value sets the scale
    assert robust_limit(sparse) == (0.5, [])


def test_heatmap_draws_with_an_outlier(tmp_path):
    nmd_heatmap(tmp_path / "h.png", torch.tensor(planted(50.0), dtype=torch.float32), "planted")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
