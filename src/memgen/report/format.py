"""How numbers read in the report's tables."""
from ..steering import ADAPTIVE

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


def separated(inner, outer):
    """Does the 95 % interval of `inner` lie wholly above that of `outer`?"""
    return bool(inner and outer and inner.get("n") and outer.get("n") and inner["ci95"][0] > outer["ci95"][1])


def point_cell(point):
    """A point in a few words: 'prompt_end, resid_post, discriminant, topN 0.1, alpha adaptive'."""
    alpha = point["alpha"] if point["alpha"] == ADAPTIVE else f"{point['alpha']:g}"
    return f"{point['schedule']}, {point['site']}, {point['vector']}, topN {point['topN']:g}, alpha {alpha}"
