"""Stage report: every run's behaviour, pairs, chance level, operating point and steering against the
controls, beside the paper's setting and the paper's numbers, with the comparisons and behaviour
prediction: metrics/report.md (figures linked), metrics/report.html (figures embedded) and their figures;
metrics/headline.json (a few numbers per run, the pipeline's metrics) and metrics/summary.json (the
replicate aggregates and the evidence flags)."""
import click

from memgen.errors import OneLineCommand, run_main
from memgen.io import atomic_path, write_json
from memgen.params import load_params
from memgen.report import build, headline, read_context, to_html, to_markdown
from memgen.report.overlays import run_names, write_overlays


def main():
    params = load_params()
    rs = params.section("runs")
    write_overlays(run_names(rs.list("families"), rs.list("tasks"), rs.list("replicates"),
                             rs.list("multitask", min_len=0)))
    with atomic_path("metrics/figures", is_dir=True) as figures:  # no figure of an earlier report stays behind
        ctx = read_context(params, figures)
        blocks, summary = build(ctx)
    comparisons = {**{f"intra/{k}": v for k, v in ctx.intra.items()}, **{f"inter/{k}": v for k, v in ctx.inter.items()}}
    write_json("metrics/headline.json", headline(ctx.runs, ctx.planted, summary["replicates"], comparisons))
    write_json("metrics/summary.json", summary)
    with atomic_path("metrics/report.md") as tmp:
        tmp.write_text(to_markdown(blocks))
    with atomic_path("metrics/report.html") as tmp:
        tmp.write_text(to_html(blocks, "memgen report", "metrics"))


@click.command(cls=OneLineCommand)
def cli():
    run_main(main)


if __name__ == "__main__":
    cli()
