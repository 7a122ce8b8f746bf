"""Stage base_model: what a family starts from. llama: the configured pretrained base as a local
safetensors directory with its tokenizer; gpt2: trained from scratch, so only that fact is recorded."""
import click

from memgen.errors import OneLineCommand, UserError, run_main
from memgen.io import atomic_path, write_json
from memgen.models import base_dir, check_base_source, check_family, convert_base
from memgen.params import load_params


def main(family):
    check_family(family)
    source = load_params().section("families").section(family).raw("base")
    if family == "gpt2":
        if source != "scratch":
            raise UserError(f"params: 'families.gpt2.base' must be 'scratch' (GPT-2 is trained from scratch), got {source!r}")
        with atomic_path(base_dir(family), is_dir=True) as out:
            write_json(out / "source.json", {"source": "scratch"})
        return
    path = check_base_source(source)
    with atomic_path(base_dir(family), is_dir=True) as out:
        write_json(out / "source.json", convert_base(path, out))


@click.command(cls=OneLineCommand)
@click.argument("family")
def cli(family):
    run_main(main, family)


if __name__ == "__main__":
    cli()
