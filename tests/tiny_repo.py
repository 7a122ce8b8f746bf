"""A git + DVC repo of the project with the tiny profile (tests/tiny_params.yaml merged over
params.yaml): where tests/test_pipeline.py runs `dvc repro`, and benchmarks/gpu_check.py on a GPU.
Standard library and pyyaml only at import, so a benchmark can import it without pytest installed."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ["dvc.yaml", "stages", "src", ".dvc/config", ".dvc/plots", ".dvcignore"]


def merge(base, over):
    """Nested dicts of `over` merged into `base` (a params profile over params.yaml)."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def run(cwd, *args, env=None, timeout=None):
    """The command's CompletedProcess whatever its exit status, with the venv's dvc and python
    first on PATH, also when pytest was started without activating it. env values of None unset."""
    full_env = {**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {}),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    full_env = {key: value for key, value in full_env.items() if value is not None}
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout)


def sh(cwd, *args, env=None):
    result = run(cwd, *args, env=env)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def make_repo(path, remote, over=None, files=None):
    """A git + DVC repo of the project at `path` with the tiny profile (and `over`) as params.yaml;
    files: {path in the repo: source file} copied in as well."""
    path.mkdir()
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, path / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, path / name)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()),
                   yaml.safe_load((ROOT / "tests" / "tiny_params.yaml").read_text()))
    params = merge(params, over or {})
    if "llama" in params["runs"]["families"] and params["families"]["llama"]["base"] == TINY_LLAMA:
        write_tiny_llama(path / TINY_LLAMA, params)
    sweeps = path / "metrics" / "sweeps"  # the report reads the side sweeps' files: none run on this profile
    sweeps.mkdir(parents=True)
    (sweeps / "size.json").write_text('{"command": "python experiments/size_sweep.py", "sizes": []}\n')
    for name, src in (files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, path / name)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(path, "git", "init", "-q")
    sh(path, "git", "config", "user.name", "memgen test")  # commits here and in dvc exp, with no global config
    sh(path, "git", "config", "user.email", "test@memgen.invalid")
    sh(path, "dvc", "remote", "modify", "local", "url", str(remote))
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "tiny profile")
    return path


TINY_LLAMA = "tiny_llama"  # the tiny profile's families.llama.base: a local HF Llama directory in the repo


def write_tiny_llama(path, params):
    """A random 2-layer Llama with a word-level tokenizer over the pieces of every task's data (drawn as the
    data stage draws it), saved as a local HF directory: the llama family's code path without the embedded
    135M base, whose conversion and decoding took most of the tiny run (its own tests cover it)."""
    from memgen.params import Params
    from memgen.splits import SPLITS, draw_dataset
    from memgen.tasks import load_task

    texts = []
    for name in params["runs"]["tasks"]:
        tp = params["tasks"][name]
        data = draw_dataset(load_task(Params(params), name), tp["n_train"],
                            {s: tp[f"n_{s}_groups"] for s in SPLITS}, params["seed"])
        texts += [row[k] for rows in data.values() for row in rows for k in ("prompt", "target", "mem", "gen")
                  if k in row]
    save_random_llama(path, texts, layers=2, width=32)


def save_random_llama(path, texts, layers, width):
    """A random Llama (seed 0) of `layers` x `width` with a word-level tokenizer over the pieces of `texts`,
    saved with its tokenizer as a local HF directory (what families.llama.base may name)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from memgen.codec import EOS, PAD, UNK, build_task_tokenizer
    from memgen.tasks.base import TOKEN_PATTERN

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=build_task_tokenizer(texts, TOKEN_PATTERN),
                                        eos_token=EOS, pad_token=PAD, unk_token=UNK)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def stages_run(output):
    """Stage names (without the matrix item) of the `Running stage '...'` lines in dvc's output."""
    return {line.split("'")[1].split("@")[0] for line in output.splitlines() if line.startswith("Running stage")}
