"""The results the steering stages write, as typed records: one dataclass per results file, written and
read here only, each file carrying its schema (kind and version). A reader meets the shape it expects or
one line saying why not; a run that measured nothing says why in `skipped`.

Inside a record, the rates of an arm are plain dicts (memgen.evaluate.rates, with `changed` and
`specificity`); a null's are its summary over draws (memgen.experiment.null_summary)."""
from dataclasses import asdict, dataclass, field, fields

from .errors import UserError
from .io import read_json, write_json

# 2: matched nulls drawn many times, specificity, typed records; 3: comparisons at the chosen point, with ratios and
# controls; 4: the paper's method at the authors' grid (steer: paper_grid)
SCHEMA_VERSION = 4


@dataclass
class SteerRecord:
    """steer.json: the operating point chosen on val and its one measurement on test, with its nulls."""
    KIND = "steer"
    n_pairs: int
    chance: dict                       # {site: the ranking's permutation null}
    paper_point: dict
    rule: str
    skipped: str = None                # why nothing was steered (then the fields below stay empty)
    searched: bool = False
    above_chance: bool = False
    draws: int = 0                     # draws of each null
    n_prompts: dict = field(default_factory=dict)
    unsteered: dict = field(default_factory=dict)
    operating_point: dict = field(default_factory=dict)   # {direction: {point, val, within_other}}
    paper_grid_point: dict = field(default_factory=dict)  # the paper's method: the point its own grid chose, likewise
    test: dict = field(default_factory=dict)              # {setting: {direction: {arm or null: rates}}}
    dose_response: dict = field(default_factory=dict)
    layers: list = field(default_factory=list)


@dataclass
class MethodsRecord:
    """methods.json: each steering method at its own val-chosen candidate, on test, beside its nulls."""
    KIND = "methods"
    n_pairs: int
    site: str
    rule: str
    skipped: str = None
    draws: int = 0
    budget: dict = field(default_factory=dict)   # {method: candidates searched on val}
    n_prompts: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)     # {direction: {method: {candidate, val, rates, nulls}}}
    val: dict = field(default_factory=dict)      # {direction: every candidate's val row}
    scopes: dict = field(default_factory=dict)   # {scope other than all: {direction: {method: ...}}}, as test


@dataclass
class LocalizeRecord:
    """localize.json: on a planted model, how each unit score finds the planted units, and steering them."""
    KIND = "localize"
    n_pairs: int
    site: str
    n_planted: int
    n_units: int
    chance: dict                     # a random ranking's recall and AUROC band
    chance_at: dict
    ranking_above_chance: bool
    null: dict                       # the ranking's permutation null
    skipped: str = None
    scores: dict = field(default_factory=dict)            # {score: recall, AUROC, recall at k, top k by layer}
    planted_by_layer: list = field(default_factory=list)
    steering: dict = field(default_factory=dict)          # {direction: {point, oracle, ranked, random_neurons}}
    deletion: dict = field(default_factory=dict)          # {k, n, arms: {score or planted: mem_kept, gen_kept}, random}
    found: dict = field(default_factory=dict)             # {setting: {direction: {point, n, power_10_points, arms}}}


@dataclass
class ComparisonRecord:
    """metrics/intra|inter/...json: the neurons of each run steering every other run's model."""
    KIND = "comparison"
    kind: str          # intra (across replicates) or inter (across tasks)
    family: str
    runs: list         # the compared runs' names, rows and columns alike
    # at the paper's setting: {point, m2g, g2m: {source: {target: rates and by_group}}, ratio: {direction: {source:
    # {target: transfer ratio}}}, control: {direction: {target: matched random control}}, jaccard, jaccard_chance}
    paper: dict
    chosen: dict       # at each source's val-chosen point (point: {source: {direction: point}}), likewise
    task: str = None   # intra: the task
    rep: int = None    # inter: the replicate
    model: str = None  # inter: what the tasks' models share
    # {scope other than all (steer.scopes): {paper: ..., chosen: ...}}, each as above, the source's neurons selected
    # within the scope's layers (before_readout) or at its site (mlp_hidden; the points recorded before the move)
    scopes: dict = field(default_factory=dict)


RECORDS = {cls.KIND: cls for cls in (SteerRecord, MethodsRecord, LocalizeRecord, ComparisonRecord)}


def write_record(path, record):
    write_json(path, {"schema": {"kind": record.KIND, "version": SCHEMA_VERSION}, **asdict(record)})


def read_record(path, cls):
    """The record in a results file; one line if its schema is not the one this code reads."""
    return record_of(read_json(path), cls, path)


def record_of(obj, cls, where):
    """The record in a JSON object (a results file's, or one gathered into a side sweep's file at `where`)."""
    schema = obj.get("schema") if isinstance(obj, dict) else None
    if schema != {"kind": cls.KIND, "version": SCHEMA_VERSION}:
        found = "no schema" if not isinstance(schema, dict) else f"{schema.get('kind')} v{schema.get('version')}"
        raise UserError(f"{where}: results of {found}, this code reads {cls.KIND} v{SCHEMA_VERSION} "
                        f"(re-run the stage that makes it: dvc repro)")
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in obj.items() if k in names})
    except TypeError as err:  # a required field is missing
        raise UserError(f"{where}: malformed {cls.KIND} results ({err}); re-run the stage that makes it") from None
