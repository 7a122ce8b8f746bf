"""The field's localizers on a toy whose memory sits in known units, built by hand: the rule (token t -> t + 1)
runs along the residual stream alone; four planted units of the first layer fire on the memorized tokens, each
adding a quarter of the answer MEMORY's logit; every other unit holds small random weights. Each
localizer should put the planted units on top, and knocking them out should remove the memory and keep the rule."""
from types import SimpleNamespace

import pytest
import torch

from memgen.localizers import (Examples, activations, answer_nll, hard_concrete, integrated_gradients, knock_out,
                               scaled_units, slimming, zero_out)
from memgen.planting import top_k_hits, truth_mask

VOCAB, DIM, WIDTH, LAYERS = 13, 16, 24, 2
PLANTED = {0: [3, 9, 17, 20]}
MEMORIZED = [0, 1, 2, 3]   # a token -> MEMORY instead of token + 1
MEMORY = 12                # an answer the rule never gives
RULE = range(VOCAB - 2)    # t -> t + 1 for t in 0..10
SLOT = 14                  # the stream dimension the planted units write and the readout reads for MEMORY


class ToyMLPStack(torch.nn.Module):
    """Embedding, LAYERS residual MLP blocks (each position on its own), a readout; `act` modules are the units."""
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, DIM)
        self.fc = torch.nn.ModuleList(torch.nn.Linear(DIM, WIDTH) for _ in range(LAYERS))
        self.act = torch.nn.ModuleList(torch.nn.GELU() for _ in range(LAYERS))
        self.proj = torch.nn.ModuleList(torch.nn.Linear(WIDTH, DIM) for _ in range(LAYERS))
        self.head = torch.nn.Linear(DIM, VOCAB)

    def forward(self, input_ids, attention_mask=None):
        x = self.emb(input_ids)
        for fc, act, proj in zip(self.fc, self.act, self.proj):
            x = x + proj(act(fc(x)))
        return SimpleNamespace(logits=self.head(x))


def batch_of(prompts, answers):
    """Two-token rows [prompt, answer]: the loss reads the answer only."""
    ids = torch.tensor([[p, a] for p, a in zip(prompts, answers)])
    return Examples(ids, torch.ones_like(ids), torch.tensor([[-100, a] for a in answers]))


@pytest.fixture(scope="module")
def planted():
    torch.manual_seed(0)
    model = ToyMLPStack()
    with torch.no_grad():
        for p in model.parameters():  # every unit small and random
            p.copy_(0.05 * torch.randn_like(p))
        model.emb.weight.copy_(torch.eye(VOCAB, DIM))  # token t on dimension t
        model.head.weight.zero_()
        model.head.bias.zero_()
        for t in RULE:
            model.head.weight[t + 1, t] = 4.0  # the rule, along the stream
        for unit in PLANTED[0]:  # each planted unit fires on a memorized token and writes a quarter of the margin
            model.fc[0].weight[unit].zero_()
            model.fc[0].weight[unit, MEMORIZED] = 2.0
            model.fc[0].bias[unit] = 0.0
            model.proj[0].weight[:, unit] = 0.0
            model.proj[0].weight[SLOT, unit] = 1.0
        model.head.weight[MEMORY, SLOT] = 3.0
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), batch_of(MEMORIZED, [MEMORY] * 4), truth_mask(
        {l: torch.tensor(u) for l, u in PLANTED.items()}, LAYERS, WIDTH)


def predictions(model, tokens, scales=None):
    with torch.no_grad(), scaled_units(list(model.act), scales or {}):
        return model(torch.tensor([[t] for t in tokens])).logits[:, -1].argmax(-1).tolist()


def test_the_toy_holds_its_memory_and_its_rule(planted):
    model, _, _ = planted
    assert predictions(model, MEMORIZED) == [MEMORY] * 4
    assert predictions(model, RULE[4:]) == [t + 1 for t in RULE[4:]]


@pytest.mark.parametrize("localizer", ["zero_out", "integrated_gradients", "slimming", "hard_concrete"])
def test_each_localizer_finds_the_planted_units(planted, localizer):
    model, memory, truth = planted
    modules, k = list(model.act), int(truth.sum())
    score = {"zero_out": lambda: zero_out(model, modules, memory, WIDTH, chunk=5),
             "integrated_gradients": lambda: integrated_gradients(model, modules, memory, WIDTH),
             "slimming": lambda: slimming(model, modules, memory, WIDTH, steps=300, penalty=2.0),
             "hard_concrete": lambda: hard_concrete(model, modules, memory, WIDTH, torch.Generator().manual_seed(0),
                                                    steps=300, penalty=2.0)}[localizer]()
    assert score.shape == (LAYERS, WIDTH)
    assert top_k_hits(score, truth, k) == k, score  # the 4 planted units on top


def test_zero_out_is_the_loss_of_each_unit_knocked_out_alone(planted):
    model, memory, _ = planted
    modules = list(model.act)
    score = zero_out(model, modules, memory, WIDTH, chunk=7)  # chunks that do not divide the width
    base = answer_nll(model, memory).mean()
    for layer, unit in ((0, 3), (1, 20)):
        with torch.no_grad(), scaled_units(modules, knock_out(torch.tensor([layer * WIDTH + unit]), LAYERS, WIDTH)):
            assert score[layer, unit] == pytest.approx(float(answer_nll(model, memory).mean() - base), abs=1e-5)


def test_activations_average_the_magnitudes():
    states = torch.tensor([[[1.0, -2.0]], [[-3.0, 0.0]]])
    assert activations(states).tolist() == [[2.0, 1.0]]


def test_knocking_out_the_planted_units_removes_the_memory_and_keeps_the_rule(planted):
    model, _, truth = planted
    planted_units = truth.flatten().nonzero().flatten()
    scales = knock_out(planted_units, LAYERS, WIDTH)
    assert set(scales) == {0} and int((scales[0] == 0).sum()) == 4
    assert MEMORY not in predictions(model, MEMORIZED, scales)
    assert predictions(model, RULE[4:], scales) == [t + 1 for t in RULE[4:]]
    others = torch.tensor([u for u in range(LAYERS * WIDTH) if not truth.flatten()[u]][:4])
    assert predictions(model, MEMORIZED, knock_out(others, LAYERS, WIDTH)) == [MEMORY] * 4
