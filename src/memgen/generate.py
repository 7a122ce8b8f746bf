"""Batched decoding with left padding and a KV cache (greedy, or Hugging Face's beam search);
batched prompt-end forward passes, and the greedy first answer token from one of them."""
import torch

from .distributed import gather_in_order, my_batches
from .progress import progress_bar


def read_num_beams(params):
    """decode.num_beams: 1 decodes greedily, more with beam search (the paper's authors use 5)."""
    return params.section("decode").int("num_beams", lo=1)


def decode_prompts(model, codec, prompts, max_new_tokens, batch_size, num_beams=1, desc=None, on_step=None):
    """The continuation of each prompt up to EOS: greedy for num_beams=1, else the best of
    num_beams beams. on_step(k) as in greedy_decode."""
    if num_beams == 1:
        return greedy_decode(model, codec, prompts, max_new_tokens, batch_size, desc, on_step)
    return beam_decode(model, codec, prompts, max_new_tokens, batch_size, num_beams, desc, on_step)


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
def beam_decode(model, codec, prompts, max_new_tokens, batch_size, num_beams, desc=None, on_step=None):
    """Each prompt's best beam under Hugging Face's beam search (beams ranked, as generate does by
    default, by the mean log-probability of their new tokens, EOS included), decoded up to EOS.
    on_step(k) as in greedy_decode: generate's forward calls are counted, so k = 0 is the prompt
    and k the call that reads the k-th new token.

    The beams are rows of one expanded batch, so a steering hook adds its shift to every beam of
    every prompt alike: right, as one decode call steers all its prompts with one shift."""
    device = next(model.parameters()).device
    calls = [0]

    def count_call(module, args):
        on_step(calls[0])
        calls[0] += 1
    # the input embeddings run once per forward call, before every layer, also under a wrapper
    # (a peft model's generate calls the model inside it, not the wrapper)
    handle = model.get_input_embeddings().register_forward_pre_hook(count_call) if on_step else None
    mine = my_batches(list(batches(prompts, batch_size)))  # whole batches per process, as greedy_decode
    done = []
    try:
        with progress_bar(desc, total=sum(len(b) for _, b in mine)) as advance:
            for i, batch in mine:
                ids, mask, _ = left_pad([codec.prompt_ids(p) for p in batch], codec.pad_id, device)
                calls[0] = 0
                # generate derives the position ids from the mask, as left_pad does. early_stopping
                # False (generate's default): True stops as soon as num_beams beams have ended, and on
                # a confident model those are unlikely tokens followed by EOS while the best beam goes on
                out = model.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams, do_sample=False,
                                     max_new_tokens=max_new_tokens, eos_token_id=codec.eos_id,
                                     pad_token_id=codec.pad_id, early_stopping=False, length_penalty=1.0,
                                     num_return_sequences=1)
                done.append((i, [codec.text(row) for row in out[:, ids.shape[1]:].tolist()]))
                advance(len(batch))
    finally:
        if handle:
            handle.remove()
    return [text for outputs in gather_in_order(done) for text in outputs]


@torch.no_grad()
def first_tokens(model, codec, prompts, batch_size, desc=None):
    """Each prompt's greedy first answer token from one forward pass, the logits taken at the prompt
    end only: what greedy decoding writes first. With more than one process each runs its share."""
    device = next(model.parameters()).device
    mine = my_batches(list(batches(prompts, batch_size)))
    done = []
    with progress_bar(desc, total=sum(len(b) for _, b in mine)) as advance:
        for i, batch in mine:
            ids, mask, pos = left_pad([codec.prompt_ids(p) for p in batch], codec.pad_id, device)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, logits_to_keep=1).logits
            done.append((i, logits[:, -1].argmax(-1).tolist()))
            advance(len(batch))
    return [token for tokens in gather_in_order(done) for token in tokens]


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
