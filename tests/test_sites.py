import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from memgen.codec import Codec
from memgen.errors import UserError
from memgen.evaluate import Outputs, Steerer
from memgen.generate import beam_decode, decode_prompts, forward_prompts, greedy_decode, left_pad
from memgen.families import BUILT_IN
from memgen.sites import _hidden, capture_last, hooks, margin_gradients, shift_last
from memgen.steering import ADAPTIVE, SCHEDULES, Intervention


def tiny_model(family):
    torch.manual_seed(0)
    if family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=12, n_positions=32, n_embd=16, n_layer=3, n_head=2)).eval()
    config = LlamaConfig(vocab_size=12, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


SITE_CASES = [("gpt2", "mlp_in"), ("gpt2", "resid_post"), ("llama", "mlp_in"), ("llama", "resid_post")]


@pytest.fixture(scope="module", params=SITE_CASES, ids=["/".join(c) for c in SITE_CASES])
def case(request):
    family, site = request.param
    model = tiny_model(family)
    return model, BUILT_IN[family].site_modules(model, site), site


@pytest.fixture(scope="module")
def codec():
    # tokens: 0 pad, 1 eos, characters a.. map to 2..
    return Codec(lambda t: [2 + ord(c) - ord("a") for c in t],
                 lambda ids: "".join(chr(ord("a") + i - 2) for i in ids), pad_id=0, eos_id=1)


def record_full(modules):
    """Hooks that keep every call's full site output."""
    calls = [[] for _ in modules]

    def make(layer):
        def hook(module, inputs, output):
            calls[layer].append(_hidden(output).detach().clone())
        return hook
    return calls, hooks(modules, make)


def test_shift_moves_only_selected_neurons_at_last_position(case, codec):
    model, modules, _ = case
    prompts = ["abc", "abcdefg"]
    idx, values = torch.tensor([1, 7, 12]), torch.tensor([0.5, -1.25, 3.0])
    base_calls, rec = record_full(modules)
    with rec:
        forward_prompts(model, codec, prompts, batch_size=2)
    steered_calls, rec = record_full(modules)
    with shift_last(modules, {1: (idx, values)}), rec:  # recorder after the shift: sees the shifted output
        forward_prompts(model, codec, prompts, batch_size=2)
    base, steered = base_calls[1][0], steered_calls[1][0]
    diff = steered - base
    assert torch.allclose(diff[:, -1, idx], values.expand(2, -1), atol=1e-6)
    untouched = torch.ones_like(diff, dtype=torch.bool)
    untouched[:, -1, idx] = False
    assert torch.all(diff[untouched] == 0)
    assert torch.equal(steered_calls[0][0], base_calls[0][0])  # earlier layers unchanged


def test_shift_applies_at_every_decoding_step(case, codec):
    model, modules, _ = case
    idx, values = torch.tensor([3]), torch.tensor([100.0])
    seen = []

    def make(layer):
        def hook(module, inputs, output):
            h = _hidden(output)
            seen.append((h.shape[1], h[:, -1, 3].clone()))
        return hook
    with shift_last(modules, {0: (idx, values)}), hooks(modules[:1], make):
        greedy_decode(model, codec, ["ab", "abcd"], max_new_tokens=4, batch_size=2)
    assert len(seen) >= 2 and seen[0][0] == 4 and all(length == 1 for length, _ in seen[1:])
    assert all(torch.all(v > 50) for _, v in seen)  # the +100 shift is there at every step


def test_capture_takes_the_last_prompt_token(case, codec):
    model, modules, _ = case
    store = [[] for _ in modules]
    with capture_last(modules, store):
        forward_prompts(model, codec, ["abc", "a"], batch_size=2)
    single = [[] for _ in modules]
    with capture_last(modules, single):
        forward_prompts(model, codec, ["a"], batch_size=1)
    # left padding: the short prompt's last state equals its unpadded state
    assert torch.allclose(store[2][0][1], single[2][0][0], atol=1e-5)


def test_decoding_batched_equals_one_by_one(case, codec):
    model, _, _ = case
    prompts = ["abc", "a", "abcdef"]
    batched = greedy_decode(model, codec, prompts, max_new_tokens=5, batch_size=3)
    alone = [greedy_decode(model, codec, [p], max_new_tokens=5, batch_size=1)[0] for p in prompts]
    assert batched == alone


FAMILIES = ["gpt2", "llama"]
PROMPTS = ["abc", "a", "abcdefgh", "hgf", "jj", "bcad"]   # lengths differ: left padding in every batch


@pytest.mark.parametrize("family", FAMILIES)
def test_one_beam_is_the_greedy_path(family, codec, monkeypatch):
    """num_beams=1 (the default) runs greedy_decode itself, never generate: outputs as before."""
    model = tiny_model(family)
    monkeypatch.setattr(model, "generate", lambda *a, **k: pytest.fail("generate called with num_beams=1"))
    assert decode_prompts(model, codec, PROMPTS, 6, 4) == greedy_decode(model, codec, PROMPTS, 6, 4)


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_with_one_beam_is_greedy_decoding(family, codec):
    """generate's greedy search over the same left-padded batches gives greedy_decode's strings:
    it places padding and positions as left_pad does (GPT-2's learned positions would show a slip)."""
    model = tiny_model(family)
    assert beam_decode(model, codec, PROMPTS, 6, 4, num_beams=1) == greedy_decode(model, codec, PROMPTS, 6, 4)


def mean_log_prob(model, codec, prompt, output, max_new):
    """The model's mean log-probability per new token of `output` after `prompt`, EOS included
    when the output stopped before max_new (a test codec token is one character)."""
    prompt_ids = codec.prompt_ids(prompt)
    new = codec.prompt_ids(output) + ([codec.eos_id] if len(output) < max_new else [])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt_ids + new])).logits[0, len(prompt_ids) - 1:-1]
    return logits.log_softmax(-1).gather(-1, torch.tensor(new)[:, None]).mean().item()


