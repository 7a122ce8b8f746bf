"""The report's sections, one function each: (context) -> blocks, by topic in the modules beside this one.
The context holds every metric file the pipeline wrote, read once (see report/__init__.py)."""
from .answer import against_paper_section, answer_section
from .paper_method import paper_method_section
from .consistency import comparison_section, replicate_section
from .planted import planted_section
from .scope import scope_section
from .size import size_section
from .setup import behaviour_section, data_section, heatmaps_section, notes_section, predict_section, setup_section
from .steering import (controls_section, dose_section, layers_section, methods_section, operating_point_section,
                       other_section, search_section, two_ways_section)

SECTIONS = (paper_method_section, answer_section, replicate_section, scope_section, size_section, setup_section,
            data_section, behaviour_section, operating_point_section, lambda ctx: controls_section(ctx, "chosen"),
            lambda ctx: controls_section(ctx, "paper"),
            two_ways_section, dose_section, layers_section, other_section, search_section,
            lambda ctx: comparison_section(ctx, "intra"), lambda ctx: comparison_section(ctx, "inter"),
            predict_section, methods_section, planted_section, against_paper_section, heatmaps_section, notes_section)
