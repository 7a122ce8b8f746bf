"""Batched greedy decoding with left padding and a KV cache; batched prompt-end forward passes."""
import torch

from .distributed import gather_in_order, my_batches
from .progress import progress_bar


def left_pad(rows, pad_id, device):
    """ids, attention mask and position ids for left-padded rows (so every row ends at -1)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@torch.no_grad()
def greedy_decode(model, codec, prompts, max_new_tokens, batch_size, desc=None, on_step=None):
    """The greedy continuation of each prompt, decoded up to EOS. on_step(k), if given, is called
    before each forward call: k = 0 for the prompt, k for the call that reads the k-th new token.
    With more than one process each decodes its share of the batches; all get every output, in order."""
    device = next(model.parameters()).device
    on_step = on_step or (lambda k: None)
    mine = my_batches(list(batches(prompts, batch_size)))
    done = []
    with progress_bar(desc, total=sum(len(b) for _, b in mine)) as advance:
        for i, batch in mine:
            done.append((i, decode_batch(model, codec, batch, max_new_tokens, device, on_step)))
            advance(len(batch))
    return [text for outputs in gather_in_order(done) for text in outputs]


def decode_batch(model, codec, batch, max_new_tokens, device, on_step):
    """The greedy continuations of one batch of prompts, left padded together."""
    ids, mask, pos = left_pad([codec.prompt_ids(p) for p in batch], codec.pad_id, device)
    on_step(0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
    generated = []
    done = torch.zeros(len(batch), dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        token = out.logits[:, -1, :].argmax(-1)
        token = torch.where(done, torch.full_like(token, codec.eos_id), token)
        generated.append(token)
        done |= token == codec.eos_id
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = pos[:, -1:] + 1
        on_step(step + 1)
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=pos,
                    cache=out.cache, use_cache=True)
    tokens = torch.stack(generated, dim=1).tolist()
    return [codec.text(row) for row in tokens]


@torch.no_grad()
def forward_prompts(model, codec, prompts, batch_size, desc=None, after_batch=None):
    """One forward pass over each batch of prompts (hooks on the model see the prompt ends).
    after_batch(), if given, is called after each batch; what it returns comes back, one per batch,
    in order. With more than one process each runs its share of the batches; all get every result."""
    device = next(model.parameters()).device
    after_batch = after_batch or (lambda: None)
    mine = my_batches(list(batches(prompts, batch_size)))
    done = []
    with progress_bar(desc, total=sum(len(b) for _, b in mine)) as advance:
        for i, batch in mine:
            ids, mask, pos = left_pad([codec.prompt_ids(p) for p in batch], codec.pad_id, device)
            model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
            done.append((i, after_batch()))
            advance(len(batch))
    return gather_in_order(done)
