"""More than one process on CPU (gloo): the stages re-launch themselves, share whole batches out,
and write what one process writes."""
import json
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
from memgen.distributed import Parallel, read_parallel
from memgen.errors import UserError
from memgen.pairs import write_pairs
from memgen.params import Params
from memgen.splits import draw_dataset
from memgen.tasks import load_task
from memgen.training import train
from safetensors.torch import load_file

PROBE_OUTPUTS = ("data/runs/gpt2/cipher/r0/probe_outputs.jsonl", "data/runs/gpt2/cipher/r0/pairs.json",
                 "metrics/runs/gpt2/cipher/r0/probe.json")


def tiny(data, task="cipher"):
    """params.yaml cut down: a 2-layer GPT-2 and 17 probe groups (cipher: 51 prompts, 7 batches of 8)."""
    data["runs"].update(tasks=[task], families=["gpt2"], multitask=[])
    data["tasks"][task].update(n_train=300, n_val_groups=5, n_probe_groups=17, n_test_groups=5)
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
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["runs"]["families"] = ["gpt2_shared", "gpt2"]  # the tests here run gpt2
    write_params(tmp_path, data)
    return tmp_path


def with_data(workdir, task):
    data = tiny(yaml.safe_load((workdir / "params.yaml").read_text()), task)
    write_params(workdir, data)
    result = run_stage(workdir, "stages/data.py", task)
    assert result.returncode == 0, result.stderr
    return data


@pytest.fixture
def probe_workdir(workdir):
    """A workdir with the cipher data and an untrained tiny model (its outputs differ prompt by prompt)."""
    data = with_data(workdir, "cipher")
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


def written_by(workdir, data, stage, paths):
    """{number of processes: the bytes of `paths`} after the stage runs on 1 and on 2 processes."""
    written = {}
    for n in (1, 2):
        data["parallel"]["num_processes"] = n
        write_params(workdir, data)
        result = run_stage(workdir, f"stages/{stage}.py", "gpt2", "cipher", "0")
        assert result.returncode == 0, result.stderr
        written[n] = {path: (workdir / path).read_bytes() for path in paths}
    return written


def test_probe_with_two_processes_writes_what_one_writes(probe_workdir):
    workdir, data = probe_workdir
    written = written_by(workdir, data, "probe", PROBE_OUTPUTS)
    assert written[1] == written[2]
    outputs = [row["output"] for row in read_jsonl(workdir / PROBE_OUTPUTS[0])]
    assert len(outputs) == 51 and len(set(outputs)) > 10  # the model answers prompt by prompt


def test_extract_with_two_processes_captures_what_one_captures(probe_workdir):
    """The states of 25 pairs (4 batches of 8 per side) at every site and layer, byte for byte:
    each batch is computed whole, as one process computes it."""
    workdir, data = probe_workdir
    probes = read_jsonl(workdir / "data/tasks/cipher/probe.jsonl")[:50]
    write_pairs(workdir / "data/runs/gpt2/cipher/r0/pairs.json", probes, [(i, i + 1) for i in range(0, 50, 2)])
    store = workdir / "data/runs/gpt2/cipher/r0/activations.safetensors"
    written = written_by(workdir, data, "extract", [store])
    assert written[1] == written[2]
    states = load_file(store)
    assert states["resid_post/mem"].shape == (25, 2, 32) and not torch.equal(states["resid_post/mem"][0],
                                                                              states["resid_post/mem"][1])


