"""More than one process on CPU (gloo): the stages re-launch themselves, share whole batches out,
and write what one process writes."""
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import ROOT
from memgen import distributed
from memgen.families import BUILT_IN
from memgen.io import read_jsonl
from memgen.params import Params

PROBE_OUTPUTS = ("data/runs/gpt2/cipher/r0/probe_outputs.jsonl", "data/runs/gpt2/cipher/r0/pairs.json",
                 "metrics/runs/gpt2/cipher/r0/probe.json")


def tiny(data):
    """params.yaml cut down: a 2-layer GPT-2 and 17 cipher probe groups (51 prompts, 7 batches of 8)."""
    data["runs"].update(tasks=["cipher"], families=["gpt2"], multitask=[])
    data["tasks"]["cipher"].update(n_train=300, n_val_groups=5, n_probe_groups=17, n_test_groups=5)
    gpt2 = data["families"]["gpt2"]
    gpt2["model"].update(n_layer=2, n_embd=32, n_head=2)
    gpt2["probe"].update(max_groups=17)
    data["probe"]["batch_size"] = 8
    return data


def write_params(workdir, data):
    (workdir / "params.yaml").write_text(yaml.safe_dump(data))


def run_stage(workdir, *args):
    return subprocess.run([sys.executable, *args], cwd=workdir, capture_output=True, text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(ROOT / "stages", tmp_path / "stages")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


@pytest.fixture
def probe_workdir(workdir):
    """A workdir with the cipher data and an untrained tiny model (its outputs differ prompt by prompt)."""
    data = tiny(yaml.safe_load((workdir / "params.yaml").read_text()))
    write_params(workdir, data)
    result = run_stage(workdir, "stages/data.py", "cipher")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(workdir / "data/tasks/cipher/train.jsonl") + read_jsonl(workdir / "data/tasks/cipher/probe.jsonl")
    texts = [r["prompt"] + r.get("target", r.get("mem", "")) for r in rows]
    model, _, save = BUILT_IN["gpt2"].new_model(Params(data).section("families").section("gpt2"), texts, seed=3)
    with torch.no_grad():  # large random weights: answers that differ prompt by prompt, not one repeated token
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 1, generator=torch.Generator().manual_seed(p.numel()))
    save(workdir / "models/gpt2/cipher/r0")
    return workdir, data


def test_batches_go_round_robin_and_come_back_in_order(monkeypatch):
    batches = [[f"p{i}"] for i in range(7)]
    monkeypatch.setattr(distributed, "world", lambda: (1, 3))
    assert distributed.my_batches(batches) == [(1, ["p1"]), (4, ["p4"])]
    monkeypatch.setattr(distributed, "world", lambda: (0, 1))
    assert distributed.gather_in_order(distributed.my_batches(batches)) == batches


def test_probe_with_two_processes_writes_what_one_writes(probe_workdir):
    workdir, data = probe_workdir
    written = {}
    for n in (1, 2):
        data["parallel"]["num_processes"] = n
        write_params(workdir, data)
        result = run_stage(workdir, "stages/probe.py", "gpt2", "cipher", "0")
        assert result.returncode == 0, result.stderr
        written[n] = {path: (workdir / path).read_bytes() for path in PROBE_OUTPUTS}
    assert written[1] == written[2]
    outputs = [row["output"] for row in read_jsonl(workdir / PROBE_OUTPUTS[0])]
    assert len(outputs) == 51 and len(set(outputs)) > 10  # the model answers prompt by prompt


@pytest.mark.parametrize("value", [0, -2, 1.5, "two"])
def test_bad_num_processes_gives_one_line(workdir, value):
    data = yaml.safe_load((workdir / "params.yaml").read_text())
    data["parallel"]["num_processes"] = value
    write_params(workdir, data)
    result = run_stage(workdir, "stages/probe.py", "gpt2", "cipher", "0")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    expected = "must be in [1, inf]" if isinstance(value, int) else "must be an integer"
    assert lines[0].startswith("error: params: 'parallel.num_processes' ") and expected in lines[0]
    assert not (workdir / "data").exists()
