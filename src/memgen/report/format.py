"""How numbers read in the report's tables."""
from ..experiment import NULL_NAMES, beats
from ..steering import ADAPTIVE, TARGETED

ARROW = {"m2g": "M->G", "g2m": "G->M"}


def pct(x, digits=1):
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def rate_cell(r, key="success"):
    """'12.3 [8.1, 18.0] (k/n)' from a rates dict (key: success or route); '-' when nothing was measured."""
    if not r or "skipped" in r or not r.get("n"):
        return "-"
    k, ci = (r["k"], r["ci95"]) if key == "success" else (r["route_k"], r["route_ci95"])
    return f"{pct(r[key])} [{pct(ci[0])}, {pct(ci[1])}] ({k}/{r['n']})"


def p_cell(p):
    """A p-value in two significant digits; '-' where it was not computed."""
    return "-" if p is None else f"{p:.2g}"


def point_cell(point):
    """A point in a few words: 'prompt_end, resid_post, discriminant, topN 0.1, alpha adaptive'."""
    alpha = point["alpha"] if point["alpha"] == ADAPTIVE else f"{point['alpha']:g}"
    return f"{point['schedule']}, {point['site']}, {point['vector']}, topN {point['topN']:g}, alpha {alpha}"


def counted_nulls(tests):
    """{null: its summary} of the nulls that count as evidence at one point: measured, and able to fail."""
    return {name: r for name, r in tests.items() if name in NULL_NAMES and r.get("counted") and "skipped" not in r
            and r.get("can_fail") is not False}


def flagged_nulls(tests):
    """The nulls at one point that changed no output on val: they cannot fail here."""
    return [name for name, r in tests.items() if name in NULL_NAMES and r.get("can_fail") is False]


def strongest_null(tests):
    """(name, summary) of the counted null with the highest mean success at one point, or None."""
    nulls = counted_nulls(tests)
    return max(nulls.items(), key=lambda item: item[1]["success"]) if nulls else None


def beats_every_null(tests):
    """Whether the targeted steer beats every counted null (empirical p < 0.05), and there is one to beat."""
    nulls = counted_nulls(tests)
    return bool(nulls) and all(beats(tests[TARGETED], r) for r in nulls.values())


def null_cell(r):
    """A null's mean success over its draws, the central 95 % of them, and the targeted steer's empirical p."""
    if not r or "skipped" in r:
        return r.get("skipped", "-") if r else "-"
    if not r.get("n"):
        return "-"
    cell = f"{pct(r['success'])} [{pct(r['ci95'][0])}, {pct(r['ci95'][1])}], p {p_cell(r['p_empirical'])}"
    return cell + ("; cannot fail here" if r.get("can_fail") is False else "")
