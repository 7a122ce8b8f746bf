"""Stage base_model: what a family starts from, as its plug-in prepares it. llama: the configured
pretrained base as a local safetensors directory with its tokenizer; gpt2: trained from scratch,
so only that fact is recorded; gpt2_shared: a GPT-2 trained on the rules of every task, which each
task's and replicate's adapter then starts from."""
import click

from memgen.errors import OneLineCommand, run_main
from memgen.families import base_dir, get_family
from memgen.io import atomic_path, write_json
from memgen.params import load_params


def main(name):
    params = load_params()
    family = get_family(params, name)
    source = family.check_base(params.section("families").section(name).raw("base"))
    with atomic_path(base_dir(name), is_dir=True) as out:
        write_json(out / "source.json", family.prepare_base(source, out, params))


@click.command(cls=OneLineCommand)
@click.argument("family")
def cli(family):
    run_main(main, family)


if __name__ == "__main__":
    cli()
