"""Family-specific pieces: building, saving and loading models and their codecs.

Everything else (training, probing, capture, steering) is shared and sees (model, codec).
"""
from pathlib import Path

import torch

from .codec import Codec, build_task_tokenizer, load_task_tokenizer
from .errors import UserError
from .params import FAMILIES


def check_family(name):
    if name not in FAMILIES:
        raise UserError(f"unknown family {name!r}: allowed are {', '.join(FAMILIES)}")
    return name


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("params: device 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def gpt2_settings(fp):
    """Validated GPT-2 architecture settings from families.gpt2."""
    m = fp.section("model")
    n_embd, n_head = m.int("n_embd", lo=8), m.int("n_head", lo=1)
    if n_embd % n_head:
        raise UserError(f"params: 'families.gpt2.model.n_embd' ({n_embd}) must be divisible by n_head ({n_head})")
    return {"n_layer": m.int("n_layer", lo=1), "n_embd": n_embd, "n_head": n_head,
            "dropout": m.float("dropout", lo=0.0, hi=1.0)}


def new_gpt2(settings, task, texts, n_positions, seed):
    """A fresh GPT-2 and its task tokenizer, initialised from `seed`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_task_tokenizer(texts, task.token_pattern)
    codec = Codec.from_task_tokenizer(tokenizer)
    config = GPT2Config(vocab_size=tokenizer.get_vocab_size(), n_positions=n_positions,
                        n_embd=settings["n_embd"], n_layer=settings["n_layer"], n_head=settings["n_head"],
                        resid_pdrop=settings["dropout"], embd_pdrop=settings["dropout"],
                        attn_pdrop=settings["dropout"], bos_token_id=codec.eos_id,
                        eos_token_id=codec.eos_id, pad_token_id=codec.pad_id)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config), codec, tokenizer


def save_gpt2(model, tokenizer, out_dir):
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save(str(Path(out_dir) / "tokenizer.json"))


def load_gpt2(model_dir, device):
    from transformers import GPT2LMHeadModel

    model_dir = Path(model_dir)
    codec = Codec.from_task_tokenizer(load_task_tokenizer(model_dir / "tokenizer.json"))
    model = from_pretrained_checked(GPT2LMHeadModel, model_dir)
    return model.to(device).eval(), codec


def from_pretrained_checked(cls, model_dir, **kwargs):
    """from_pretrained with safetensors only, and one clear line when the directory is broken."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise UserError(f"{model_dir}: no config.json (not a saved model directory)")
    try:
        return cls.from_pretrained(model_dir, use_safetensors=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{model_dir}: cannot load the checkpoint ({first})") from None


def load_run_model(family, model_dir, device):
    """The trained model of one run and its codec, in eval mode on `device`."""
    if check_family(family) == "gpt2":
        return load_gpt2(model_dir, device)
    raise UserError(f"family {family!r} is not built yet")
