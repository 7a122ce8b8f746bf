"""Reliability: a stage killed mid-write, broken artifacts, stage-level determinism, and nothing
loaded with pickle.

Everything runs on small inputs: the data stage on the default params, and one tiny run of both
families on the cipher task (a tiny random Llama stands in for the embedded base), built once
per module in one process under tests/nopickle_runner.py.
"""
import hashlib
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tiny_repo import ROOT, merge
from memgen import io as memgen_io
from memgen.errors import UserError, run_main
from memgen.neuron_store import read_neurons

PY = sys.executable
RUNNER = ROOT / "tests" / "nopickle_runner.py"
TASKS = ("arithmetic", "cipher", "incontext")
TEMP = r"[a-z0-9_]{8}"  # what mkstemp / mkdtemp add after atomic_path's `.<name>.` prefix


# --- helpers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def params_text():
    """params.yaml read once, so every work directory of this module sees the same params."""
    return (ROOT / "params.yaml").read_text()


def make_workdir(path, params_text, over=None):
    shutil.copytree(ROOT / "stages", path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load(params_text)
    merge(params, over or {})
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def hashes(root, under="."):
    """sha256 of every file below root/under, by path relative to root (the inputs left out)."""
    out = {}
    for path in sorted((root / under).rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] not in ("stages", "params.yaml") and "__pycache__" not in rel.parts:
            out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run(cwd, *args, env=None, timeout=300):
    return subprocess.run([PY, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def pickle_calls(result):
    """The loads that nopickle_runner saw (it prints them as its last line)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("PICKLE-CALLS: ")]
    assert lines, f"no report from the runner:\n{result.stderr[-3000:]}"
    return json.loads(lines[-1][len("PICKLE-CALLS: "):])


def commands(*cmds):
    """nopickle_runner arguments: commands joined with `--`."""
    out = []
    for cmd in cmds:
        out += [*(["--"] if out else []), *cmd]
    return out


def run_here(monkeypatch, capsys, cwd, *argv):
    """Run a stage's command line in this process, in cwd: (exit code, stderr). Anything but a
    clean exit (an uncaught exception: a traceback on the command line) fails the test."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", list(argv))
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(Path(cwd) / argv[0]), run_name="__main__")
    return done.value.code, capsys.readouterr().err


def assert_one_error_line(code, stderr, needle):
    """Exit 2 and one line on stderr, `error: ...` naming `needle` (pytest keeps library warnings,
    which a real process would print before it, off stderr)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], stderr


# --- 4. determinism of the data stage ---------------------------------------------------------

@pytest.fixture(scope="module")
def clean_data(tmp_path_factory, params_text):
    """The data stage for every task, in two directories, each in its own process with its own
    hash seed (so set or dict iteration order leaking into the bytes would show)."""
    base = tmp_path_factory.mktemp("data")
    dirs = []
    for name, hash_seed in (("a", "1"), ("b", "2")):
        work = make_workdir(base / name, params_text)
        result = run(work, RUNNER, *commands(*(["stages/data.py", t] for t in TASKS)),
                     env={"PYTHONHASHSEED": hash_seed})
        assert result.returncode == 0, result.stderr[-3000:]
        assert pickle_calls(result) == []
        dirs.append(work)
    return dirs


def test_data_stage_is_deterministic(clean_data):
    a, b = (hashes(d) for d in clean_data)
    splits = ("train.jsonl", "val.jsonl", "probe.jsonl", "test.jsonl", "task.json")
    assert sorted(a) == sorted([f"data/tasks/{t}/{s}" for t in TASKS for s in splits] +
                               [f"metrics/data/{t}.json" for t in TASKS])  # the overlap counts
    assert a == b


# --- 1. a stage killed mid-write --------------------------------------------------------------

def test_sigkill_mid_write_leaves_no_partial_output(tmp_path, params_text, clean_data):
    expected = hashes(clean_data[0], "data/tasks/cipher")
    work = make_workdir(tmp_path, params_text)
    data = work / "data" / "tasks"

    def state():
        """The output as a reader sees it: absent, or its hashes; and what else lies beside it."""
        out = hashes(work, "data/tasks/cipher") if (data / "cipher").exists() else None
        return out, sorted(p.name for p in data.glob("*") if p.name != "cipher")

    def kill_while_writing(inner):
        """Run the stage and SIGKILL it while it writes `inner` (retried if the write is missed);
        the output must then be as it was before the run."""
        before = state()[0]
        for _ in range(3):
            stale = set(state()[1])  # left by earlier kills: the stage must not mind them

            def writing():  # atomic_path's temp file of that split, inside this run's temp directory
                return [p for p in data.glob(f".cipher.*/.{inner}.*") if p.parent.name not in stale]
            proc = subprocess.Popen([PY, "stages/data.py", "cipher"], cwd=work,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while proc.poll() is None and not writing() and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            out, beside = state()
            assert all(re.fullmatch(rf"\.cipher\.{TEMP}", name) for name in beside), beside
            if proc.returncode == 0:  # it finished before the write was seen: complete; start over
                assert out == expected
                if before is None:
                    shutil.rmtree(data / "cipher")
                continue
            assert proc.returncode == -signal.SIGKILL
            assert out == before  # never partial
            if writing():  # still there: the kill came while that file was being written
                assert not stale & set(beside), "the run removes what earlier kills left"
                return
        pytest.fail(f"no kill landed while {inner} was being written")

    kill_while_writing("train.jsonl")
    kill_while_writing("probe.jsonl")  # a second kill, with the first one's leftovers in place
    assert state()[1], "a kill mid-write leaves its temp directory, until the next run"
    result = run(work, "stages/data.py", "cipher")
    assert result.returncode == 0, result.stderr
    assert state() == (expected, [])  # the same bytes as a clean run, and the leftovers are gone
    kill_while_writing("train.jsonl")  # over a complete output: it stays as it was


def kill_at_step(target, is_dir, step):
    """In a forked child: write version 1 of target, then version 2 with SIGKILL at `step`: a step
    is the middle of writing the content, or any rename, chmod or tree removal in atomic_path (a
    removal is killed halfway through). True when the child was killed (step was reached)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            counter = iter(range(1000))

            def point():
                return next(counter) == step

            def dying(real):
                def call(*args, **kwargs):
                    if point():
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)
                return call

            def dying_rmtree(path, *args, **kwargs):
                if point():
                    entries = sorted(Path(path).iterdir())
                    if entries:
                        entries[0].unlink()
                    os.kill(os.getpid(), signal.SIGKILL)
                return real_rmtree(path, *args, **kwargs)

            write(target, is_dir, "1", lambda: None)
            real_rmtree = shutil.rmtree
            os.replace, os.chmod, shutil.rmtree = dying(os.replace), dying(os.chmod), dying_rmtree
            write(target, is_dir, "2", lambda: point() and os.kill(os.getpid(), signal.SIGKILL))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the child failed before it was killed"
    return False


