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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        # no timestamps in the PNG, so the same NMD gives the same bytes
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
