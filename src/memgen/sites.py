"""Named hook sites per architecture, and hooks that capture or shift them at the last position.

A site names one module per layer in one vocabulary for every architecture (like pyvene's
abstract sites and TransformerLens' hook names): `mlp_in` is the normalised input of the MLP (GPT-2's
`ln_2` output; not TransformerLens' `hook_mlp_in`, which is the un-normalised stream),
`resid_post` the residual stream after the whole block. Capture and steering use the same
modules, so the neurons found at a site are the neurons moved there.
"""
from contextlib import ExitStack, contextmanager

import torch

from .generate import forward_prompts, left_pad
from .names import KNOWN_SITES, SITE_NAMES, UNIT_SITE  # noqa: F401 (names used from here)

STREAM_SITES = ("resid_post",)  # the residual stream itself: a shift there is carried into every later layer


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


def capture_prompt_ends(model, codec, modules_by_site, prompts, batch_size, desc=None, widths=None):
    """{site: [len(prompts), layers, width]} float32 states at the last prompt token, every site in one pass.
    widths: {site: width} for the empty states of no prompts (default: the model's hidden size)."""
    stores = {site: [[] for _ in modules] for site, modules in modules_by_site.items()}

    def take():  # one batch's states, [batch, layers, width] per site, off the hooks' lists
        return {site: torch.stack([layer.pop() for layer in store], dim=1) for site, store in stores.items()}

    if not prompts:  # none: empty states
        widths = widths or {}
        return {site: torch.zeros(0, len(store), widths.get(site, model.config.hidden_size))
                for site, store in stores.items()}
    with ExitStack() as stack:
        for site, modules in modules_by_site.items():
            stack.enter_context(capture_last(modules, stores[site]))
        per_batch = forward_prompts(model, codec, prompts, batch_size, desc=desc, after_batch=take)
    return {site: torch.cat([states[site] for states in per_batch]) for site in stores}


def margin_gradients(model, codec, modules, prompts, up, down, batch_size):
    """The gradient of the margin logit[up] - logit[down] of each prompt's next token (up, down: a token id
    per prompt) with respect to the site's state at the prompt end, [prompts, layers, width] float32."""
    device, grads = next(model.parameters()).device, []
    for start in range(0, len(prompts), batch_size):
        batch, captured = prompts[start:start + batch_size], []
        ids, mask, pos = left_pad([codec.prompt_ids(p) for p in batch], codec.pad_id, device)
        rows, part = torch.arange(len(batch), device=device), slice(start, start + len(batch))
        with torch.enable_grad(), hooks(modules, lambda layer: lambda module, inputs, output: captured.append(
                _hidden(output))):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits[:, -1]
            margin = logits[rows, up[part].to(device)] - logits[rows, down[part].to(device)]
            by_layer = torch.autograd.grad(margin.sum(), captured)  # rows are independent: each its own gradient
        grads.append(torch.stack([g[:, -1] for g in by_layer], dim=1).to("cpu", torch.float32))
    return torch.cat(grads)


@contextmanager
def shift_last(modules, shifts, active=None, share=None):
    """Add shifts[layer] = (neuron indices, values) at the last position of each forward call for
    which active() is true (None: every call). share (in (0, 1], or None for shifts): the values are targets
    instead, each neuron moved that share of the way to its own (1: patched to it).

    With a KV cache the first call is the prompt and each later call one generated token, so the
    last position is the prompt end, then each new token, and nothing else. The edit is in place:
    hooks run under no_grad.
    """
    def make_hook(layer):
        idx, values = shifts.get(layer, (None, None))
        def hook(module, inputs, output):
            if idx is not None and len(idx) and (active is None or active()):
                h = _hidden(output)
                at, target = idx.to(h.device), values.to(h.device, h.dtype)
                h[:, -1, at] += target if share is None else share * (target - h[:, -1, at])
            return output
        return hook
    with hooks(modules, make_hook):
        yield


def stream_increments(shifts):
    """Per-layer shifts at a residual-stream site rewritten as what each layer adds to what the
    stream carries: a shift added at layer l stays in the stream, so a neuron shifted at layers
    l1 < l2 would hold v1 + v2 at l2. Each layer adds its value less the one carried from the
    neuron's previous shifted layer, so the neuron sits at its own value at every layer shifted
    (alpha x NMD, as the formula means), not at the sum over the layers before."""
    if not shifts:
        return shifts
    width = 1 + max((int(idx.max()) for idx, _ in shifts.values() if len(idx)), default=-1)
    carried = torch.zeros(width)
    out = {}
    for layer in sorted(shifts):
        idx, values = shifts[layer]
        out[layer] = (idx, values - carried[idx])
        carried[idx] = values
    return out


def site_shifts(site, shifts, share=None, accumulate=False):
    """The shifts the hooks add at a site: at a residual-stream site, as increments over what the
    stream carries (stream_increments); elsewhere, as targets (a share), or with accumulate (the authors'
    code: every layer adds its whole shift and the stream carries the sum down), as given."""
    return stream_increments(shifts) if site in STREAM_SITES and share is None and not accumulate else shifts
