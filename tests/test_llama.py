"""The llama family: the embedded base, LoRA training and saving, and the base checks."""
import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from memgen.errors import UserError
from memgen.families.llama import LOAD_SETTINGS, check_base_source, convert_base, embedded_gguf


def test_embedded_base_converts_without_changing_logits(tmp_path):
    gguf = check_base_source("embedded")
    record = convert_base(gguf, tmp_path)
    assert record["n_params"] > 100_000_000 and record["layers"] == 30 and len(record["sha256"]) == 64
    converted = LlamaForCausalLM.from_pretrained(tmp_path, use_safetensors=True).eval()
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    ids = torch.tensor([tokenizer.encode("Input:\n12+7+30+5\nTarget:\n")])
    with torch.no_grad():
        assert torch.equal(converted(ids).logits, loaded(ids).logits)


SAVE_TOKENIZER = """
import sys
from transformers import AutoTokenizer
from memgen.families.llama import embedded_gguf, save_tokenizer
gguf = embedded_gguf()
save_tokenizer(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name), sys.argv[1])
"""


def test_base_tokenizer_files_do_not_depend_on_the_environment(tmp_path):
    """The base's tokenizer, saved offline (HF_HUB_OFFLINE=1 used to be recorded as local_files_only)
    and online, is the same bytes, so the base hashes the same anywhere. Only the tokenizer is built
    here: the whole base takes ~20 s a build, and its model files never recorded the environment."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    offline = {**plain, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    for name, env in (("plain", plain), ("offline", offline)):
        subprocess.run([sys.executable, "-c", SAVE_TOKENIZER, str(tmp_path / name)], env=env, check=True,
                       capture_output=True, timeout=300)
    saved = {name: {p.name: p.read_bytes() for p in (tmp_path / name).iterdir()} for name in ("plain", "offline")}
    assert "tokenizer_config.json" in saved["plain"] and "tokenizer.json" in saved["plain"]
    assert saved["plain"] == saved["offline"]
    assert not set(LOAD_SETTINGS) & set(json.loads(saved["plain"]["tokenizer_config.json"]))
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "plain")  # still loads, and reads text as before
    assert tokenizer.encode("Input:\n12+7\nTarget:\n") == AutoTokenizer.from_pretrained(
        embedded_gguf().parent, gguf_file=embedded_gguf().name).encode("Input:\n12+7\nTarget:\n")


def tiny_base(path):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    return model


def test_lora_step_trains_only_the_adapter(tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    base = tiny_base(tmp_path / "base")
    before = {n: p.clone() for n, p in base.named_parameters()}
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    ids = torch.randint(0, 32, (3, 9))
    for _ in range(3):  # LoRA B starts at zero: a few steps move the output
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, param in model.base_model.model.named_parameters():
        if "lora_" not in name:
            key = name.replace(".base_layer", "")
            assert torch.equal(param, before[key]), f"{name} moved"
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["r"] == 4
    fresh = LlamaForCausalLM.from_pretrained(tmp_path / "base")
    merged = PeftModel.from_pretrained(fresh, tmp_path / "adapter").merge_and_unload().eval()
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)


def test_base_source_checks(tmp_path):
    assert embedded_gguf().suffix == ".gguf"
    with pytest.raises(UserError, match="does not exist"):
        check_base_source(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="does not exist"):
        check_base_source(str(tmp_path / "model.gguf"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="not a .gguf file"):
        check_base_source(str(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        check_base_source(str(tmp_path / "empty"))
    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(UserError, match="not a Llama architecture"):
        check_base_source(str(gpt2))
    tiny_base(tmp_path / "llama")
    assert check_base_source(str(tmp_path / "llama")) == tmp_path / "llama"
    with pytest.raises(UserError, match="'embedded' or a local path"):
        check_base_source(None)


def test_llama_codec_reads_letters_and_digits_one_by_one(params_data):
    import random

    from memgen.codec import Codec
    from memgen.params import Params
    from memgen.tasks import TASKS, load_task
    from memgen.tasks.base import TOKEN_PATTERN

    gguf = check_base_source("embedded")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    codec = Codec.from_hf(tokenizer, TOKEN_PATTERN)
    cipher = load_task(Params(params_data), "cipher")
    ct = "SMFVKHQWQRAPL"
    tokens = [tokenizer.decode([i]) for i in codec.prompt_ids(cipher.prompt(ct))]
    assert any(tokens[i:i + len(ct)] == list(ct) for i in range(len(tokens)))
    assert codec.target_ids("ZIMGAUXRXWKED")[:-1] == [tokenizer.convert_tokens_to_ids(c) for c in "ZIMGAUXRXWKED"]
    assert len(tokenizer.encode("ZIMGAUXRXWKED", add_special_tokens=False)) < 13  # what plain BPE would do
    for name in TASKS:  # every prompt and answer comes back unchanged
        task = load_task(Params(params_data), name)
        for ex in task.training_examples(random.Random(0), 50):
            for text in (ex["prompt"], ex["target"]):
                assert codec.text(codec.prompt_ids(text)) == text
