"""Plot data for `dvc plots` (CSV) and the NMD heatmap (PNG)."""
import csv
import io

from .io import atomic_path


def write_csv(path, rows):
    """Rows of dicts with the same keys -> CSV, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def nmd_heatmap(path, nmd, title):
    """Each layer's NMD sorted from most negative to most positive, one row per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = nmd.sort(dim=1).values.numpy()
    limit = float(abs(values).max()) or 1.0
    fig, ax = plt.subplots(figsize=(8, 0.4 * values.shape[0] + 1.2), dpi=100)
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xlabel("neurons, sorted by NMD")
    ax.set_ylabel("layer")
    ax.set_yticks(range(values.shape[0]))
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="NMD (mem - gen)")
    save_figure(fig, path)


def new_figure(n_panels, title, n_cols=3, panel_width=4.2, panel_height=3.2):
    """n_panels axes on a grid of up to n_cols columns (matplotlib, file-only backend); unused cells hidden."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = min(n_cols, n_panels)
    n_rows = -(-n_panels // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel_width * n_cols, panel_height * n_rows + 0.4),
                             dpi=100, squeeze=False)
    fig.suptitle(title)
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
