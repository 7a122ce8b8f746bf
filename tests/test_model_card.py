"""The README.md of a trained model directory says how it was trained and how its tokenizer cuts text."""
import json
import random

import torch
import yaml

from tiny_repo import merge
from memgen.io import write_json
from memgen.model_card import write_model_card
from memgen.run import Run
from memgen.training import rebalance, train

CFG = {"steps": 4, "mem_share": None, "batch_size": 8, "lr": 0.001, "weight_decay": 0.01, "warmup": 1,
       "eval_every": 2, "eval_batch_size": 32, "max_other": 0.5, "num_beams": 1}


def open_run(tmp_path, monkeypatch, params_data, family, over):
    """A run of `family` on cipher in a project folder of its own, with its base's source.json."""
    monkeypatch.chdir(tmp_path)
    merge(params_data, {"runs": {"families": ["gpt2", "llama"]}, **over})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_data))
    return Run.open(family, "cipher", 0, params_path=tmp_path / "params.yaml")


def card_tokens(card):
    """The token list shown under the card's Tokenizer heading."""
    block = card.split("## Tokenizer", 1)[1].split("```\n", 2)[1]
    return json.loads(block)


def test_card_of_a_trained_gpt2(tmp_path, monkeypatch, params_data):
    tiny = {"model": {"n_layer": 1, "n_embd": 16, "n_head": 2, "dropout": 0.0}}
    run = open_run(tmp_path, monkeypatch, params_data, "gpt2", {"families": {"gpt2": tiny}})
    write_json("models/gpt2/base/source.json", {"source": "scratch"})
    rng = random.Random(0)
    examples = run.task.training_examples(rng, 64)
    val = run.task.probe_groups(rng, 2, split="val")
    texts = [e["prompt"] + e["target"] for e in examples] + [p[k] for p in val for k in ("prompt", "mem", "gen")]
    model, codec, save = run.plugin.new_model(run.family_params, texts, seed=run.seed)
    curve, chosen = train(model, codec, run.task, examples, val, CFG, run.seed)
    save(tmp_path / "model")
    write_model_card(tmp_path / "model", run, CFG, chosen, codec, examples)

    card = (tmp_path / "model" / "README.md").read_text()
    n_mem = sum(map(run.task.is_memorized, examples))
    for needle in ["# gpt2 / cipher, replicate 0", "- family: gpt2; task: cipher", "- base: scratch",
                   '"n_embd": 16', f"- seed: {run.seed} ", "4 steps of batch 8, learning rate 0.001",
                   f"64 training examples, {n_mem} of them", "mem_share null: the data's own mix",
                   f"checkpoint: step {chosen['step']} of 4. Every 2 steps the model answered 6 val prompts "
                   "in 2 groups",
                   f"pair yield {chosen['pair_yield']:.3f}", "tokenizer.json, built from the training texts"]:
        assert needle in card, needle
    assert chosen["step"] in (2, 4) and "LoRA" not in card
    if chosen["other"] <= CFG["max_other"]:  # why this step: as the trainer chose it
        assert "this step had the highest pair yield" in card
    else:
        assert "no step kept its OTHER share at most 0.5, so this is the one with the least" in card
    tokens = card_tokens(card)
    assert "".join(tokens) == examples[0]["prompt"] and len(tokens) == len(codec.prompt_ids(examples[0]["prompt"]))
    assert (tmp_path / "model" / "config.json").exists()  # the card sits beside the model, which it leaves alone


def test_card_of_a_llama_adapter(tmp_path, monkeypatch, params_data):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from memgen.families.llama import embedded_gguf

    run = open_run(tmp_path, monkeypatch, params_data, "llama", {})
    base = tmp_path / "models" / "llama" / "base"  # a 2-layer Llama with the embedded base's tokenizer
    gguf = embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    write_json(base / "source.json", {"source": gguf.name, "sha256": "ab" * 32})

    examples = run.task.training_examples(random.Random(0), 200)
    cfg = {**CFG, "mem_share": 0.3, "lr": 0.003}
    examples = rebalance(examples, run.task.is_memorized, cfg["mem_share"])
    model, codec, save = run.plugin.new_model(run.family_params, [], seed=run.seed)
    save(tmp_path / "adapter")
    chosen = {"step": 2, "n_prompts": 6, "n_groups": 2, "mem": 0.3, "gen": 0.5, "other": 0.2, "pair_yield": 0.5,
              "loss": 3.5}
    write_model_card(tmp_path / "adapter", run, cfg, chosen, codec, examples)

    card = (tmp_path / "adapter" / "README.md").read_text()
    lora = run.family_params.raw("model")["lora"]
    n_mem = sum(map(run.task.is_memorized, examples))
    for needle in ["# llama / cipher, replicate 0", f"- base: {gguf.name} (sha256 {'ab' * 32})",
                   f"- saved as a LoRA adapter on models/llama/base: r {lora['r']}, lora_alpha {lora['lora_alpha']}, "
                   f"dropout {lora['dropout']}, on {', '.join(sorted(lora['target_modules']))}",
                   "learning rate 0.003",
                   f"{len(examples)} training examples, {n_mem} of them ({n_mem / len(examples):.1%})",
                   "mem_share 0.3: rebalanced", "checkpoint: step 2 of 4",
                   "this step had the highest pair yield (groups with both a memorized and a generalized answer) "
                   "among those whose OTHER share was at most 0.5: pair yield 0.500, MEM 0.300, GEN 0.500, OTHER 0.200",
                   "The model reads text with the base's tokenizer"]:
        assert needle in card, needle
    assert "library_name: peft" not in card  # peft's template card is replaced
    prompt = examples[0]["prompt"]
    ciphertext = prompt.split("CIPHERTEXT:")[1].split()[0]
    tokens = card_tokens(card)
    assert any(tokens[i:i + len(ciphertext)] == list(ciphertext) for i in range(len(tokens)))  # letter by letter
