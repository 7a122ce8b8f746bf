"""The report: one document (headings, paragraphs, tables, images) rendered as Markdown and HTML,
and the figures it shows. The report stage gathers the numbers; this module only lays them out."""
import html

from .plots import new_figure, save_figure
from .steering import DIRECTIONS

CONDITIONS = ("targeted", "random", "random_magnitude", "bottom_rho", "random_sign")
CONDITION_NAMES = {
    "targeted": "targeted",
    "random": "random (authors')",
    "random_magnitude": "random neurons, same |NMD|",
    "bottom_rho": "bottom-|rho|, own NMD",
    "random_sign": "top neurons, random signs",
}
ARROW = {"m2g": "M->G", "g2m": "G->M"}

# The paper's headline numbers (DESIGN.md section 1).
PAPER = {"m2g": (0.659, 0.923), "g2m": (0.193, 0.676)}
PAPER_PAIR_YIELD = {"incontext": 0.11, "arithmetic": 0.085}


def pct(x, digits=1):
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def rate_cell(r):
    """'12.3 [8.1, 18.0] (k/n)' from a rates dict; '-' when nothing was measured."""
    if not r or "skipped" in r or not r.get("n"):
        return "-"
    lo, hi = r["ci95"]
    return f"{pct(r['success'])} [{pct(lo)}, {pct(hi)}] ({r['k']}/{r['n']})"


def separated(inner, outer):
    """Does the 95 % interval of `inner` lie wholly above that of `outer`?"""
    return bool(inner and outer and inner.get("n") and outer.get("n") and inner["ci95"][0] > outer["ci95"][1])


# --- rendering -----------------------------------------------------------------------------------

def to_markdown(blocks):
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind == "h3":
            out.append(f"### {block[1]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(h.replace("|", "\\|") for h in header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        out.append("")
    return "\n".join(out)


def to_html(blocks, title):
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(block[1]).replace('`', '')}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                           for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(f'<figure><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}">'
                        f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
             "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f0f0f0}"
             "img{max-width:100%}figure{margin:1em 0}figcaption{color:#555;font-size:0.9em}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# --- figures -------------------------------------------------------------------------------------

def controls_figure(path, steered):
    """Targeted vs each control with 95 % intervals: one panel per steered run. steered: {name: steer.json}."""
    fig, axes = new_figure(len(steered), "Success rate: targeted steering vs controls (95 % Wilson intervals)")
    for ax, (name, steer) in zip(axes, steered.items()):
        for offset, d in ((-0.2, "m2g"), (0.2, "g2m")):
            xs, ys, err = [], [], [[], []]
            for i, cond in enumerate(CONDITIONS):
                r = steer[cond][d]
                if r["n"]:
                    xs.append(i + offset)
                    ys.append(100 * r["success"])
                    err[0].append(max(0.0, 100 * (r["success"] - r["ci95"][0])))  # rounding can dip below 0
                    err[1].append(max(0.0, 100 * (r["ci95"][1] - r["success"])))
            ax.bar(xs, ys, width=0.4, yerr=err, capsize=2, label=ARROW[d])
        ax.set_xticks(range(len(CONDITIONS)), ["targeted", "random", "rand |NMD|", "bottom rho", "rand sign"],
                      rotation=30, fontsize=8)
        ax.set_ylabel("success %")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def lines_figure(path, title, panels, xlabel, ylabel):
    """panels: {panel title: {line label: (xs, ys, style)}}; None ys are left out."""
    fig, axes = new_figure(len(panels), title)
    for ax, (panel, lines) in zip(axes, panels.items()):
        for label, (xs, ys, style) in lines.items():
            points = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if points:
                ax.plot(*zip(*points), style, label=label)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    save_figure(fig, path)


def direction_lines(runs, key, x_key):
    """{run: {direction: (xs, success %)}} lines from each steer.json's list under `key`."""
    return {name: {ARROW[d]: ([row[x_key] for row in steer[key]],
                              [None if not row[d] or row[d]["success"] is None else 100 * row[d]["success"]
                               for row in steer[key]], "o-") for d in DIRECTIONS}
            for name, steer in runs.items()}
