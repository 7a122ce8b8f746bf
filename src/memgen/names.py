"""The names the pipeline, its params and its command line share, in a module that imports nothing
(so `memgen --help` answers without loading torch): directions, schedules, vectors, sites."""
TO_GEN, TO_MEM = "m2g", "g2m"
DIRECTIONS = (TO_GEN, TO_MEM)
SCHEDULE_NAMES = ("every_step", "prompt_end", "prompt_end_and_first")  # steering.SCHEDULES says what each means
VECTORS = ("nmd", "discriminant")  # what neurons move along: NMD (the paper) or a linear classifier's direction
ADAPTIVE = "adaptive"  # per prompt: the smallest alpha of a ladder at which its output changes
SITE_NAMES = ("mlp_in", "resid_post")  # every family maps each name to one module per layer (families/)
UNIT_SITE = "mlp_hidden"  # the MLP's hidden units after the activation (the classical neurons); a family may map it
KNOWN_SITES = SITE_NAMES + (UNIT_SITE,)
