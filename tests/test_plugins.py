"""Adding a family or a task is one module plus its params: a toy family (a tiny GPT-NeoX) and a toy
task (reverse a string), both defined in tests/toy_plugins.py alone, run through the real pipeline,
data -> ... -> steer -> report, by params only; a bad plug-in is one clear line."""
import json
import re

import pytest

from conftest import ROOT
from memgen.errors import UserError
from memgen.families import get_family
from memgen.params import Params
from memgen.tasks import load_task
from tiny_repo import make_repo, sh, stages_run

TOY = "plugins/toy.py"  # where the plug-in lies in the repo the pipeline runs in
TOY_PARAMS = {
    "runs": {"families": ["neox"], "tasks": ["reverse"], "replicates": [0], "multitask": [], "planted": []},
    "families": {"neox": {
        "module": TOY, "base": "scratch", "device": "cpu",
        "model": {"hidden_size": 64, "layers": 2, "heads": 2},
        "train": {"steps": 100, "mem_share": None, "batch_size": 32, "lr": 0.003, "weight_decay": 0.01,
                  "warmup": 20, "eval_every": 50, "eval_groups": 30, "eval_batch_size": 200, "max_other": 0.5},
        "probe": {"max_groups": 100},
        "steer": {"max_prompts": 30, "ablation_layers": None, "search": True}}},
    "tasks": {"reverse": {"module": TOY, "letters": "ABCDEFGH", "length": 6, "trigger_fraction": 0.2,
                          "triggers": ["AB", "CD", "EF"], "n_train": 3000, "n_val_groups": 30,
                          "n_probe_groups": 100, "n_test_groups": 20}},
}


def test_a_toy_family_and_task_run_the_pipeline(tmp_path):
    repo = make_repo(tmp_path / "toy", tmp_path / "remote", TOY_PARAMS, {TOY: ROOT / "tests" / "toy_plugins.py"})
    out = sh(repo, "dvc", "repro")
    assert {"data", "base_model", "train", "probe", "extract", "neurons", "predict", "steer", "intra", "inter",
            "report"} <= stages_run(out)
    run_metrics = repo / "metrics/runs/neox/reverse/r0"
    neurons = json.loads((run_metrics / "neurons.json").read_text())
    assert (neurons["layers"], neurons["width"]) == (2, 64)  # the NeoX's own shape, at both named sites
    assert set(neurons["sites"]) == {"mlp_in", "resid_post"}
    data = json.loads((repo / "metrics/data/reverse.json").read_text())
    assert set(data["overlap"]["prompt"].values()) == {0}
    steer = json.loads((run_metrics / "steer.json").read_text())
    probe = json.loads((run_metrics / "probe.json").read_text())
    if probe["n_pairs"]:  # the steer measured the paper's setting on held-out test probes
        assert steer["test"]["paper"]["m2g"]["targeted"]["n"] + steer["test"]["paper"]["g2m"]["targeted"]["n"] > 0
    else:
        assert "no MEM/GEN pairs" in json.dumps(steer)
    assert "neox/reverse" in (repo / "metrics/report.md").read_text()


@pytest.mark.parametrize("section,entry,message", [
    ("families", {"neox": {"module": "nowhere/toy.py"}}, "'families.neox.module' 'nowhere/toy.py' is not a file"),
    ("families", {"neox": {"module": "json"}}, "'families.neox.module': 'json' defines no FAMILY"),
    ("families", {"gpt3": {"module": str(ROOT / "tests" / "toy_plugins.py")}}, "a Family named 'gpt3'"),
    ("families", {}, "unknown family 'neox': built in are gpt2, gpt2_shared, llama"),
    ("tasks", {"reverse": {"module": "memgen.no_such_module"}}, "cannot import 'memgen.no_such_module'"),
    ("tasks", {"sort": {"module": str(ROOT / "tests" / "toy_plugins.py")}}, "a Task subclass named 'sort'"),
    ("tasks", {}, "unknown task 'reverse': built in are arithmetic, cipher, incontext"),
])
def test_a_bad_plugin_is_one_line(section, entry, message):
    params = Params({"seed": 0, "families": {}, "tasks": {}, section: entry})
    name = next(iter(entry), "neox" if section == "families" else "reverse")
    with pytest.raises(UserError, match=re.escape(message)):
        get_family(params, name) if section == "families" else load_task(params, name)
