"""Bad params and bad CLI input: one clear line, a non-zero exit, no traceback, nothing written."""
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT


@pytest.fixture(scope="module")
def runner():
    """tests/stage_runner.py: each command a process of its own, forked after the imports."""
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "stage_runner.py")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    yield server
    server.stdin.close()
    server.wait(timeout=60)


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(ROOT / "stages", tmp_path / "stages")
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["runs"]["families"] = ["gpt2_shared", "gpt2"]  # the cases below name either
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


@pytest.fixture
def run_stage(runner, workdir):
    """`python *args` run in workdir: a CompletedProcess with its exit status, stdout and stderr."""
    def run(*args):
        runner.stdin.write(json.dumps({"cwd": str(workdir), "argv": list(args)}) + "\n")
        runner.stdin.flush()
        answer = json.loads(runner.stdout.readline())
        return subprocess.CompletedProcess(args, answer["returncode"], answer["stdout"], answer["stderr"])
    return run


class Text(str):
    """What an edit returns to replace params.yaml with text that is not YAML."""


def edit_params(workdir, edit):
    path = workdir / "params.yaml"
    data = yaml.safe_load(path.read_text())
    result = edit(data)
    path.write_text(result if isinstance(result, Text) else yaml.safe_dump(data))


def drop(key):
    return lambda d: d.pop(key)


STEER = ["stages/steer.py", "gpt2", "cipher", "0"]
NAN, INF = float("nan"), float("inf")

CASES = [
    # (edit of params.yaml, stage command, what the message must name)
    (lambda d: d.update(topN=0), STEER, "params: 'topN' must hold fractions in (0, 1], got 0"),
    (lambda d: d.update(topN=[0.1, 1.5]), STEER, "params: 'topN' must hold fractions in (0, 1], got 1.5"),
    (lambda d: d.update(topN=NAN), STEER, "params: 'topN' must hold fractions in (0, 1], got nan"),
    (lambda d: d.update(alpha=[]), STEER, "params: 'alpha' must be a list of at least 1 item(s), got []"),
    (lambda d: d.update(alpha=[3, -1]), STEER, "params: 'alpha' must hold numbers > 0 or 'adaptive', got -1"),
    (lambda d: d.update(alpha=NAN), STEER, "params: 'alpha' must hold numbers > 0 or 'adaptive', got nan"),
    (lambda d: d.update(alpha=[INF]), STEER, "params: 'alpha' must hold numbers > 0 or 'adaptive', got inf"),
    (lambda d: d.update(alpha="strong"), STEER, "params: 'alpha' must hold numbers > 0 or 'adaptive', got 'strong'"),
    (lambda d: d.update(schedule="sometimes"), STEER,
     "params: 'schedule' must hold values among every_step, prompt_end, prompt_end_and_first, got 'sometimes'"),
    (lambda d: d.update(site=["resid_post", "ln_2"]), STEER,
     "params: 'site' must hold values among mlp_in, resid_post, mlp_hidden, got 'ln_2'"),
    (lambda d: d.update(vector="pca"), STEER, "params: 'vector' must hold values among nmd, discriminant, got 'pca'"),
    (lambda d: d["steer"].update(alpha_ladder=[]), STEER,
     "params: 'steer.alpha_ladder' must be a list of at least 1 item(s), got []"),
    (lambda d: d["steer"].update(alpha_ladder=[1, NAN]), STEER,
     "params: 'steer.alpha_ladder' must be a list of finite numbers, got [1, nan]"),
    (lambda d: d["steer"].update(alpha_ladder=[2, 1]), STEER,
     "params: 'steer.alpha_ladder' must rise strictly through numbers > 0, got [2.0, 1.0]"),
    (lambda d: d["steer"].update(alpha_ladder=[-1, 1]), STEER,
     "params: 'steer.alpha_ladder' must rise strictly through numbers > 0, got [-1.0, 1.0]"),
    (lambda d: d["steer"].update(max_other=INF), STEER, "params: 'steer.max_other' must be a finite number, got inf"),
    (lambda d: d["steer"].update(scopes=["all", "last_block"]), STEER,
     "params: 'steer.scopes' must hold values among all, before_readout, mlp_hidden, got 'last_block'"),
    (lambda d: d["steer"]["paper"].update(alpha=NAN), STEER,
     "params: 'steer.paper.alpha' must hold numbers > 0 or 'adaptive', got nan"),
    (lambda d: d["steer"]["paper_grid"].update(topN=[0.05, 2]), STEER,
     "params: 'steer.paper_grid.topN' must hold fractions in (0, 1], got 2"),
    (lambda d: d["steer"].update(paper_stream="sideways"), STEER,
     "params: 'steer.paper_stream' must be one of accumulate, increments, got 'sideways'"),
    (lambda d: d["compare"].update(null_draws=0), ["stages/compare.py", "intra", "gpt2", "cipher"],
     "params: 'compare.null_draws' must be"),
    (lambda d: d["neurons"].update(discriminant_shrinkage=NAN), ["stages/neurons.py", "gpt2", "cipher", "0"],
     "params: 'neurons.discriminant_shrinkage' must be a finite number, got nan"),
    (lambda d: d["families"]["gpt2"]["train"].update(lr=NAN), ["stages/train.py", "gpt2", "cipher", "0"],
     "params: 'families.gpt2.train.lr' must be a finite number, got nan"),
    (lambda d: d.update(seed=1.5), ["stages/data.py", "cipher"], "'seed' must be an integer"),
    (lambda d: d.update(seed="abc"), ["stages/data.py", "cipher"], "'seed' must be an integer"),
    (drop("seed"), ["stages/data.py", "cipher"], "missing key 'seed'"),
    (drop("alpha"), STEER, "missing key 'alpha'"),
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
    (lambda d: d["runs"].update(planted=["gpt2_shared"]), ["stages/plant.py", "gpt2_shared", "planted", "0", "cipher"],
     "family 'gpt2_shared' trains adapters on a shared base: a planted model is trained from scratch"),
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
    (lambda d: d["families"]["gpt2"]["probe"].pop("max_groups"), ["stages/probe.py", "gpt2", "cipher", "0"],
     "missing key 'families.gpt2.probe.max_groups'"),
    (lambda d: d["decode"].update(num_beams=0), ["stages/probe.py", "gpt2", "cipher", "0"],
     "params: 'decode.num_beams' must be in [1, inf], got 0"),
    (lambda d: d["decode"].update(num_beams="x"), ["stages/train.py", "gpt2", "cipher", "0"],
     "params: 'decode.num_beams' must be an integer, got 'x'"),
    (lambda d: d["families"]["gpt2"]["steer"].update(search="yes"), STEER,
     "params: 'families.gpt2.steer.search' must be true, false or always, got 'yes'"),
    (lambda d: d["families"]["gpt2"]["train"].update(mem_share={"cipher": 1}), ["stages/train.py", "gpt2", "cipher", "0"],
     "'families.gpt2.train.mem_share.cipher' must be below 1"),
    (lambda d: d["families"]["gpt2"]["train"].update(mem_share="half"), ["stages/train.py", "gpt2", "cipher", "0"],
     "'families.gpt2.train.mem_share' must be a finite number, got 'half'"),
]


