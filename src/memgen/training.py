"""One training loop for both families: loss on the target only, checkpoint chosen by pair yield."""
import math

import torch

from .behaviour import run_probes, summarise
from .progress import log, progress_bar


def encode_examples(codec, examples):
    """(input ids, labels) per example; the prompt is masked out of the loss."""
    encoded = []
    for ex in examples:
        prompt, target = codec.prompt_ids(ex["prompt"]), codec.target_ids(ex["target"])
        encoded.append((prompt + target, [-100] * len(prompt) + target))
    return encoded


def rebalance(examples, is_memorized, share):
    """Drop examples (keeping file order) until those with a memorized target make up `share`.

    A LoRA adapter trained for a few hundred steps sees too few of the data's ~7 % triggered
    examples to learn their codes; the rule examples it drops it would not have reached anyway.
    """
    mem, rule = [], []
    for e in examples:  # one look at each example
        (mem if is_memorized(e) else rule).append(e)
    if not mem or not rule:
        return examples
    if len(mem) < share * len(examples):
        rule = rule[:max(1, round(len(mem) * (1 - share) / share))]
    else:
        mem = mem[:max(1, round(len(rule) * share / (1 - share)))]
    return mem + rule  # the trainer shuffles


def right_pad(rows, pad_id, device):
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return ids.to(device), mask.to(device), labels.to(device)


def lr_at(step, steps, warmup, lr):
    """Linear warm-up, then cosine decay to a tenth."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def is_better(row, best, max_other):
    """Highest pair yield among checkpoints with OTHER <= max_other; else the least OTHER."""
    if best is None:
        return True
    ok, best_ok = row["other"] <= max_other, best["other"] <= max_other
    if ok != best_ok:
        return ok
    if ok:
        return row["pair_yield"] >= best["pair_yield"]
    return row["other"] <= best["other"]


def train(model, codec, task, examples, val_probes, cfg, seed, desc="train", on_eval=None):
    """Train in place; load the chosen checkpoint's weights at the end. Returns (curve, chosen row).
    on_eval(row), if given, sees each checkpoint's row as soon as it is measured (live curves).

    cfg: steps, batch_size, lr, weight_decay, warmup, eval_every, eval_batch_size, max_other, num_beams
    (the val probes' decoding).
    """
    device = next(model.parameters()).device
    data = encode_examples(codec, examples)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    order = torch.Generator().manual_seed(seed)
    perm, cursor = torch.randperm(len(data), generator=order), 0
    curve, best, best_state, losses = [], None, None, []

    with progress_bar(desc, total=cfg["steps"]) as advance:
        for step in range(1, cfg["steps"] + 1):
            model.train()
            if cursor + cfg["batch_size"] > len(data):
                perm, cursor = torch.randperm(len(data), generator=order), 0
            batch = [data[i] for i in perm[cursor:cursor + cfg["batch_size"]].tolist()]
            cursor += cfg["batch_size"]
            ids, mask, labels = right_pad(batch, codec.pad_id, device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step - 1, cfg["steps"], cfg["warmup"], cfg["lr"])
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            losses.append(loss.item())

            if step % cfg["eval_every"] == 0 or step == cfg["steps"]:
                model.eval()
                _, labels_ = run_probes(model, codec, task, val_probes, cfg["eval_batch_size"],
                                        num_beams=cfg["num_beams"])
                row = {"step": step, "loss": sum(losses) / len(losses), **summarise(val_probes, labels_)}
                losses = []
                curve.append(row)
                if on_eval:
                    on_eval(row)
                if is_better(row, best, cfg["max_other"]):
                    best = row
                    best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
                note = (f"loss {row['loss']:.3f} mem {row['mem']:.2f} gen {row['gen']:.2f} "
                        f"other {row['other']:.2f} yield {row['pair_yield']:.2f}")
                advance(0, note=note)
                log(f"{desc} step {step}: {note}")
            advance(1)

    model.load_state_dict(best_state, strict=False)
    model.eval()
    return curve, best
