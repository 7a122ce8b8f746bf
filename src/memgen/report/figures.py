"""The report's figures (matplotlib, PNG without timestamps, so the same data gives the same bytes).

A panel is either data or a string: why it holds none ("no MEM/GEN pairs: not steered"), written
inside the panel rather than left as an empty frame."""
import textwrap

from ..plots import new_figure, save_figure
from ..steering import DIRECTIONS, TARGETED
from .format import ARROW

ARMS = (TARGETED, "random_neurons", "random_direction", "random_sign", "authors_baseline")  # the steer stage's
ARM_LABELS = {TARGETED: "targeted", "random_neurons": "rand neurons", "random_direction": "rand direction",
              "random_sign": "rand sign", "authors_baseline": "authors' rand"}


def why_empty(ax, text):
    ax.text(0.5, 0.5, textwrap.fill(text, 32), ha="center", va="center", transform=ax.transAxes, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def note(ax, text):
    """Small print inside the panel, along its top left."""
    ax.text(0.02, 0.97, "\n".join(textwrap.fill(line, 48) for line in text.split("\n")), ha="left", va="top",
            transform=ax.transAxes, fontsize=7, color="#555")


def unmeasured(tests, first=TARGETED):
    """Why a direction draws nothing: no test probe showed its source behaviour. tests: {direction: {arm: rates}},
    every arm on the probes of `first`."""
    return [f"{ARROW[d]}: no test probe shows the source behaviour" for d in DIRECTIONS if not tests[d][first]["n"]]


def errors(rates_list):
    """Asymmetric error bars (%, below and above) from the rates' 95 % intervals (none where nothing was measured)."""
    # rounding can put an interval's end a hair past the share itself: clipped at 0
    measured = [r.get("success") is not None for r in rates_list]
    return [[max(0.0, 100 * (r["success"] - r["ci95"][0])) if m else 0.0 for r, m in zip(rates_list, measured)],
            [max(0.0, 100 * (r["ci95"][1] - r["success"])) if m else 0.0 for r, m in zip(rates_list, measured)]]


def controls_figure(path, panels, title, arms=ARMS, labels=ARM_LABELS, xlabel="neurons moved"):
    """Success of each arm with 95 % intervals, both directions, one panel per run; by default the targeted
    steer vs each control. panels: {name: {direction: {arm: rates}} or why it is empty}; the first arm's
    probes are every arm's (an arm measured on none draws no bar)."""
    fig, axes = new_figure(len(panels), title)
    for ax, (name, by_direction) in zip(axes, panels.items()):
        ax.set_title(name, fontsize=10)
        if isinstance(by_direction, str):
            why_empty(ax, by_direction)
            continue
        for colour, (offset, d) in enumerate(((-0.2, "m2g"), (0.2, "g2m"))):
            rates = [by_direction[d].get(arm, {}) for arm in arms]
            if rates[0]["n"]:
                ax.bar([i + offset for i in range(len(arms))], [100 * r["success"] if r.get("n") else 0 for r in rates],
                       width=0.4, yerr=errors(rates), capsize=2, color=f"C{colour}",
                       label=f"{ARROW[d]} (n={rates[0]['n']})")
        missing = unmeasured(by_direction, arms[0])
        if missing:  # under the title, clear of the bars and the legend
            ax.set_title("\n".join([name, *missing]), fontsize=9)
        ax.set_xticks(range(len(arms)), [labels[a] for a in arms], rotation=30, fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success % (95 % CI)")
        ax.legend(fontsize=8, loc="upper right")
    save_figure(fig, path)


def lines_figure(path, title, panels, xlabel, ylabel, log_x=False, ylim=(0, 105), notes=None):
    """panels: {panel title: {line label: (xs, ys, style[, (below, above)])} or why it is empty};
    None ys are left out; notes: {panel title: small print}."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    fig, axes = new_figure(len(panels), title)
    for ax, (panel, lines) in zip(axes, panels.items()):
        ax.set_title(panel, fontsize=10)
        if isinstance(lines, str):
            why_empty(ax, lines)
            continue
        for label, (xs, ys, style, *err) in lines.items():
            keep = [i for i, y in enumerate(ys) if y is not None]
            if not keep:
                continue
            pick = lambda values: [values[i] for i in keep]  # noqa: E731
            yerr = [pick(err[0][0]), pick(err[0][1])] if err else None
            ax.errorbar(pick(xs), pick(ys), yerr=yerr, fmt=style, capsize=2 if err else 0, label=label)
        if log_x:  # the ladder's own values as ticks, not powers of ten
            ax.set_xscale("log")
            ax.set_xticks(sorted({x for xs, *_ in lines.values() for x in xs}))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter("")
        else:  # every x of the panel on the axis, also where nothing was measured (the notes say why)
            ax.set_xlim(min(x for xs, *_ in lines.values() for x in xs) - 0.3,
                        max(x for xs, *_ in lines.values() for x in xs) + 0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(*ylim)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if notes and notes.get(panel):
            note(ax, notes[panel])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    save_figure(fig, path)


def dose_response_panels(steered):
    """{run: {line: (alphas, %)}}: the share moved and the share moved to the target, per direction; and
    {run: why a direction draws nothing}."""
    panels, notes = {}, {}
    for name, steer in steered.items():
        lines = {}
        for colour, d in enumerate(DIRECTIONS):  # one colour per direction: dashed moved, solid success
            curve = steer["dose_response"][d]
            alphas = [row["alpha"] for row in curve]
            for key, style in (("moved", "o--"), ("success", "o-")):
                lines[f"{ARROW[d]} {key}"] = (alphas, [None if row[key] is None else 100 * row[key] for row in curve],
                                              f"C{colour}{style}")
        panels[name] = lines
        notes[name] = "\n".join(unmeasured(steer["test"]["chosen"]))
    return panels, notes


def layer_panels(steered):
    """{run: {direction: (layers, success %, style, 95 % error bars)}} from the per-layer ablation, and
    {run: the layers where neither direction selected a neuron, the directions that draw nothing}."""
    panels, notes = {}, {}
    for name, s in steered.items():
        layers = [l["layer"] for l in s["layers"]]
        panels[name] = {}
        for colour, d in enumerate(DIRECTIONS):
            measured = [l[d] if l[d] and l[d]["n"] else None for l in s["layers"]]
            filled = [r or {"success": 0.0, "ci95": [0.0, 0.0]} for r in measured]  # placeholders, left out as None
            panels[name][ARROW[d]] = (layers, [r and 100 * r["success"] for r in measured], f"C{colour}o-",
                                      errors(filled))
        empty = [l["layer"] for l in s["layers"] if not any(l[f"n_neurons_{d}"] for d in DIRECTIONS)]
        why = [f"no selected neuron at layer{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty))}"] if empty else []
        notes[name] = "\n".join(why + unmeasured(s["test"]["chosen"]))
    return panels, notes
