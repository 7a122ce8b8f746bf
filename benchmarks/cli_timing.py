"""CLI start-up: wall time of `memgen --version`, `memgen --help` and `memgen steer --help`, each in
a fresh Python process, as a user waits for them (goal: the help pages < 0.5 s).

Each command runs as `python -c "from memgen.cli import main; main()" ...`, which is what the
`memgen` script does, so it times the memgen that this Python imports (set PYTHONPATH to time
another checkout). The commands take turns over --repeats rounds; best and median are printed.
Usage: python benchmarks/cli_timing.py [--repeats 7]
"""
import subprocess
import sys

import click

from common import interleaved, machine, summary

COMMANDS = {"memgen --version": ["--version"], "memgen --help": ["--help"], "memgen steer --help": ["steer", "--help"]}


FAILED = {}  # name -> exit status, so an older memgen without --version is still timed, and says so


def run_cli(name, args):
    result = subprocess.run([sys.executable, "-c", "from memgen.cli import main; main()", *args],
                            capture_output=True, text=True)
    if result.returncode != 0:
        FAILED[name] = result.returncode


@click.command()
@click.option("--repeats", default=7, show_default=True, help="rounds of all three commands")
def main(repeats):
    run_cli("warm-up", ["--help"])  # a first run fills the page cache and writes the .pyc files
    times = interleaved({name: (lambda name=name, args=args: run_cli(name, args))
                         for name, args in COMMANDS.items()}, repeats)
    print(machine())
    print(f"python {sys.version.split()[0]}; memgen imported from {memgen_location()}")
    for name, seconds in times.items():
        failed = f"  (exit status {FAILED[name]})" if name in FAILED else ""
        print(f"{name:22} {summary(seconds)}{failed}")


def memgen_location():
    result = subprocess.run([sys.executable, "-c", "import memgen; print(memgen.__path__[0])"],
                            capture_output=True, text=True)
    return result.stdout.strip()


if __name__ == "__main__":
    main()
