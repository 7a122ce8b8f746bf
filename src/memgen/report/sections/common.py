"""What several sections share: panel names, why a run was not searched."""


def panel_names(ctx):
    """{run: its panel title}: a run whose ranking is at chance says so on its panel."""
    return {n: n if "skipped" in r["steer"] or ctx.above_chance(n) else f"{n} (ranking at chance)"
            for n, r in ctx.runs.items()}


def not_searched(steer):
    return "search off for this family" if steer["above_chance"] else "ranking at chance"
