"""Params profiles: an overlay of params.yaml turned into `dvc exp run -S` settings."""
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiny_repo import ROOT, merge
from memgen.errors import UserError
from memgen.families import get_family
from memgen.params import Params
from memgen.profiles import read_profile, set_args, settings
from memgen.splits import draw_dataset
from memgen.tasks import load_task


def profile_args(*args):
    memgen = Path(sys.executable).parent / "memgen"  # the installed command
    return subprocess.run([str(memgen), "profile", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_printed_settings_carry_every_value_of_the_profile(params_data):
    out = profile_args("paper")
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[::2] == ["-S"] * (len(words) // 2)
    printed = dict(w.split("=", 1) for w in words[1::2])
    overlay = read_profile("paper", ROOT / "profiles")
    expected = dict(settings(overlay, params_data))
    assert {k: yaml.safe_load(v) for k, v in printed.items()} == expected  # DVC reads each value as YAML
    assert printed["families.gpt2.model.n_layer"] == "12" and "tasks.arithmetic.scratchpad" in printed


def test_the_paper_profile_is_valid_params(params_data):
    """Every task draws its data and every family accepts its model settings under the profile."""
    data = merge(params_data, read_profile("paper", ROOT / "profiles"))
    params = Params(data)
    assert data["families"]["gpt2"]["model"]["n_embd"] == 768
    assert data["families"]["llama"]["model"]["lora"]["target_modules"] == ["q_proj", "v_proj"]
    for name in data["runs"]["tasks"]:
        task = load_task(params, name)
        small = draw_dataset(task, 200, {"val": 5, "probe": 5, "test": 5}, seed=1)
        assert small["train"] and small["probe"]
    arithmetic = load_task(params, "arithmetic")
    example = arithmetic.training_examples(random.Random(0), 50)[0]
    assert "<scratch>" in example["target"] or example["target"].startswith("<mem-")
    for family in data["runs"]["families"]:
        get_family(params, family).check(params.section("families").section(family))


def test_a_key_params_lacks_is_refused(params_data):
    with pytest.raises(UserError, match="tasks.cipher.lenght"):
        settings({"tasks": {"cipher": {"lenght": 12}}}, params_data)


def test_a_mapping_replaces_a_number_and_lists_stay_one_word(params_data):
    pairs = settings({"families": {"gpt2": {"train": {"steps": 500}}}, "runs": {"tasks": ["cipher"]}}, params_data)
    assert pairs == [("families.gpt2.train.steps", 500), ("runs.tasks", ["cipher"])]
    assert set_args(pairs) == ["-S", "families.gpt2.train.steps=500", "-S", 'runs.tasks=["cipher"]']


def test_unknown_profile_and_missing_base_give_one_line():
    out = profile_args("nope")
    assert out.returncode != 0 and out.stderr.strip() == "error: no profile 'nope' in profiles/ (known: paper)"
    out = profile_args("paper", "--llama-base", "/no/such/dir")
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1 and "does not exist" in out.stderr
