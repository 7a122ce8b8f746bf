"""Bad params and bad CLI input: one clear line, a non-zero exit, no traceback, nothing written."""
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(ROOT / "stages", tmp_path / "stages")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def run_stage(workdir, *args):
    return subprocess.run([sys.executable, *args], cwd=workdir, capture_output=True, text=True, timeout=120)


class Text(str):
    """What an edit returns to replace params.yaml with text that is not YAML."""


def edit_params(workdir, edit):
    path = workdir / "params.yaml"
    data = yaml.safe_load(path.read_text())
    result = edit(data)
    path.write_text(result if isinstance(result, Text) else yaml.safe_dump(data))


def drop(key):
    return lambda d: d.pop(key)


CASES = [
    # (edit of params.yaml, stage command, what the message must name)
    (lambda d: d.update(topN=0), ["stages/steer.py", "gpt2", "cipher", "0"], "'topN' must be in (0.0, 1.0]"),
    (lambda d: d.update(topN=1.5), ["stages/steer.py", "gpt2", "cipher", "0"], "'topN' must be in (0.0, 1.0]"),
    (lambda d: d.update(seed=1.5), ["stages/data.py", "cipher"], "'seed' must be an integer"),
    (lambda d: d.update(seed="abc"), ["stages/data.py", "cipher"], "'seed' must be an integer"),
    (drop("seed"), ["stages/data.py", "cipher"], "missing key 'seed'"),
    (drop("alpha"), ["stages/steer.py", "gpt2", "cipher", "0"], "missing key 'alpha'"),
    (lambda d: d["tasks"]["cipher"].update(triggers=[]), ["stages/data.py", "cipher"], "tasks.cipher.triggers"),
    (lambda d: d["tasks"]["cipher"].update(n_train=0), ["stages/data.py", "cipher"], "tasks.cipher.n_train"),
    (lambda d: d["runs"].update(tasks=["cipher", "poetry"]), ["stages/data.py", "poetry"], "unknown task 'poetry'"),
    (lambda d: d["families"]["gpt2"]["model"].update(n_head=3), ["stages/train.py", "gpt2", "cipher", "0"],
     "divisible by n_head"),
    (lambda d: d["families"]["gpt2"]["train"].update(lr=-1), ["stages/train.py", "gpt2", "cipher", "0"],
     "families.gpt2.train.lr"),
    (lambda d: d["families"]["gpt2"].update(device="tpu"), ["stages/train.py", "gpt2", "cipher", "0"],
     "families.gpt2.device"),
    (lambda d: None, ["stages/train.py", "mamba", "cipher", "0"], "unknown family 'mamba'"),
    (lambda d: d["runs"].update(families=["gpt2", "llama"]) or d["families"]["llama"]["model"]["lora"].update(
        target_modules=[1]), ["stages/train.py", "llama", "cipher", "0"], "target_modules"),
    (lambda d: d["families"]["llama"].update(base="/no/such/dir"), ["stages/base_model.py", "llama"],
     "does not exist"),
    (lambda d: None, ["stages/train.py", "gpt2", "cipher", "7"], "not in params 'runs.replicates'"),
    (lambda d: d.update(alpha=-1), ["stages/steer.py", "gpt2", "cipher", "0"], "'alpha' must be in [0.0, inf], got -1"),
    (lambda d: Text("seed: 0\ntopN: [0.05\n"), ["stages/data.py", "cipher"],
     "params.yaml: not valid YAML (expected ',' or ']', but got '<stream end>' at line 3, column 1)"),
    (lambda d: d["tasks"]["arithmetic"].update(addend_min=40), ["stages/data.py", "arithmetic"],
     "'tasks.arithmetic.addend_max' must be in [41, inf], got 30"),
    (lambda d: d["tasks"]["incontext"].update(n_distractors=20), ["stages/data.py", "incontext"],
     "'tasks.incontext.colours' needs at least 22 colours for 20 distractors"),
    (lambda d: d["tasks"]["cipher"].update(key="A" * 26), ["stages/data.py", "cipher"],
     "'tasks.cipher.key' must be null or a permutation of the 26 letters A-Z"),
    (lambda d: d["runs"].update(tasks=["cipher"]), ["stages/train.py", "gpt2", "arithmetic", "0"],
     "'arithmetic' is not in params 'runs.tasks' (['cipher'])"),
    (lambda d: d["probe"].update(max_groups={"llama": 100}), ["stages/probe.py", "gpt2", "cipher", "0"],
     "missing key 'probe.max_groups.gpt2'"),
    (lambda d: d["families"]["gpt2"]["train"].update(mem_share={"cipher": 1}), ["stages/train.py", "gpt2", "cipher", "0"],
     "'families.gpt2.train.mem_share.cipher' must be below 1"),
    (lambda d: d["families"]["gpt2"]["train"].update(mem_share="half"), ["stages/train.py", "gpt2", "cipher", "0"],
     "'families.gpt2.train.mem_share' must be a number, got 'half'"),
]


@pytest.mark.parametrize("edit,command,needle", CASES)
def test_bad_input_gives_one_line(workdir, edit, command, needle):
    edit_params(workdir, edit)
    result = run_stage(workdir, *command)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert not (workdir / "data").exists() and not (workdir / "models").exists() and not (workdir / "metrics").exists()


def test_malformed_command_line_is_a_usage_error(workdir):
    """A replicate that is not an integer never reaches the stage: click's usage message, exit 2."""
    result = run_stage(workdir, "stages/train.py", "gpt2", "cipher", "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Invalid value for 'REP': 'x' is not a valid integer" in result.stderr
    assert not (workdir / "data").exists() and not (workdir / "models").exists()


def test_missing_input_names_the_file(workdir):
    result = run_stage(workdir, "stages/probe.py", "gpt2", "cipher", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data/tasks/cipher/probe.jsonl: file not found" in result.stderr
