"""Where the effect lives: each steering measurement with every layer in play, again with the last block left
alone (its output is the readout's input), and at the MLP's hidden units, each beside its own matched nulls."""
from ...steering import DIRECTIONS, SCOPES, TARGETED, scoped_setting
from .. import prose
from ..document import table
from ..format import ARROW, beats_every_null, p_cell, pct, rate_cell, strongest_null

SCOPE_NAMES = {"all": "all layers", "before_readout": "before the readout", "mlp_hidden": "the MLP's hidden units"}
SCOPE_PHRASES = {"all": "with every layer", "before_readout": "before the readout", "mlp_hidden": "at the MLP's hidden units"}
SETTING_NAMES = {"paper_grid": "the paper's method, the authors' grid", "paper": "the paper's setting",
                 "chosen": "ours, chosen on val"}


def scopes_of(steer):
    """The scopes a run's test measurements were made in, "all" first."""
    return [s for s in SCOPES if scoped_setting("chosen", s) in steer["test"]]


def scope_section(ctx):
    """Per run, direction and setting: success in each scope beside the strongest counted null's mean and the
    targeted steer's empirical p against it; then a sentence per run."""
    rows, sentences, shown = [], [], []
    for name, steer in ctx.steered.items():
        scopes = scopes_of(steer)
        if len(scopes) < 2:
            continue
        shown = shown if len(shown) >= len(scopes) else scopes
        for d in DIRECTIONS:
            for setting in (s for s in SETTING_NAMES if s in steer["test"]):
                cells = [c for scope in scopes for c in scope_cells(steer["test"][scoped_setting(setting, scope)][d])]
                rows.append([name, ARROW[d], SETTING_NAMES[setting], *cells])
        sentences.append(("p", where_it_lives(ctx, name, steer, scopes)))
    if not rows:
        return []
    columns = ["run", "direction", "setting", *[c for scope in shown for c in (
        f"{SCOPE_NAMES[scope]}: success", "strongest null (mean %, p)")]]
    rows = [row + ["-"] * (len(columns) - len(row)) for row in rows]
    return [("h2", "Where the effect lives: all layers, the last block left alone, the MLP's hidden units"),
            ("p", prose.SCOPE), table(columns, rows, merged=2), *sentences]


def scope_cells(tests):
    """(success, the strongest counted null's mean and p, with a mark where the steer beats every null)."""
    if not tests[TARGETED].get("n"):
        return ["-", "-"]
    strongest = strongest_null(tests)
    null = "no null can fail here" if strongest is None else \
        f"{pct(strongest[1]['success'])}, p {p_cell(strongest[1]['p_empirical'])}"
    return [rate_cell(tests[TARGETED]) + (" (beats every null)" if beats_every_null(tests) else ""), null]


def where_it_lives(ctx, name, steer, scopes):
    """One sentence: at the chosen point, each direction's success in every scope."""
    parts = []
    for d in DIRECTIONS:
        found = [(scope, steer["test"][scoped_setting("chosen", scope)][d][TARGETED]) for scope in scopes]
        if found[0][1].get("n"):
            parts.append(f"{ARROW[d]} " + ", ".join(f"{pct(r['success'])} % {SCOPE_PHRASES[scope]}" for scope, r in found))
    note = "" if ctx.above_chance(name) else " (ranking at chance: not evidence)"
    return f"{name}, at the chosen point: " + "; ".join(parts) + "." + note