@pytest.mark.parametrize("edit,command,needle", CASES)
def test_bad_input_gives_one_line(workdir, run_stage, edit, command, needle):
    edit_params(workdir, edit)
    result = run_stage(*command)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert not (workdir / "data").exists() and not (workdir / "models").exists() and not (workdir / "metrics").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="asks for CUDA where there is none")
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_cuda_asked_without_cuda_is_one_line(workdir, run_stage, family):
    edit_params(workdir, lambda d: (d["families"][family].update(device="cuda"),
                                    d["runs"].update(families=["gpt2", "llama"])))
    result = run_stage("stages/train.py", family, "cipher", "0")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == "error: params: device 'cuda' was asked for but no CUDA device is available"


def test_malformed_command_line_is_a_usage_error(workdir, run_stage):
    """A replicate that is not an integer never reaches the stage: click's usage message, exit 2."""
    result = run_stage("stages/train.py", "gpt2", "cipher", "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Invalid value for 'REP': 'x' is not a valid integer" in result.stderr
    assert not (workdir / "data").exists() and not (workdir / "models").exists()


def test_missing_input_names_the_file(run_stage):
    result = run_stage("stages/probe.py", "gpt2", "cipher", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data/tasks/cipher/probe.jsonl: file not found" in result.stderr


@pytest.mark.parametrize("option,value,needle", [
    ("--alpha", "nan", "Invalid value for '--alpha': must be a finite number > 0 or 'adaptive', got 'nan'"),
    ("--alpha", "inf", "Invalid value for '--alpha': must be a finite number > 0 or 'adaptive', got 'inf'"),
    ("--alpha", "-1", "Invalid value for '--alpha': must be a finite number > 0 or 'adaptive', got '-1'"),
    ("--alpha", "strong", "Invalid value for '--alpha': must be a finite number > 0 or 'adaptive', got 'strong'"),
    ("--topN", "nan", "Invalid value for '--topN': must be a fraction in (0, 1], got 'nan'"),
    ("--topN", "2", "Invalid value for '--topN': must be a fraction in (0, 1], got '2'"),
    ("--schedule", "sometimes", "Invalid value for '--schedule': 'sometimes' is not one of"),
    ("--site", "ln_2", "Invalid value for '--site': 'ln_2' is not one of 'mlp_in', 'resid_post'"),
])
def test_bad_steer_option_is_one_line(run_stage, option, value, needle):
    """NaN, infinity and out-of-range values never reach the model: click's usage error, exit 2."""
    result = run_stage("-c", "from memgen.cli import main; main()", "steer", "gpt2", "cipher", option, value)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: ") and needle in lines[0]


def test_the_runner_answers_as_a_fresh_interpreter_would(run_stage):
    """The forked runner keeps what these tests look at: an uncaught exception's traceback and status 1,
    sys.exit's status, stdout apart from stderr."""
    crash = run_stage("-c", "raise ValueError('boom')")
    assert crash.returncode == 1 and "Traceback" in crash.stderr and "ValueError: boom" in crash.stderr
    assert run_stage("-c", "import sys; print('out'); sys.exit(3)").returncode == 3
    both = run_stage("-c", "import sys; print('out'); print('err', file=sys.stderr)")
    assert (both.returncode, both.stdout, both.stderr) == (0, "out\n", "err\n")
