"""Model size, measured (the paper's open question 4): a side sweep of the model's depth and width on one task,
written by experiments/size_sweep.py into metrics/sweeps/size.json; the paper's method by size."""
from ...steering import DIRECTIONS
from ..document import table
from ..figures import lines_figure
from ..format import ARROW, rate_cell

SERIES = {"paper_grid": "the authors' grid, all layers", "paper_grid_before_readout": "the authors' grid, before the readout",
          "paper": "the paper's setting, all layers", "paper_before_readout": "the paper's setting, before the readout"}
STYLES = {"paper_grid": "o-", "paper_grid_before_readout": "o--", "paper": "s-", "paper_before_readout": "s--"}


def size_section(ctx):
    sweep = ctx.sweeps.get("size")
    if sweep is None:
        return []
    blocks = [("h2", "Model size (a side sweep)")]
    if not sweep["sizes"]:
        return blocks + [("p", f"Not run yet: `{sweep['command']}` writes metrics/sweeps/size.json.")]
    rows = [[f"{s['n_layer']} x {s['n_embd']}", f"{s['parameters']:,}", s["pairs"], rho_cell(s),
             *[rate_cell(s["test"].get(setting, {}).get(d)) for setting in ("paper_grid", "paper") for d in DIRECTIONS],
             *[rate_cell(s["test"].get(f"{setting}_before_readout", {}).get(d)) for setting in ("paper_grid",)
               for d in DIRECTIONS], f"{s['seconds'] / 60:.1f}"] for s in sweep["sizes"]]
    columns = ["layers x width", "parameters", "pairs", "max |rho| vs null p95 (site)",
               *[f"{name}: {ARROW[d]} %" for name in ("authors' grid", "paper's setting") for d in DIRECTIONS],
               *[f"authors' grid before the readout: {ARROW[d]} %" for d in DIRECTIONS], "minutes"]
    size_figure(ctx.figures / "size.png", sweep)
    return blocks + [("p", sweep_text(sweep)), table(columns, rows), ("img", "figures/size.png",
                                                                      "the paper's method by model size")]


def sweep_text(sweep):
    return (f"The paper's method (as in the first table) on {sweep['family']}/{sweep['task']}, replicate "
            f"{sweep['rep']}, one model per size, every other setting as the default run ({sweep['changes']}); one seed: "
            f"the spread between seeds is not known. Made by `{sweep['command']}` in {sweep['seconds'] / 60:.0f} min "
            "on the machine that ran it.")


def rho_cell(size):
    if size["max_abs_rho"] is None:
        return "no pairs"
    return f"{size['max_abs_rho']:.3f} vs {size['null_p95']:.3f} ({size['site']})"


def size_figure(path, sweep):
    """Success by parameter count, one panel per direction, a line per setting and scope."""
    xs = [s["parameters"] for s in sweep["sizes"]]
    panels = {ARROW[d]: {label: (xs, [success(s, setting, d) for s in sweep["sizes"]], STYLES[setting])
                         for setting, label in SERIES.items()} for d in DIRECTIONS}
    lines_figure(path, f"the paper's method by model size ({sweep['family']}/{sweep['task']})", panels,
                 "parameters", "test success %", log_x=True)


def success(size, setting, d):
    r = size["test"].get(setting, {}).get(d)
    return None if not r or r.get("success") is None else 100 * r["success"]

