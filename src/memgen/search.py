"""The operating point of an intervention: the grid it is chosen from (schedule x site x vector x
topN x alpha, from the top-level knobs), the fixed points beside it, and the arm it makes for the
experiment engine (memgen.experiment, which holds the selection rule). Val chooses; test measures once.
"""
import itertools
from dataclasses import asdict, dataclass, replace

from .errors import UserError
from .experiment import NEURON_NULLS, Arm, Plan
from .params import is_number
from .steering import ADAPTIVE, SCHEDULES, SCOPE_SITE, SCOPES, TARGETED, VECTORS, scope_layers, select_top, targeted

KNOBS = ("schedule", "site", "vector", "topN", "alpha")  # top-level params, in the grid's order


@dataclass(frozen=True)
class Point:
    schedule: str
    site: str
    vector: str
    topN: float
    alpha: object  # a number, or ADAPTIVE

    def as_dict(self):
        return asdict(self)

    def label(self):
        alpha = self.alpha if self.alpha == ADAPTIVE else f"{self.alpha:g}"
        return f"{self.schedule}, {self.site}, {self.vector}, topN {self.topN:g}, alpha {alpha}"


def _check_alpha(value, key):
    if value != ADAPTIVE and not (is_number(value) and value > 0):
        raise UserError(f"params: '{key}' must hold numbers > 0 or '{ADAPTIVE}', got {value!r}")
    return value if value == ADAPTIVE else float(value)


def _check_top_n(value, key):
    if not (is_number(value) and 0 < value <= 1):
        raise UserError(f"params: '{key}' must hold fractions in (0, 1], got {value!r}")
    return float(value)


def _check_name(allowed):
    def check(value, key):
        if value not in allowed:
            raise UserError(f"params: '{key}' must hold values among {', '.join(allowed)}, got {value!r}")
        return value
    return check


def _checks(family):
    return {"schedule": _check_name(tuple(SCHEDULES)), "site": _check_name(tuple(family.sites)),
            "vector": _check_name(VECTORS), "topN": _check_top_n, "alpha": _check_alpha}


def read_grid(params, family, narrow=None):
    """The points the operating point is chosen from: every combination of the top-level knobs,
    each one value or a list. narrow (families.<f>.steer.grid, a params section or None): for each
    knob it names, the values the family searches among the knob's own (a CPU-sized grid); where
    none of them is among the knob's values (a sweep set it elsewhere with -S), the knob's own hold."""
    checks = _checks(family)
    values = {k: read_knob(params, k, family) for k in KNOBS}
    for k in narrow.data if narrow is not None else ():
        if k not in KNOBS:
            raise UserError(f"params: '{narrow.prefix}' names {k!r}, which is not a knob ({', '.join(KNOBS)})")
        wanted = [checks[k](v, f"{narrow.prefix}.{k}") for v in narrow.one_or_list(k)]
        values[k] = [v for v in values[k] if v in wanted] or values[k]
    return [Point(*combo) for combo in itertools.product(*(values[k] for k in KNOBS))]


def read_knob(params, knob, family):
    """One knob's values (top-level, or a section's key of the knob's name), checked: always a list."""
    return [_checks(family)[knob](v, params.dotted(knob)) for v in params.one_or_list(knob)]


def read_point(section, family, default_site=None):
    """One fixed point from a params section {schedule, site, vector, topN, alpha} (site optional
    where a default is given)."""
    checks = _checks(family)
    values = {k: section.raw(k, default_site if k == "site" else ...) for k in KNOBS}
    return Point(*(checks[k](values[k], f"{section.prefix}.{k}") for k in KNOBS))


def read_narrow(family_steer):
    """families.<f>.steer.grid as read_grid takes it: a params section, or None (the whole grid)."""
    return family_steer.section("grid") if family_steer.raw("grid", None) is not None else None


def above_chance_at(neurons, points):
    """Whether some neuron beats the permutation null at a site the points steer at ({site: SiteNeurons})."""
    return any(neurons[site].above_chance for site in sorted({p.site for p in points}))


def read_paper_point(params, family):
    """The paper's own setting (steer.paper), at the family's paper site."""
    return read_point(params.section("steer").section("paper"), family, default_site=family.paper_site)


