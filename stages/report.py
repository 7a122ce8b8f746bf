"""Stage report: every run's behaviour, pairs, chance level, operating point and steering against the
controls, beside the paper's setting and the paper's numbers, with the comparisons and behaviour
prediction: metrics/summary.json, metrics/report.md, metrics/report.html and their figures."""
import click

from memgen.errors import OneLineCommand, run_main
from memgen.io import atomic_path, write_json
from memgen.params import load_params
from memgen.report import build, read_context, to_html, to_markdown
from memgen.report.overlays import run_names, write_overlays


def main():
    params = load_params()
    rs = params.section("runs")
    write_overlays(run_names(rs.list("families"), rs.list("tasks"), rs.list("replicates"), rs.list("multitask")))
    with atomic_path("metrics/figures", is_dir=True) as figures:  # no figure of an earlier report stays behind
        blocks, summary = build(read_context(params, figures))
    write_json("metrics/summary.json", summary)
    with atomic_path("metrics/report.md") as tmp:
        tmp.write_text(to_markdown(blocks))
    with atomic_path("metrics/report.html") as tmp:
        tmp.write_text(to_html(blocks, "memgen report"))


@click.command(cls=OneLineCommand)
def cli():
    run_main(main)


if __name__ == "__main__":
    cli()
