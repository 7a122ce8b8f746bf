"""Named hook sites per architecture, and hooks that capture or shift them at the last position.

A site names one module per layer (like pyvene's abstract sites); capture and steering
always use the same site, so the neurons found are the neurons moved.
"""
from contextlib import contextmanager

import torch

from .errors import UserError

SITES = {
    "gpt2": {
        "ln_2": "transformer.h.{}.ln_2",      # LayerNorm-2 output: the normalised input of the MLP
        "block": "transformer.h.{}",          # the residual stream after the block
    },
    "llama": {
        "layer": "model.layers.{}",           # decoder layer output: residual after FFN + residual
        "layer_norm": "model.layers.{}.post_attention_layernorm",  # normalised input of the MLP
    },
}


def check_site(family, site):
    if site not in SITES[family]:
        raise UserError(f"params: 'families.{family}.site' must be one of {', '.join(SITES[family])}, got {site!r}")
    return site


def site_modules(model, family, site):
    """The site's module in every layer, first to last."""
    pattern = SITES[family][check_site(family, site)]
    return [model.get_submodule(pattern.format(i)) for i in range(model.config.num_hidden_layers)]


def _hidden(output):
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def hooks(modules, make_hook):
    handles = [m.register_forward_hook(make_hook(layer)) for layer, m in enumerate(modules)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def capture_last(modules, store):
    """Append each layer's state at the last position, as float32 [batch, width], to store[layer]."""
    def make_hook(layer):
        def hook(module, inputs, output):
            # a copy: a view of the last position would keep the whole [batch, positions, width] output alive
            store[layer].append(_hidden(output)[:, -1, :].detach().to("cpu", torch.float32, copy=True))
        return hook
    with hooks(modules, make_hook):
        yield


@contextmanager
def shift_last(modules, shifts):
    """Add shifts[layer] = (neuron indices, values) to the last position of every forward call.

    With a KV cache each decoding step is one position long, so this moves the prompt end and
    every generated token, and nothing else. The edit is in place: hooks run under no_grad.
    """
    def make_hook(layer):
        idx, values = shifts.get(layer, (None, None))
        def hook(module, inputs, output):
            if idx is not None and len(idx):
                h = _hidden(output)
                h[:, -1, idx.to(h.device)] += values.to(h.device, h.dtype)
            return output
        return hook
    with hooks(modules, make_hook):
        yield