def read_paper_grid(params, family):
    """The authors' own search (steer.paper_grid: topN x alpha), at the paper's schedule, site and vector."""
    paper, grid = read_paper_point(params, family), params.section("steer").section("paper_grid")
    checks = _checks(family)
    top_ns = [checks["topN"](v, f"{grid.prefix}.topN") for v in grid.one_or_list("topN")]
    alphas = [checks["alpha"](v, f"{grid.prefix}.alpha") for v in grid.one_or_list("alpha")]
    return [Point(paper.schedule, paper.site, paper.vector, t, a) for t in top_ns for a in alphas]


STREAM_MODES = ("accumulate", "increments")


def read_paper_stream(params):
    """steer.paper_stream: how the paper's method shifts a residual-stream site: accumulate (the authors' code:
    each layer adds alpha x NMD and the stream carries the sum down) or increments (ours: each neuron sits at its
    own value at every shifted layer). True for accumulate."""
    mode = params.section("steer").raw("paper_stream", "accumulate")
    if mode not in STREAM_MODES:
        raise UserError(f"params: 'steer.paper_stream' must be one of {', '.join(STREAM_MODES)}, got {mode!r}")
    return mode == "accumulate"


def read_scopes(steer):
    """steer.scopes: where each test measurement is also made; "all" (every layer) always, first."""
    scopes = steer.list("scopes", min_len=0, unique=True)
    for scope in scopes:
        if scope not in SCOPES:
            raise UserError(f"params: 'steer.scopes' must hold values among {', '.join(SCOPES)}, got {scope!r}")
    return ["all"] + [s for s in scopes if s != "all"]


def read_search(family_steer):
    """families.<f>.steer.search: true (choose the point on val where the ranking is above chance), false
    (the paper's setting only), or "always" (choose on val even at chance: exploration, still no evidence)."""
    mode = family_steer.raw("search")
    if mode not in (True, False, "always"):
        raise UserError(f"params: '{family_steer.prefix}.search' must be true, false or always, got {mode!r}")
    return mode


def searches(mode, above_chance):
    """Whether a run with this search mode and ranking chooses its point on val."""
    return mode == "always" or (mode is True and above_chance)


def read_ladder(params):
    """steer.alpha_ladder: the rising alphas the adaptive strength climbs."""
    ladder = params.section("steer").numbers("alpha_ladder")
    if any(a <= 0 for a in ladder) or ladder != sorted(set(ladder)):
        raise UserError(f"params: 'steer.alpha_ladder' must rise strictly through numbers > 0, got {ladder}")
    return ladder


def vector_and_score(point, neurons):
    """What the point moves neurons along, and what it ranks them by: NMD and |rho| (the paper), or
    the discriminant direction and the size of each neuron's shift along it."""
    site = neurons[point.site]
    return (site.nmd, site.rho) if point.vector == "nmd" else (site.discriminant, site.discriminant)


def intervention(point, neurons, direction, layers=None):
    """The targeted intervention at a point: the top-N neurons by the point's score (from `layers` only,
    None: all), each moved along its vector towards the direction's target."""
    vector, score = vector_and_score(point, neurons)
    return targeted(vector, select_top(score, point.topN, layers), direction)


def steer_arm(points, neurons, scope="all", accumulate=False):
    """The steer stage's arm: at a point, the top-N neurons by its score (within the scope's layers) moved
    along its vector, beside the nulls matched to a neuron set. accumulate: at a residual-stream site every
    layer adds its whole shift (the paper's method as the authors' code runs it)."""
    n_layers = next(iter(neurons.values())).nmd.shape[0]
    layers, site = scope_layers(scope, n_layers), SCOPE_SITE.get(scope)

    def plan(p, d):
        p = p if site is None else replace(p, site=site)
        return Plan(intervention(p, neurons, d, layers), p.site, p.schedule, p.alpha, n_layers, accumulate=accumulate)
    # the authors' baseline (reported, never counted) beside every layer only: a scope's evidence is its counted nulls
    nulls = NEURON_NULLS if scope == "all" else tuple(n for n in NEURON_NULLS if n.counted)
    return Arm(TARGETED, tuple(points), plan, nulls)


def point_of(row):
    return Point(*(row[k] for k in KNOBS))
