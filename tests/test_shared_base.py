"""The shared-base protocol in miniature: on one toy base whose readout is planted in known units, two
adapters trained apart (random LoRA updates) keep those units' meaning, so the neurons ranked on one
adapter's states steer the other adapter, while as many random units with the same shifts do not."""
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from memgen.families.adapters import base_sha256, load_adapter, new_adapter
from memgen.params import Params
from memgen.stats import RunningMoments, nmd_and_rho
from memgen.steering import select_top, targeted

MEM, GEN = 1, 2        # the two answers: the next token after a prompt
PLANTED = [3, 7, 11]   # the final state's units the readout reads
WIDTH, LAYERS = 16, 2
LORA = {"model": {"lora": {"r": 4, "lora_alpha": 8, "dropout": 0.0, "target_modules": ["c_attn", "c_proj", "c_fc"]}}}


def toy_base(folder):
    """A random 2-layer GPT-2 whose answer is MEM when the planted units of the last block's output sum
    high after the final norm, GEN when low (no other token can win); the prompt's last token sets them
    (tokens 3-4: high, 5-7: low), through the residual stream."""
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=8, n_positions=8, n_embd=WIDTH, n_layer=LAYERS, n_head=2, tie_word_embeddings=False)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.wte.weight[3:5, PLANTED] = 2.0
        model.transformer.wte.weight[5:8, PLANTED] = -2.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[MEM, PLANTED] = 5.0
        model.lm_head.weight[GEN, PLANTED] = -5.0
        model.lm_head.weight[[0, 3, 4, 5, 6, 7]] = -100.0  # only MEM or GEN is ever the answer
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def trained_adapter(folder, seed, out):
    """A LoRA adapter on the base with random (as if trained) updates, saved and loaded back."""
    base = GPT2LMHeadModel.from_pretrained(folder, use_safetensors=True)
    model, save = new_adapter(base, Params(LORA, "families.toy"), seed, folder, fan_in_fan_out=True)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    save(out)
    fresh = GPT2LMHeadModel.from_pretrained(folder, use_safetensors=True)
    return load_adapter(fresh, out, folder).merge_and_unload().eval()


def answers_and_states(model, prompts, shift=None):
    """Each prompt's answer and every layer's block output at its last position; `shift`: {layer: (units,
    values)} added to the block outputs at every position."""
    states, hooks = {}, []
    for layer, block in enumerate(model.transformer.h):
        def hook(module, args, output, layer=layer):
            hidden = output[0] if isinstance(output, tuple) else output
            if shift and layer in shift:
                units, values = shift[layer]
                hidden[..., units] += values
            states[layer] = hidden[:, -1].detach().clone()
        hooks.append(block.register_forward_hook(hook))
    with torch.no_grad():
        logits = model(torch.tensor(prompts)).logits[:, -1]
    for h in hooks:
        h.remove()
    return logits.argmax(-1), torch.stack([states[l] for l in range(LAYERS)], 1)


def ranked_neurons(model, prompts):
    """NMD and rho of every unit of every layer between the prompts the model answers MEM and GEN."""
    answers, states = answers_and_states(model, prompts)
    mem, gen = RunningMoments(), RunningMoments()
    mem.update(states[answers == MEM])
    gen.update(states[answers == GEN])
    return nmd_and_rho(mem, gen)


def flipped_to_gen(model, prompts, intervention, alpha):
    answers, _ = answers_and_states(model, prompts)
    source = [p for p, a in zip(prompts, answers.tolist()) if a == MEM]
    steered, _ = answers_and_states(model, source, intervention.at(alpha))
    return (steered == GEN).float().mean().item(), len(source)


def test_neurons_of_one_adapter_steer_another_on_the_shared_base_and_random_ones_do_not(tmp_path):
    folder = toy_base(tmp_path / "base")
    sha = base_sha256(folder)
    a, b = trained_adapter(folder, 1, tmp_path / "a"), trained_adapter(folder, 2, tmp_path / "b")
    assert base_sha256(folder) == sha  # both adapters load the one base, untouched
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(3, 8, (400, 5), generator=g).tolist()
    assert not torch.equal(answers_and_states(a, prompts)[1], answers_and_states(b, prompts)[1])  # they differ

    nmd, rho = ranked_neurons(a, prompts)
    selected = select_top(rho, len(PLANTED) * LAYERS / (LAYERS * WIDTH))  # the residual stream carries them in both
    assert sorted((selected % WIDTH).tolist()) == sorted(PLANTED * LAYERS)
    transferred, n = flipped_to_gen(b, prompts, targeted(nmd, selected, "m2g"), alpha=1.0)

    # the matched random control: as many random units of the same layers, the same shift sizes, random signs
    random_rates = []
    for draw in range(10):
        shift = targeted(nmd, selected, "m2g")
        others = [torch.tensor([u for u in torch.randperm(WIDTH, generator=g).tolist() if u not in PLANTED][:3])
                  for _ in range(LAYERS)]
        shift.idx = torch.cat([layer * WIDTH + units for layer, units in enumerate(others)])
        shift.per_alpha = shift.per_alpha.abs() * (torch.randint(0, 2, (len(selected),), generator=g).float() * 2 - 1)
        random_rates.append(flipped_to_gen(b, prompts, shift, alpha=1.0)[0])
    assert n >= 50
    assert transferred >= 0.9 and max(random_rates) <= 0.3, (transferred, random_rates)
