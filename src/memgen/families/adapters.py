"""LoRA adapters on a shared base (llama, gpt2_shared): the settings, a fresh adapter, and saving and
loading one. An adapter records the sha256 of the base weights it was trained on (BASE_FILE) and
refuses to load on any other base, so every run of a family provably steers the same base's neurons."""
from pathlib import Path

import torch
from safetensors import SafetensorError

from ..errors import UserError
from ..io import read_json, sort_json_lists, tensor_names, write_json
from .base import first_line, sha256_of

BASE_FILE = "base.json"  # beside an adapter: {"sha256": of the base's weights files}


def lora_settings(fp):
    """families.<name>.model.lora as peft's LoraConfig keywords."""
    lp = fp.section("model").section("lora")
    modules = lp.list("target_modules", unique=True)
    if not all(isinstance(m, str) and m for m in modules):
        raise UserError(f"params: '{lp.prefix}.target_modules' must hold module names, got {modules!r}")
    return {"r": lp.int("r", lo=1), "lora_alpha": lp.int("lora_alpha", lo=1),
            "lora_dropout": lp.float("dropout", lo=0.0, hi=1.0), "target_modules": modules}


def base_sha256(base_folder):
    """The hash of a base's weights (every safetensors file of its folder)."""
    return sha256_of(sorted(Path(base_folder).glob("*.safetensors")))


def new_adapter(base, fp, seed, base_folder, **extra):
    """(peft model with a fresh LoRA adapter from families.<name>.model.lora, save(out_dir))."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    try:
        model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", bias="none", **lora_settings(fp), **extra))
    except ValueError as err:  # e.g. a target module the base does not have
        raise UserError(f"params: '{fp.prefix}.model.lora': {str(err).splitlines()[0]}") from None
    sha = base_sha256(base_folder)

    def save(out_dir):
        model.save_pretrained(out_dir, safe_serialization=True)  # the adapter alone, in peft's format
        sort_json_lists(Path(out_dir) / "adapter_config.json", ["target_modules"])  # peft keeps a set
        write_json(Path(out_dir) / BASE_FILE, {"sha256": sha})
    return model, save


def load_adapter(base, adapter_dir, base_folder):
    """The base with the saved LoRA adapter: from adapter_model.safetensors only (peft would fall
    back to a pickled adapter_model.bin, or ask the hub), which must hold every adapter tensor and
    have been trained on this very base."""
    from peft import PeftModel, get_peft_model_state_dict

    adapter_dir = Path(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if not (adapter_dir / "adapter_config.json").exists():
        raise UserError(f"{adapter_dir}: no adapter_config.json (not a saved adapter; run the train stage)")
    recorded = read_json(adapter_dir / BASE_FILE).get("sha256") if (adapter_dir / BASE_FILE).exists() else None
    if recorded != base_sha256(base_folder):
        raise UserError(f"{adapter_dir}: trained on another base than {base_folder} (sha256 in {BASE_FILE}: "
                        f"{recorded}); re-run the train stage")
    saved = tensor_names(weights)
    try:
        model = PeftModel.from_pretrained(base, adapter_dir)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as err:
        raise UserError(f"{adapter_dir}: cannot load the adapter ({first_line(err)})") from None
    missing = sorted(set(get_peft_model_state_dict(model)) - saved)
    if missing:  # peft only warns, and the adapter would act as if untrained
        raise UserError(f"{weights}: lacks {len(missing)} of the adapter's tensors, e.g. {missing[0]!r} "
                        "(a broken or foreign adapter; re-run the train stage)")
    return model