def write(target, is_dir, v, midway):
    with memgen_io.atomic_path(target, is_dir=is_dir) as tmp:
        if is_dir:
            (tmp / "a").write_text(f"a{v}")
            midway()
            (tmp / "b").write_text(f"b{v}")
        else:
            with open(tmp, "w") as f:
                f.write(f"v{v} first half, ")
                f.flush()
                midway()
                f.write("second half")


def version(is_dir, v):
    return {"a": f"a{v}", "b": f"b{v}"} if is_dir else f"v{v} first half, second half"


def content(target):
    if not target.exists():
        return None
    if target.is_dir():
        return {p.name: p.read_text() for p in target.iterdir()}
    return target.read_text()


@pytest.mark.parametrize("is_dir", [False, True], ids=["file", "directory"])
def test_atomic_path_killed_at_every_step(tmp_path, is_dir):
    target = tmp_path / "out"
    step = 0
    while kill_at_step(target, is_dir, step):
        assert content(target) in (None, version(is_dir, 1), version(is_dir, 2)), f"partial, kill at step {step}"
        write(target, is_dir, "3", lambda: None)  # the next write cleans up what the kill left
        assert [p.name for p in tmp_path.iterdir()] == ["out"], f"leftovers after a kill at step {step}"
        step += 1
        assert step < 50
    assert step >= 3  # the kills came at every point: mid-write, the chmod, the rename(s), the removal
    assert content(target) == version(is_dir, 2)


# --- 2. broken checkpoints, adapters and activation stores ------------------------------------