@pytest.mark.parametrize("family", FAMILIES)
def test_beam_search_scores_at_least_greedy(family, codec):
    """The chosen beam's mean log-probability per new token (what Hugging Face ranks finished beams
    by, length_penalty 1) is at least greedy's for every prompt here, and beats it on some (beam
    search does not promise this: better beams may push the greedy one out). Its sum can be lower:
    a longer answer may win on the mean."""
    model = tiny_model(family)
    greedy = greedy_decode(model, codec, PROMPTS, 6, 4)
    beams = beam_decode(model, codec, PROMPTS, 6, 4, num_beams=3)
    scores = [(mean_log_prob(model, codec, p, b, 6), mean_log_prob(model, codec, p, g, 6))
              for p, b, g in zip(PROMPTS, beams, greedy)]
    assert all(b >= g - 1e-5 for b, g in scores), scores
    assert any(b > g + 1e-4 for b, g in scores), scores


def bigram_model(codec, chains, vocab_size=12):
    """A Llama whose next token hangs on the current token alone, chains[c] = {next: p} ("" is EOS):
    one-hot embeddings, a layer that writes nothing, and the log-probabilities in the head."""
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=vocab_size, intermediate_size=4, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    table = torch.full((vocab_size, vocab_size), -30.0)  # [next, current]
    for current, nexts in chains.items():
        for nxt, p in nexts.items():
            table[codec.prompt_ids(nxt)[0] if nxt else codec.eos_id, codec.prompt_ids(current)[0]] = math.log(p)
    with torch.no_grad():
        for p in model.model.layers.parameters():
            p.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(vocab_size))
        model.model.norm.weight.fill_((1 / vocab_size + config.rms_norm_eps) ** 0.5)  # so the norm keeps one-hots
        model.lm_head.weight.copy_(table)
    return model


def test_beam_search_waits_for_the_best_beam_to_end(codec):
    """A confident long answer, while each unlikely side step ends at once: the short beams end
    first, and beam search must not stop on them (early_stopping=True would answer "bh")."""
    chains = {c: {n: 0.9, "h": 0.05, "i": 0.05} for c, n in zip("abcdef", "bcdefg")}
    chains.update(g={"": 1.0}, h={"": 0.99, "j": 0.01}, i={"": 0.99, "j": 0.01})
    model = bigram_model(codec, chains)
    assert greedy_decode(model, codec, ["a"], 8, 1) == ["bcdefg"]
    assert beam_decode(model, codec, ["a"], 8, 1, num_beams=3) == ["bcdefg"]


@pytest.mark.parametrize("family", FAMILIES)
def test_beam_search_counts_steps_as_greedy_does(family, codec):
    """on_step sees 0 for each batch's prompt forward, then 1, 2, ... once per forward call."""
    model = tiny_model(family)
    steps, calls = [], []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        beam_decode(model, codec, PROMPTS, 6, 4, num_beams=3, on_step=steps.append)
    finally:
        handle.remove()
    starts = [i for i, k in enumerate(steps) if k == 0]
    assert len(starts) == 2 and len(steps) == len(calls)  # two batches of at most 4 prompts
    for start, end in zip(starts, starts[1:] + [len(steps)]):
        assert steps[start:end] == list(range(end - start)) and 1 < end - start <= 6


def test_unknown_site():
    with pytest.raises(UserError, match="'site' must name sites among mlp_in, resid_post, mlp_hidden, got 'mlp_out'"):
        BUILT_IN["gpt2"].check_site("mlp_out")
    with pytest.raises(UserError, match="'site' must name sites among mlp_in, resid_post, got 'mlp_hidden'"):
        BUILT_IN["llama"].check_site("mlp_hidden")  # llama does not map its hidden units


