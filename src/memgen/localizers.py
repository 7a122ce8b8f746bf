"""The field's localizers of memorized data (as Chang et al., NAACL 2024, define them), on a model's MLP hidden
units: each scores every unit [layers, width] by how much the memorized examples need it (higher: more), from
the answer's loss on those examples. A knock-out (the deletion test) zeroes chosen units at every position.

- activations: the unit's mean |activation| at the memorized prompts' ends;
- zero_out: how much the answer's loss rises when the unit alone is zeroed;
- integrated_gradients: the unit's attribution to the answer's log-likelihood along a path that scales its
  layer's activations from 0 to their values (midpoint rule);
- slimming: a real mask on every unit (from 1), learned to keep the answer's loss low under an L1 penalty
  (ranked by the mask);
- hard_concrete: a stochastic gate on every unit (hard concrete, Louizos et al. 2018), learned to keep the
  loss low under an expected-L0 penalty; the score is each gate's open probability.
The model's weights never change; the scales ride on forward hooks.
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .progress import progress_bar
from .sites import _hidden, hooks
from .training import encode_examples, right_pad

HARD_CONCRETE = {"beta": 2 / 3, "low": -0.1, "high": 1.1, "init": 3.0}  # Louizos et al.'s stretch and temperature


@dataclass(frozen=True)
class Examples:
    """Memorized examples as one batch: ids, attention mask and labels (the answer's tokens only)."""
    ids: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def of(cls, codec, prompts, answers, device):
        rows = encode_examples(codec, [{"prompt": p, "target": a} for p, a in zip(prompts, answers)])
        return cls(*right_pad(rows, codec.pad_id, device))

    def repeat(self, times):
        return Examples(*(t.repeat(times, 1) for t in (self.ids, self.mask, self.labels)))


@contextmanager
def scaled_units(modules, scales):
    """Multiply each layer's units by scales[layer] ([width], or [batch, width]: one row per example) at every
    position; a layer without a scale is left alone."""
    def make_hook(layer):
        def hook(module, inputs, output):
            if layer not in scales:
                return output
            s = scales[layer]
            return _hidden(output) * (s if s.dim() == 1 else s[:, None, :]).to(_hidden(output).dtype)
        return hook
    with hooks(modules, make_hook):
        yield


def answer_nll(model, batch):
    """Each example's summed negative log-likelihood of its answer tokens [examples]."""
    logits = model(input_ids=batch.ids, attention_mask=batch.mask).logits[:, :-1].float()
    labels = batch.labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
    return (nll * (labels != -100)).sum(1)


def activations(mem_states):
    """Mean |activation| at the memorized prompts' ends; mem_states [examples, layers, width]."""
    return mem_states.abs().mean(0)


@torch.no_grad()
def zero_out(model, modules, batch, width, chunk=32, desc="zero-out"):
    """Rise of the mean answer loss when each unit alone is zeroed (chunk units per forward pass)."""
    n, base = batch.ids.shape[0], answer_nll(model, batch).mean()
    scores = torch.zeros(len(modules), width)
    repeated = batch.repeat(chunk)
    with progress_bar(desc, total=len(modules) * width) as advance:
        for layer, start in ((l, s) for l in range(len(modules)) for s in range(0, width, chunk)):
            units = torch.arange(start, min(start + chunk, width))
            scale = torch.ones(len(units), width)
            scale[torch.arange(len(units)), units] = 0.0
            part = repeated if len(units) == chunk else batch.repeat(len(units))
            with scaled_units(modules, {layer: scale.repeat_interleave(n, 0)}):
                scores[layer, units] = answer_nll(model, part).view(len(units), n).mean(1) - base
            advance(len(units))
    return scores


def integrated_gradients(model, modules, batch, width, steps=16):
    """Per layer, the gradient of the summed answer log-likelihood with respect to a scale on the layer's units,
    averaged over `steps` midpoints of the path from 0 to 1: each unit's path integral (its IG attribution)."""
    scores = torch.zeros(len(modules), width)
    for layer in range(len(modules)):
        for step in range(steps):
            scale = torch.full((width,), (step + 0.5) / steps, requires_grad=True)
            with torch.enable_grad(), scaled_units(modules, {layer: scale}):
                (grad,) = torch.autograd.grad(-answer_nll(model, batch).sum(), scale)
            scores[layer] += grad.detach() / steps
    return scores


def slimming(model, modules, batch, width, steps=200, lr=0.05, penalty=1.0):
    """A mask from 1 on every unit, learned (Adam) to keep the mean answer loss low under penalty x its mean |.|;
    the score is the mask itself (clipped to [0, 1], as it is applied, every mask above 1 would tie)."""
    mask = torch.ones(len(modules), width, requires_grad=True)
    optimizer = torch.optim.Adam([mask], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        with torch.enable_grad(), scaled_units(modules, dict(enumerate(mask))):
            loss = answer_nll(model, batch).mean() + penalty * mask.abs().mean()
            loss.backward()
        optimizer.step()
    return mask.detach()


def hard_concrete(model, modules, batch, width, generator, steps=200, lr=0.05, penalty=1.0):
    """A hard-concrete gate on every unit (from nearly open), learned (Adam) to keep the mean answer loss low
    under penalty x the expected share of open gates; the score is each gate's probability of being open."""
    hc = HARD_CONCRETE
    log_alpha = torch.full((len(modules), width), hc["init"], requires_grad=True)
    optimizer = torch.optim.Adam([log_alpha], lr=lr)
    shift = hc["beta"] * math.log(-hc["low"] / hc["high"])
    for _ in range(steps):
        optimizer.zero_grad()
        u = torch.rand(log_alpha.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
        with torch.enable_grad():
            gate = torch.sigmoid((u.log() - (1 - u).log() + log_alpha) / hc["beta"])
            gate = (gate * (hc["high"] - hc["low"]) + hc["low"]).clamp(0.0, 1.0)
            with scaled_units(modules, dict(enumerate(gate))):
                loss = answer_nll(model, batch).mean() + penalty * torch.sigmoid(log_alpha - shift).mean()
                loss.backward()
        optimizer.step()
    return torch.sigmoid(log_alpha.detach() - shift)


def knock_out(units, n_layers, width):
    """{layer: scale} that zeroes the flat unit indices `units` of [layers, width] and keeps every other."""
    scale = torch.ones(n_layers, width)
    scale.view(-1)[units] = 0.0
    return {layer: scale[layer] for layer in range(n_layers) if (scale[layer] == 0).any()}
