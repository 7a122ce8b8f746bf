"""The report's figures (matplotlib, PNG without timestamps, so the same data gives the same bytes)."""
from ..plots import new_figure, save_figure
from ..steering import ARM_LABELS, ARMS, DIRECTIONS
from .format import ARROW



def controls_figure(path, panels, title):
    """Targeted vs each control with 95 % intervals, one panel per run. panels: {name: {direction: {arm: rates}}}."""
    fig, axes = new_figure(len(panels), title)
    for ax, (name, by_direction) in zip(axes, panels.items()):
        for offset, d in ((-0.2, "m2g"), (0.2, "g2m")):
            xs, ys, err = [], [], [[], []]
            for i, arm in enumerate(ARMS):
                r = by_direction[d][arm]
                if r["n"]:
                    xs.append(i + offset)
                    ys.append(100 * r["success"])
                    err[0].append(max(0.0, 100 * (r["success"] - r["ci95"][0])))  # rounding can dip below 0
                    err[1].append(max(0.0, 100 * (r["ci95"][1] - r["success"])))
            ax.bar(xs, ys, width=0.4, yerr=err, capsize=2, label=ARROW[d])
        ax.set_xticks(range(len(ARMS)), [ARM_LABELS[a] for a in ARMS], rotation=30, fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("success %")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def lines_figure(path, title, panels, xlabel, ylabel, log_x=False):
    """panels: {panel title: {line label: (xs, ys, style)}}; None ys are left out."""
    fig, axes = new_figure(len(panels), title)
    for ax, (panel, lines) in zip(axes, panels.items()):
        for label, (xs, ys, style) in lines.items():
            points = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if points:
                ax.plot(*zip(*points), style, label=label)
        if log_x:
            ax.set_xscale("log")
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    save_figure(fig, path)


def dose_response_panels(steered):
    """{run: {line: (alphas, %)}}: the share moved and the share moved to the target, per direction."""
    panels = {}
    for name, steer in steered.items():
        lines = {}
        for colour, d in enumerate(DIRECTIONS):  # one colour per direction: dashed moved, solid success
            curve = steer["dose_response"][d]
            alphas = [row["alpha"] for row in curve]
            for key, style in (("moved", "o--"), ("success", "o-")):
                lines[f"{ARROW[d]} {key}"] = (alphas, [None if row[key] is None else 100 * row[key] for row in curve],
                                              f"C{colour}{style}")
        panels[name] = lines
    return panels


def layer_panels(steered):
    """{run: {direction: (layers, success %)}} from the per-layer ablation."""
    return {name: {ARROW[d]: ([l["layer"] for l in s["layers"]],
                              [None if not l[d] or l[d]["success"] is None else 100 * l[d]["success"]
                               for l in s["layers"]], "o-") for d in DIRECTIONS}
            for name, s in steered.items()}
