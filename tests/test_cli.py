"""The `memgen` command line: version, help, usage errors, and a light import."""
import subprocess
import sys
from importlib.metadata import version

import pytest


def memgen(tmp_path, *args):
    """`memgen ARGS` in a fresh process, as the installed script runs it."""
    return subprocess.run([sys.executable, "-c", "from memgen.cli import main; main()", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_version_is_printed(tmp_path):
    result = memgen(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"memgen, version {version('memgen')}"


@pytest.mark.parametrize("command", [[], ["steer"], ["pull"]])
def test_dash_h_is_help(tmp_path, command):
    short, long = memgen(tmp_path, *command, "-h"), memgen(tmp_path, *command, "--help")
    assert short.returncode == 0 and long.returncode == 0, short.stderr + long.stderr
    assert "Usage:" in short.stdout and short.stdout == long.stdout
    assert "-h, --help" in short.stdout


def test_bare_memgen_prints_usage_without_error(tmp_path):
    result = memgen(tmp_path)
    assert result.returncode in (0, 2)
    output = result.stdout + result.stderr
    assert output.startswith("Usage:") and "steer" in output and "pull" in output
    assert "error" not in output.lower()


@pytest.mark.parametrize("count", ["0", "-2"])
def test_test_count_below_one_is_refused(tmp_path, count):
    result = memgen(tmp_path, "steer", "gpt2", "cipher", "--test", count)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == f"error: Invalid value for '--test': {count} is not in the range x>=1."


def test_importing_cli_does_not_import_torch(tmp_path):
    heavy = ["torch", "transformers", "rich", "memgen.evaluate", "memgen.run", "memgen.search", "memgen.steering"]
    code = f"import sys, memgen.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_cli_names_are_the_librarys_and_import_nothing():
    """The CLI takes its names from memgen.names, which imports nothing; the library means the same names."""
    import ast

    from memgen import cli, names, sites, steering

    assert cli.SCHEDULE_NAMES == tuple(steering.SCHEDULES) and cli.VECTORS is steering.VECTORS
    assert cli.KNOWN_SITES is sites.KNOWN_SITES and cli.DIRECTIONS is steering.DIRECTIONS
    tree = ast.parse(open(names.__file__).read())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
