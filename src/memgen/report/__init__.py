"""The report: every metric file the pipeline wrote, read once into a context, laid out section by
section (sections.py) as one document rendered as Markdown and HTML, with its figures."""
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io import read_json, require_keys
from ..paths import PLANTED, comparison_path, metrics_dir
from ..results import ComparisonRecord, LocalizeRecord, MethodsRecord, SteerRecord, read_record, record_of
from ..sites import SITE_NAMES
from .compute import summary
from .document import to_html, to_markdown
from .headline import headline
from .sections import SECTIONS

# What each run's metric files must hold for the report to read them.
RUN_FILES = {"train": ["chosen_step"], "probe": ["mem", "gen", "other", "pair_yield", "n_pairs"],
             "neurons": ["n_pairs", "sites"], "search": ["rule"], "predict": ["n_pairs"]}
RUN_RECORDS = {"steer": SteerRecord}  # typed results, schema-checked as they are read
SIDE_RECORDS = {"methods": MethodsRecord}  # on runs.side_replicates only

PLANTED_FILES = {"plant": ["n_units", "rule", "plant"], "probe": ["n_pairs"]}
SWEEPS = Path("metrics") / "sweeps"  # side sweeps' results, each written by its script under experiments/


@dataclass
class Context:
    params: object
    families: list
    tasks: list
    reps: list
    runs: dict          # {family/task/r<k>: {file stem: its JSON}}
    data: dict          # {task: the data stage's overlap counts}
    intra: dict
    inter: dict
    figures: Path
    planted: dict = field(default_factory=dict)  # {family/planted/r<k>/<task>: {plant, probe, localize}}
    planted_side: dict = field(default_factory=dict)  # the same from side runs (metrics/sweeps/), + their command
    sweeps: dict = field(default_factory=dict)   # {name: metrics/sweeps/<name>.json}: side sweeps (experiments/)
    sites: tuple = SITE_NAMES

    @property
    def steered(self):
        return {n: r["steer"] for n, r in self.runs.items() if "skipped" not in r["steer"]}

    @property
    def searches(self):
        return {n: r["search"] for n, r in self.runs.items() if "skipped" not in r["steer"]}

    def above_chance(self, name):
        """Whether any neuron of the run beats the permutation null's p95 at a site the steer stage searches
        (as it decided; a run without pairs is not)."""
        return bool(self.runs[name]["steer"].get("above_chance"))

    def max_other(self):
        return self.params.section("steer").raw("max_other")

    def rule(self):
        return next((r["steer"]["rule"] for r in self.runs.values() if "rule" in r["steer"]), "-")

    def training_parts(self):
        parts = []
        for family in self.families:
            fp = self.params.section("families").section(family)
            share = fp.section("train").raw("mem_share", None)
            mix = "the data's own mix" if share is None else "mem_share " + (
                ", ".join(f"{t} {v}" for t, v in share.items()) if isinstance(share, dict) else str(share))
            lora = fp.section("model").raw("lora", None)
            if lora:  # an adapter family
                mix += f"; LoRA r={lora['r']} on {', '.join(lora['target_modules'])}"
            parts.append(f"{family}: {mix}")
        return parts


def read_context(params, figures):
    rs = params.section("runs")
    families, tasks, reps = rs.list("families"), rs.list("tasks"), rs.list("replicates")
    side = rs.list("side_replicates", min_len=0)
    runs = {}
    for f in families:
        for t in tasks:
            for r in reps:
                mdir = metrics_dir(f, t, r, t)
                runs[f"{f}/{t}/r{r}"] = {
                    **{name: require_keys(read_json(mdir / f"{name}.json"), keys, mdir / f"{name}.json")
                       for name, keys in RUN_FILES.items()},
                    **{name: record_dict(read_record(mdir / f"{name}.json", cls)) for name, cls in RUN_RECORDS.items()},
                    **{name: record_dict(read_record(mdir / f"{name}.json", cls)) for name, cls in SIDE_RECORDS.items()
                       if r in side}}
    data = {t: read_json(Path("metrics") / "data" / f"{t}.json") for t in tasks}
    intra = {f"{f}/{t}": record_dict(read_record(comparison_path("intra", f, t), ComparisonRecord))
             for f in families for t in tasks}
    inter = {f"{f}/r{r}": record_dict(read_record(comparison_path("inter", f, f"r{r}"), ComparisonRecord))
             for f in families for r in reps}
    planted = {}
    for f in rs.list("planted", min_len=0):
        for t in params.section("plant").list("tasks", min_len=0):
            for r in params.section("plant").list("draws", min_len=0):
                mdir = metrics_dir(f, PLANTED, r, t)
                planted[f"{f}/{PLANTED}/r{r}/{t}"] = {
                    **{name: require_keys(read_json(mdir / f"{name}.json"), keys, mdir / f"{name}.json")
                       for name, keys in PLANTED_FILES.items()},
                    "localize": record_dict(read_record(mdir / "localize.json", LocalizeRecord))}
    sweeps = {path.stem: read_json(path) for path in sorted(SWEEPS.glob("*.json"))}
    return Context(params, families, tasks, reps, runs, data, intra, inter, Path(figures), planted,
                   side_planted(sweeps, planted), sweeps=sweeps)


def side_planted(sweeps, planted):
    """The planted runs of side runs (metrics/sweeps/planted_<task>.json, experiments/planted_side.py) whose task the
    default does not plant, each with its command under "side"."""
    side = {}
    for stem, sweep in sweeps.items():
        if not stem.startswith("planted_"):
            continue
        for name, files in sweep["runs"].items():
            if name not in planted:
                where = SWEEPS / f"{stem}.json"
                side[name] = {**{k: require_keys(files[k], keys, where) for k, keys in PLANTED_FILES.items()},
                              "localize": record_dict(record_of(files["localize"], LocalizeRecord, where)),
                              "side": sweep["command"]}
    return side


def record_dict(record):
    """A record as the sections read it: its fields, with `skipped` only where something was skipped."""
    fields = asdict(record)
    if fields.get("skipped") is None:
        fields.pop("skipped", None)
    return fields


def build(ctx):
    """(blocks, summary): the document, and what it computed that no metric file holds: the replicate
    aggregates and which runs count as evidence."""
    return [block for section in SECTIONS for block in section(ctx)], summary(ctx)


__all__ = ["Context", "build", "headline", "read_context", "to_html", "to_markdown"]
