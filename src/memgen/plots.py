"""Plot data for `dvc plots` (CSV) and the NMD heatmap (PNG)."""
import csv
import io
import textwrap

import numpy as np

from .io import atomic_path


def write_csv(path, rows):
    """Rows of dicts with the same keys -> CSV, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def robust_limit(values, quantile=0.99):
    """The colour limit of a diverging map: the `quantile` of |values|, so that one outlier does not wash
    every other cell out; and the cells beyond it as (row, value), largest |value| first."""
    magnitude = np.abs(values)
    limit = float(np.quantile(magnitude, quantile)) or float(magnitude.max()) or 1.0
    rows, cols = np.nonzero(magnitude > limit)
    return limit, sorted(((int(r), float(values[r, c])) for r, c in zip(rows, cols)), key=lambda o: -abs(o[1]))


def nmd_heatmap(path, nmd, title):
    """Each layer's NMD sorted from most negative to most positive, one row per layer; the colours saturate
    at the 99th percentile of |NMD| and the neurons beyond it are named under the title."""
    values = nmd.sort(dim=1).values.numpy()
    limit, outliers = robust_limit(values)
    if outliers:
        layer, largest = outliers[0]
        title += (f"\n{len(outliers)} of {values.size} neurons beyond the colour scale (|NMD| > {limit:.3g}), "
                  f"largest {largest:.3g} at layer {layer}")
    fig, axes = new_figure(1, None, panel_width=8, panel_height=0.4 * values.shape[0] + 1.2)
    ax = axes[0]
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xlabel("neurons, sorted by NMD")
    ax.set_ylabel("layer")
    ax.set_yticks(range(values.shape[0]))
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="NMD (mem - gen)", extend="both" if outliers else "neither")
    save_figure(fig, path)


def new_figure(n_panels, title, n_cols=3, panel_width=4.2, panel_height=3.2):
    """n_panels axes on a grid of up to n_cols columns (matplotlib, file-only backend); unused cells hidden.
    The title wraps to the figure's width rather than run off it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = min(n_cols, n_panels)
    n_rows = -(-n_panels // n_cols)
    width = panel_width * n_cols
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, panel_height * n_rows + 0.4), dpi=100, squeeze=False)
    if title:
        fig.suptitle(textwrap.fill(title, int(11 * width)))  # ~11 characters an inch at the title's size
    axes = [ax for row in axes for ax in row]
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def save_figure(fig, path):
    """A PNG with no timestamp in it, so the same data gives the same bytes."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