SETUP_TINY = f'''
"""After the data stage: pairs for the gpt2 extract stage (so its store has rows), and a tiny
random Llama with a word-level tokenizer as a local HF directory (families.llama.base)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, {str(ROOT / "tests")!r})
from tiny_repo import save_random_llama

rows = [json.loads(line) for split in ("train", "val", "probe", "test")
        for line in Path(f"data/tasks/cipher/{{split}}.jsonl").read_text().splitlines()]
probes = [r for r in rows if "mem" in r]
pairs = Path("data/runs/gpt2/cipher/r0/pairs.json")
pairs.parent.mkdir(parents=True)
pairs.write_text(json.dumps({{"pairs": [[probes[i]["prompt"], probes[i + 1]["prompt"]] for i in range(0, 8, 2)]}}))
save_random_llama("tiny_llama", [r[k] for r in rows for k in ("prompt", "target", "mem", "gen") if k in r],
                  layers=1, width=16)
'''

TINY = {
    "runs": {"families": ["gpt2", "llama"], "tasks": ["cipher"], "replicates": [0]},
    "tasks": {"cipher": {"n_train": 400, "trigger_fraction": 0.2, "n_val_groups": 10, "n_probe_groups": 20,
                         "n_test_groups": 5}},
    "families": {
        "gpt2": {"device": "cpu", "model": {"n_layer": 1, "n_embd": 16, "n_head": 2, "dropout": 0.0},
                 "train": {"steps": 10, "batch_size": 16, "eval_every": 10, "eval_groups": 5, "warmup": 2,
                           "eval_batch_size": 50},
                 "probe": {"max_groups": 20}},
        "llama": {"device": "cpu", "base": "tiny_llama",
                  "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "eval_groups": 3, "warmup": 1,
                            "eval_batch_size": 50},
                  "probe": {"max_groups": 5}}},
    "probe": {"batch_size": 100},
}

GPT2_WEIGHTS = "models/gpt2/cipher/r0/model.safetensors"
ADAPTER = "models/llama/cipher/r0/adapter_model.safetensors"
LLAMA_BASE = "models/llama/base/model.safetensors"
ACTIVATIONS = "data/runs/gpt2/cipher/r0/activations.safetensors"
NEURONS = "data/runs/gpt2/cipher/r0/neurons.safetensors"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, params_text):
    """Both families through data, base_model, train, extract, neurons and probe, in one process
    with every pickle loader refused: (work directory, the runner's result)."""
    work = make_workdir(tmp_path_factory.mktemp("tiny"), params_text, TINY)
    (work / "setup_tiny.py").write_text(SETUP_TINY)
    run_args = ["gpt2", "cipher", "0"], ["llama", "cipher", "0"]
    result = run(work, RUNNER, *commands(
        ["stages/data.py", "cipher"], ["setup_tiny.py"], *(["stages/base_model.py", f] for f in ("gpt2", "llama")),
        *(["stages/train.py", *a] for a in run_args), ["stages/extract.py", *run_args[0]],
        ["stages/neurons.py", *run_args[0]], *(["stages/probe.py", *a] for a in run_args)))
    return work, result


@pytest.fixture
def tiny(tiny_run):
    work, result = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    for path in (GPT2_WEIGHTS, ADAPTER, LLAMA_BASE, ACTIVATIONS, NEURONS):
        assert (work / path).is_file(), path
    return work