# The module that reads layer 0's site output next: it sees the output after the shift's hook.
CONSUMER = {("gpt2", "mlp_in"): "transformer.h.0.mlp", ("gpt2", "resid_post"): "transformer.h.1",
            ("llama", "mlp_in"): "model.layers.0.mlp", ("llama", "resid_post"): "model.layers.1"}


def shifted_steps(model, modules, site, codec, schedule, num_beams=1):
    """For each forward call of a steered decode, whether neuron 3 of layer 0 carries the +100 shift."""
    seen = []

    def record(module, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        seen.append(bool(torch.all(h[:, -1, 3] > 50)))
    family = "gpt2" if hasattr(model, "transformer") else "llama"
    handle = model.get_submodule(CONSUMER[(family, site)]).register_forward_pre_hook(record, with_kwargs=True)
    steerer = Steerer(model, codec, {site: modules}, task=None, batch_size=2, max_new=4, num_beams=num_beams)
    iv = Intervention(torch.tensor([3]), torch.tensor([100.0]), width=16)
    try:
        steerer.decode([{"prompt": "ab"}, {"prompt": "abcd"}], iv.at(1.0), site, schedule)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("schedule,expected", [("every_step", [True] * 4), ("prompt_end", [True, False, False, False]),
                                               ("prompt_end_and_first", [True, True, False, False])])
@pytest.mark.parametrize("num_beams", [1, 3])
def test_schedule_shifts_exactly_its_steps(case, codec, schedule, expected, num_beams):
    """prompt_end moves the last prompt position and no generated step; every_step moves all; the
    same under beam search (every beam of a step alike)."""
    model, modules, site = case
    seen = shifted_steps(model, modules, site, codec, schedule, num_beams)
    assert seen[:4] == expected and len(seen) == 4  # four forward calls: the prompt, then three new tokens
    assert set(SCHEDULES) == {"every_step", "prompt_end", "prompt_end_and_first"}


def test_adaptive_strength_never_reads_the_answers(case, codec):
    """The closed loop compares outputs with the unsteered ones; decoy answers change nothing."""
    model, modules, site = case
    steerer = Steerer(model, codec, {site: modules}, task=None, batch_size=4, max_new=5)
    prompts = ["abc", "a", "abcdef", "bca"]
    iv = Intervention(torch.tensor([1, 5, 9]), torch.tensor([1.0, -2.0, 1.5]), width=16)
    results = []
    for answers in ({"mem": "x", "gen": "y"}, {"mem": "decoy", "gen": "other decoy"}):
        probes = [{"prompt": p, **answers} for p in prompts]
        unsteered = steerer.decode(probes)
        results.append(Outputs(steerer, probes, iv, site, "every_step").run(ADAPTIVE, unsteered, [0.5, 2, 8, 32]))
    assert results[0] == results[1]
    outputs, flipped_at = results[0]
    assert any(a is not None for a in flipped_at)  # the ladder moved something
    unsteered = steerer.decode([{"prompt": p} for p in prompts])
    for out, before, a in zip(outputs, unsteered, flipped_at):
        assert (a is None) == (out == before)


@pytest.mark.parametrize("site", ["mlp_in", "mlp_hidden"])
def test_margin_gradients_predict_what_a_small_shift_does(codec, site):
    """The gradient of the next-token margin at each prompt end, checked by finite differences: shifting one
    neuron of one layer by eps changes the margin by eps x its gradient; batched prompts of different lengths
    give each prompt its own gradient."""
    model = tiny_model("gpt2").double()
    modules = BUILT_IN["gpt2"].site_modules(model, site)
    prompts, up, down = ["abc", "abcdefg", "ba"], torch.tensor([3, 4, 5]), torch.tensor([6, 2, 9])
    grads = margin_gradients(model, codec, modules, prompts, up, down, batch_size=2)
    width = BUILT_IN["gpt2"].site_width(model, site)
    assert grads.shape == (3, 3, width) and grads.dtype == torch.float32

    def margins(shifts=None):
        with shift_last(modules, shifts or {}):
            ids, mask, pos = left_pad([codec.prompt_ids(p) for p in prompts], codec.pad_id, "cpu")
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits[:, -1]
        return (logits[torch.arange(3), up] - logits[torch.arange(3), down]).detach()
    eps, base = 1e-5, margins()
    for layer, neuron in ((0, 1), (1, 5), (2, 3)):
        moved = margins({layer: (torch.tensor([neuron]), torch.tensor([eps], dtype=torch.float64))})
        assert torch.allclose((moved - base) / eps, grads[:, layer, neuron].double(), rtol=1e-3, atol=1e-6)
    assert grads.abs().sum() > 0
    one_by_one = torch.cat([margin_gradients(model, codec, modules, [p], up[i:i + 1], down[i:i + 1], 1)
                            for i, p in enumerate(prompts)])
    assert torch.allclose(grads, one_by_one, atol=1e-5)
