"""Where the effect lives: each steering measurement with every layer in play and again with the last block
left alone (its output is the readout's input), each beside its own matched nulls."""
from ...steering import DIRECTIONS, TARGETED, scoped_setting
from .. import prose
from ..compute import SETTINGS
from ..document import table
from ..format import ARROW, beats_every_null, p_cell, pct, rate_cell, strongest_null

SCOPED = "before_readout"


def scope_section(ctx):
    """Per run, direction and setting: success with all layers and before the readout, the strongest counted
    null's mean and the targeted steer's empirical p against it; then a sentence per run."""
    rows, sentences = [], []
    for name, steer in ctx.steered.items():
        if not any(scoped_setting(s, SCOPED) in steer["test"] for s in SETTINGS):
            continue
        for d in DIRECTIONS:
            for setting in SETTINGS:
                cells = [scope_cells(steer["test"][key][d]) for key in (setting, scoped_setting(setting, SCOPED))]
                rows.append([name, ARROW[d], setting, *cells[0], *cells[1]])
        sentences.append(("p", where_it_lives(ctx, name, steer)))
    if not rows:
        return []
    columns = ["run", "direction", "setting", "all layers: success", "strongest null (mean %, p)",
               "before the readout: success", "strongest null (mean %, p)"]
    return [("h2", "Where the effect lives: all layers, and the last block left alone"), ("p", prose.SCOPE),
            table(columns, rows, merged=2), *sentences]


def scope_cells(tests):
    """(success, the strongest counted null's mean and p, with a mark where the steer beats every null)."""
    if not tests[TARGETED].get("n"):
        return ["-", "-"]
    strongest = strongest_null(tests)
    null = "no null can fail here" if strongest is None else \
        f"{pct(strongest[1]['success'])}, p {p_cell(strongest[1]['p_empirical'])}"
    return [rate_cell(tests[TARGETED]) + (" (beats every null)" if beats_every_null(tests) else ""), null]


def where_it_lives(ctx, name, steer):
    """One sentence: at the chosen point, how much of each direction's success survives without the last block."""
    parts = []
    for d in DIRECTIONS:
        full, scoped = (steer["test"][key][d][TARGETED] for key in ("chosen", scoped_setting("chosen", SCOPED)))
        if full.get("n"):
            parts.append(f"{ARROW[d]} {pct(full['success'])} % with every layer, {pct(scoped['success'])} % before "
                         "the readout")
    note = "" if ctx.above_chance(name) else " (ranking at chance: not evidence)"
    return f"{name}, at the chosen point: " + "; ".join(parts) + "." + note