def truncated(data):
    return data[: len(data) // 2]


def bad_header(data):
    return (10 ** 12).to_bytes(8, "little") + data[8:]  # a header length past the end of the file


def garbage(data):
    return b"\x00not a safetensors file"


def without_a_tensor(data):
    from safetensors.torch import load, save

    tensors = load(data)
    tensors.pop(sorted(tensors)[-1])
    return save(tensors)


@pytest.fixture
def broken(tiny):
    """break_(path, how): the artifact at path replaced by how(its bytes); restored afterwards."""
    saved = {}

    def break_(rel, how):
        path = tiny / rel
        saved.setdefault(path, path.read_bytes())
        path.write_bytes(how(saved[path]))
    yield break_
    for path, data in saved.items():
        path.write_bytes(data)


PROBE_GPT2, PROBE_LLAMA = ["stages/probe.py", "gpt2", "cipher", "0"], ["stages/probe.py", "llama", "cipher", "0"]
STAGE_CASES = [  # the artifact, how it is broken, the stage that reads it, what the one line must say
    pytest.param(GPT2_WEIGHTS, truncated, PROBE_GPT2, GPT2_WEIGHTS + ": not a readable", id="gpt2-truncated"),
    pytest.param(GPT2_WEIGHTS, bad_header, ["stages/extract.py", "gpt2", "cipher", "0"],
                 GPT2_WEIGHTS + ": not a readable", id="gpt2-bad-header"),
    pytest.param(GPT2_WEIGHTS, without_a_tensor, PROBE_GPT2, GPT2_WEIGHTS + ": lacks ", id="gpt2-missing-tensor"),
    pytest.param("models/gpt2/cipher/r0/tokenizer.json", truncated, PROBE_GPT2,
                 "tokenizer.json: not a readable tokenizer", id="gpt2-tokenizer-truncated"),
    pytest.param(ADAPTER, truncated, PROBE_LLAMA, ADAPTER + ": not a readable", id="adapter-truncated"),
    pytest.param(ADAPTER, garbage, PROBE_LLAMA, ADAPTER + ": not a readable", id="adapter-garbage"),
    pytest.param(ADAPTER, without_a_tensor, PROBE_LLAMA, ADAPTER + ": lacks 1 of the adapter's tensors",
                 id="adapter-missing-tensor"),
    pytest.param(LLAMA_BASE, truncated, PROBE_LLAMA, LLAMA_BASE + ": not a readable", id="llama-base-truncated"),
    pytest.param("models/llama/base/tokenizer.json", truncated, PROBE_LLAMA,
                 "models/llama/base: cannot load the tokenizer", id="llama-base-tokenizer-truncated"),
    pytest.param(ACTIVATIONS, truncated, ["stages/neurons.py", "gpt2", "cipher", "0"],
                 ACTIVATIONS + ": not a readable", id="activations-truncated"),
    pytest.param(ACTIVATIONS, bad_header, ["stages/neurons.py", "gpt2", "cipher", "0"],
                 ACTIVATIONS + ": not a readable", id="activations-bad-header"),
]


@pytest.mark.parametrize("artifact,how,command,needle", STAGE_CASES)
def test_broken_artifact_is_one_line(tiny, broken, monkeypatch, capsys, artifact, how, command, needle):
    before = hashes(tiny)
    broken(artifact, how)
    code, stderr = run_here(monkeypatch, capsys, tiny, *command)
    assert_one_error_line(code, stderr, needle)
    before[artifact] = hashes(tiny)[artifact]
    assert hashes(tiny) == before  # nothing written


@pytest.mark.parametrize("how", [truncated, bad_header, garbage])
def test_broken_neuron_store_is_one_line(tiny, broken, capsys, how):
    """What the steer stage reads: read_neurons (read_tensors and read_tensor_metadata) under run_main."""
    broken(NEURONS, how)
    for reader in (read_neurons, memgen_io.read_tensors, memgen_io.read_tensor_metadata):
        with pytest.raises(SystemExit) as done:
            run_main(reader, tiny / NEURONS)
        assert_one_error_line(done.value.code, capsys.readouterr().err, f"{NEURONS}: not a readable safetensors")


def embedded_prefix(n):
    from memgen.families.llama import embedded_gguf

    try:
        source = embedded_gguf()
    except UserError as err:
        pytest.skip(str(err))
    with open(source, "rb") as f:
        return f.read(n)


@pytest.mark.parametrize("make", [lambda: b"not a GGUF file" * 10, lambda: embedded_prefix(100_000)],
                         ids=["garbage", "truncated"])
def test_broken_gguf_base_is_one_line(tmp_path, params_text, monkeypatch, capsys, make):
    work = make_workdir(tmp_path, params_text, {"families": {"llama": {"base": "broken.gguf"}}})
    (work / "broken.gguf").write_bytes(make())
    code, stderr = run_here(monkeypatch, capsys, work, "stages/base_model.py", "llama")
    assert_one_error_line(code, stderr, "broken.gguf: not a readable GGUF file")
    assert not [p for p in (work / "models").rglob("*") if p.is_file()]


# --- 5. safetensors and JSON only -------------------------------------------------------------

def test_stages_load_no_pickle(tiny_run):
    """The tiny run loaded its models, adapters, tokenizers and stores with every pickle loader refused."""
    work, result = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert pickle_calls(result) == []
    for made in ("models/llama/base/source.json", "data/runs/gpt2/cipher/r0/probe_outputs.jsonl",
                 "data/runs/llama/cipher/r0/probe_outputs.jsonl"):  # the base converted, both models loaded
        assert (work / made).exists(), made


def test_the_guard_sees_a_swallowed_pickle_load(tmp_path):
    """nopickle_runner notices a load even when the code around it catches the error."""
    (tmp_path / "sneaky.py").write_text(
        "import io, pickle, torch\n"
        "for load in (lambda: pickle.loads(pickle.dumps(1)), lambda: torch.load(io.BytesIO(b''))):\n"
        "    try:\n        load()\n    except Exception:\n        pass\n")
    result = run(tmp_path, RUNNER, "sneaky.py")
    assert result.returncode == 0, result.stderr
    assert [call.split("\n")[0] for call in pickle_calls(result)] == ["pickle.loads", "torch.load"]


def test_pickled_weights_are_refused_unread(tiny, tmp_path, monkeypatch):
    """A checkpoint or adapter saved as .bin (pickle) is an error, and torch.load is never called."""
    from safetensors.torch import load_file

    from memgen.families import BUILT_IN
    from memgen.params import load_params

    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    monkeypatch.chdir(tiny)  # the llama base is found at models/llama/base
    families = load_params("params.yaml").section("families")
    for family, weights, pickled, needle in (
            ("gpt2", "model.safetensors", "pytorch_model.bin", "no file named model.safetensors"),
            ("llama", "adapter_model.safetensors", "adapter_model.bin", "adapter_model.safetensors: file not found")):
        copy = tmp_path / family
        shutil.copytree(tiny / f"models/{family}/cipher/r0", copy)
        torch.save(load_file(copy / weights), copy / pickled)
        (copy / weights).unlink()
        with pytest.raises(UserError, match=needle):
            BUILT_IN[family].load_model(copy, torch.device("cpu"), families.section(family))
    assert calls == []


SCANNED = ("src", "stages", "benchmarks")
PICKLERS = r"(c?pickle|_pickle|dill|cloudpickle|joblib|shelve|marshal)"
FORBIDDEN = {
    "a pickle-based module": rf"^\s*import\s[^\n]*\b{PICKLERS}\b|^\s*from\s+{PICKLERS}\b|\b{PICKLERS}\.",
    "torch.load": r"\btorch\.(serialization\.)?load\b|^\s*from\s+torch(\.serialization)?\s+import\s[^\n]*\bload\b",
    "trust_remote_code": r"trust_remote_code[\"']?\s*[=:]\s*(?!\s|False\b)",
    "weights_only=False": r"weights_only[\"']?\s*[=:]\s*False",
    "allow_pickle=True": r"allow_pickle[\"']?\s*[=:]\s*True",
    "a .bin or pickle weights file": r"""["'][^"'\n]*\.(bin|pt|pth|pkl|pickle|ckpt|joblib)["']""",
    "non-safetensors saving or loading": r"(safe_serialization|use_safetensors)[\"']?\s*[=:]\s*(?!\s|True\b)",
}
# from_pretrained of anything but these must say use_safetensors=True (or read a GGUF file)
NOT_WEIGHTS = {"AutoTokenizer", "AutoConfig", "PeftModel"}  # PeftModel: families.adapters.load_adapter checks the file


def calls_of(text, name):
    """(receiver, the argument text) of every `receiver.name(...)` call in text."""
    for match in re.finditer(rf"(\w+)\.{name}\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield match.group(1), text[match.end():i - 1]


def test_no_code_path_can_unpickle():
    files = [p for d in SCANNED for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 10
    found = []
    for path in files:
        text = path.read_text()
        for what, pattern in FORBIDDEN.items():
            for match in re.finditer(pattern, text, flags=re.MULTILINE):
                found.append(f"{path.relative_to(ROOT)}:{text[:match.start()].count(chr(10)) + 1}: {what}")
        for receiver, args in calls_of(text, "from_pretrained"):
            if receiver not in NOT_WEIGHTS and not re.search(r"use_safetensors\s*=\s*True|gguf_file\s*=", args):
                found.append(f"{path.relative_to(ROOT)}: {receiver}.from_pretrained without use_safetensors=True")
    assert found == []
    assert "use_safetensors=True" in (ROOT / "src/memgen/families/base.py").read_text()  # the scan sees the loader