def test_steered_decoding_on_two_processes_gives_what_one_gives(probe_workdir, tmp_path):
    """Steered decoding (hooks that shift the last position on the steps a schedule names) of 50
    prompts in batches of 8: two processes, each steering its own batches, give one's outputs."""
    workdir, _ = probe_workdir
    worker = [str(ROOT / "tests" / "steer_worker.py"), str(workdir)]
    outputs = {}
    for n, command in ((1, [sys.executable, *worker]), (2, distributed.launch_command(2, worker))):
        result = subprocess.run([*command, str(tmp_path / f"{n}.json")], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs[n] = json.loads((tmp_path / f"{n}.json").read_text())
    assert outputs[1] == outputs[2]
    unsteered = outputs[1]["unsteered"]
    for schedule in ("every_step", "prompt_end"):  # the shifts move answers: steering is being compared
        assert sum(a != b for a, b in zip(outputs[1][schedule], unsteered)) > 10


def test_steer_with_two_processes_writes_what_one_writes(probe_workdir):
    """The steer stage on a small searched grid, 15 test prompts in batches of 6 (the processes take
    2 and 1). The untrained model's answers are all OTHER, so only the unsteered decodings run: this
    checks that both processes take the same path and one writes; the test above compares steering."""
    workdir, data = probe_workdir
    probes = read_jsonl(workdir / "data/tasks/cipher/probe.jsonl")[:50]
    write_pairs(workdir / "data/runs/gpt2/cipher/r0/pairs.json", probes, [(i, i + 1) for i in range(0, 50, 2)])
    data.update(topN=[0.1], alpha=[3, "adaptive"], schedule=["every_step"], site=["resid_post"], vector=["nmd"])
    data["steer"].update(batch_size=6, alpha_ladder=[2, 4])
    data["families"]["gpt2"]["steer"].update(max_prompts=20, search="always")
    data["neurons"]["n_permutations"] = 20
    write_params(workdir, data)
    for stage in ("extract", "neurons"):
        result = run_stage(workdir, f"stages/{stage}.py", "gpt2", "cipher", "0")
        assert result.returncode == 0, result.stderr
    outputs = ["data/runs/gpt2/cipher/r0/steer_outputs.jsonl", "metrics/runs/gpt2/cipher/r0/search.json",
               "metrics/runs/gpt2/cipher/r0/steer.json", "metrics/plots/dose_response/gpt2-cipher-r0.csv",
               "metrics/plots/steer_layers/gpt2-cipher-r0.csv"]
    written = written_by(workdir, data, "steer", outputs)
    assert written[1] == written[2]
    assert [row["condition"] for row in read_jsonl(workdir / outputs[0])] == ["unsteered"] * 15


def test_full_precision_is_null_and_survives_a_dvc_rewrite():
    """`dvc exp run -S` rewrites params.yaml unquoted; YAML 1.1 would read accelerate's "no" as false."""
    assert read_parallel(Params({"parallel": {"mixed_precision": None}})).mixed_precision == "no"
    assert read_parallel(Params({"parallel": {"mixed_precision": "bf16"}})).mixed_precision == "bf16"
    assert yaml.safe_load("parallel: {mixed_precision: null}")["parallel"]["mixed_precision"] is None
    for bad in (False, "no", "fp8"):
        with pytest.raises(UserError, match="'parallel.mixed_precision' must be null, fp16 or bf16"):
            read_parallel(Params({"parallel": {"mixed_precision": bad}}))


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


def test_training_on_two_processes_follows_one(workdir):
    """The same global batch of 16 split 8 + 8 over two processes (DDP, gloo) against the plain loop.
    Arithmetic: its targets differ in length, so a loss averaged per process instead of over the
    global batch would show. Tolerance 1e-4 on each step's loss: each half is padded to its own width
    and summed in another order, so float32 rounding differs (measured: below 1e-6 over these steps)."""
    data = with_data(workdir, "arithmetic")
    data["families"]["gpt2"]["train"].update(steps=8, batch_size=16, eval_every=1, eval_groups=2, eval_batch_size=8,
                                             warmup=2, lr=0.003)
    assert run_stage(workdir, "stages/base_model.py", "gpt2").returncode == 0  # the model card reads it
    losses, weights = {}, {}
    for n in (1, 2):
        data["parallel"]["num_processes"] = n
        write_params(workdir, data)
        result = run_stage(workdir, "stages/train.py", "gpt2", "arithmetic", "0")
        assert result.returncode == 0, result.stderr
        curve = (workdir / "metrics/plots/train_curve/gpt2-arithmetic-r0/plots/metrics/loss.tsv").read_text()
        losses[n] = [float(line.split("\t")[-1]) for line in curve.splitlines()[1:]]
        weights[n] = load_file(workdir / "models/gpt2/arithmetic/r0/model.safetensors")
    assert len(losses[1]) == len(losses[2]) == 8
    assert losses[2] == pytest.approx(losses[1], abs=1e-4)
    assert max(losses[1]) - min(losses[1]) > 0.1  # it learns: the comparison is not of flat curves
    assert max((weights[1][k] - weights[2][k]).abs().max().item() for k in weights[1]) < 1e-3


def test_a_failure_inside_the_processes_is_their_own_line(workdir):
    """Past the params checks, each process reports its own mistake: no launcher log or traceback."""
    data = yaml.safe_load((workdir / "params.yaml").read_text())
    data["parallel"]["num_processes"] = 2
    write_params(workdir, data)
    result = run_stage(workdir, "stages/probe.py", "gpt2", "cipher", "0")  # no data yet
    assert result.returncode == 2, result.stderr
    missing = "error: data/tasks/cipher/probe.jsonl: file not found (run the stage that makes it first)"
    assert result.stderr.splitlines() == [missing, missing]


def test_batch_that_does_not_split_gives_one_line(workdir):
    data = yaml.safe_load((workdir / "params.yaml").read_text())
    data["families"]["gpt2"]["train"]["batch_size"] = 9
    data["parallel"].update(num_processes=2)
    write_params(workdir, data)
    result = run_stage(workdir, "stages/train.py", "gpt2", "cipher", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == ("error: params: 'families.gpt2.train.batch_size' (9) must split evenly over "
                                     "parallel.num_processes x gradient_accumulation_steps (2)")


@pytest.fixture
def fresh_accelerator():
    """accelerate keeps one state per process, fixed by the first Accelerator: reset it for the next test."""
    yield
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state(reset_partial_state=True)


# (settings, tolerance on each step's loss). Accumulation only rounds the split sums differently in
# float32 (measured: 4.8e-7); bf16 autocast rounds every matmul, moving logits by ~3e-3, which the
# mean over tokens mostly averages out (measured: 3.1e-4).
ONE_PROCESS = [(Parallel(gradient_accumulation_steps=2), 1e-4), (Parallel(mixed_precision="bf16"), 1e-2)]


@pytest.mark.parametrize("parallel,tolerance", ONE_PROCESS, ids=["accumulation", "bf16"])
def test_one_process_through_accelerate_follows_the_plain_loop(params_data, fresh_accelerator, parallel, tolerance):
    """One process through accelerate (batches of 16 as two micro-batches of 8, or bf16 autocast)
    against the plain loop: the same per-step losses within the tolerance, over 6 steps."""
    params = Params(tiny(params_data, "arithmetic"))
    task = load_task(params, "arithmetic")
    data = draw_dataset(task, 200, {"val": 2, "probe": 1, "test": 1}, 0)
    texts = [e["prompt"] + e["target"] for e in data["train"]] + [p[k] for p in data["val"] for k in ("prompt", "mem", "gen")]
    cfg = dict(steps=6, batch_size=16, lr=0.003, weight_decay=0.01, warmup=2, eval_every=1, eval_batch_size=8,
               max_other=0.5, num_beams=1)
    curves = []
    for settings in (Parallel(), parallel):
        model, codec, _ = BUILT_IN["gpt2"].new_model(params.section("families").section("gpt2"), texts, seed=5)
        curves.append([row["loss"] for row in train(model, codec, task, data["train"], data["val"], cfg, 7,
                                                    desc=None, parallel=settings)[0]])
    plain, other = curves
    assert len(plain) == 6 and other == pytest.approx(plain, abs=tolerance)
    assert other != plain  # it did go through accelerate, not the plain loop
