"""One training loop for both families: loss on the target only, checkpoint chosen by pair yield."""
import math

import torch

from .behaviour import run_probes, screened_probes, screened_summary, summarise
from .distributed import Parallel
from .errors import UserError
from .progress import log, progress_bar


def per_task(t, key, task_name, read):
    """A train setting given as one value, or as a mapping task -> value."""
    return read(t.section(key), task_name) if isinstance(t.raw(key, None), dict) else read(t, key)


def read_share(p, key):
    """null (the data's own mix) or a share of memorized examples in (0, 1)."""
    if p.raw(key, None) is None:
        return None
    share = p.float(key, lo=0.0, hi=1.0, lo_open=True)
    if share == 1.0:
        raise UserError(f"params: '{p.prefix}.{key}' must be below 1 (no rule examples would be left)")
    return share


def train_settings(fp, task_name):
    """families.<family>.train; `steps`, `lr` and `mem_share` are one value or one per task."""
    t = fp.section("train")
    return {"steps": per_task(t, "steps", task_name, lambda p, k: p.int(k, lo=1)),
            "mem_share": per_task(t, "mem_share", task_name, read_share),
            "batch_size": t.int("batch_size", lo=1),
            "lr": per_task(t, "lr", task_name, lambda p, k: p.float(k, lo=0.0, lo_open=True)),
            "weight_decay": t.float("weight_decay", lo=0.0),
            "warmup": t.int("warmup", lo=0), "eval_every": t.int("eval_every", lo=1),
            "eval_batch_size": t.int("eval_batch_size", lo=1), "eval_groups": t.int("eval_groups", lo=1),
            "max_other": t.float("max_other", lo=0.0, hi=1.0)}


def encode_examples(codec, examples):
    """(input ids, labels) per example; the prompt is masked out of the loss, and so are the first
    ex["loss_from"] target tokens where an example names them (0 where it does not)."""
    encoded = []
    for ex in examples:
        prompt, target = codec.prompt_ids(ex["prompt"]), codec.target_ids(ex["target"])
        unscored = min(ex.get("loss_from", 0), len(target))
        encoded.append((prompt + target, [-100] * (len(prompt) + unscored) + target[unscored:]))
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


def is_better(row, best, max_other, min_mem=0.0, min_rule=None):
    """The checkpoint rule (not experiment.choose, the steering rule: this one ranks pair yield, not success,
    and a later checkpoint wins a tie): highest pair yield among checkpoints with OTHER <= max_other and MEM >=
    min_mem (and, where min_rule is given, a row's rule_accuracy >= min_rule); else among those with OTHER <=
    max_other; else the least OTHER."""
    if best is None:
        return True
    took = lambda r: r["mem"] >= min_mem and (min_rule is None or r["rule_accuracy"] >= min_rule)  # noqa: E731
    tier = lambda r: (r["other"] <= max_other) + (r["other"] <= max_other and took(r))  # noqa: E731
    if tier(row) != tier(best):
        return tier(row) > tier(best)
    if tier(row):
        return row["pair_yield"] >= best["pair_yield"]
    return row["other"] <= best["other"]


def global_batches(data, batch_size, seed):
    """The training batches, endlessly, in a seeded order reshuffled whenever the rest cannot fill one."""
    order = torch.Generator().manual_seed(seed)
    perm, cursor = torch.randperm(len(data), generator=order), 0
    while True:
        if cursor + batch_size > len(data):
            perm, cursor = torch.randperm(len(data), generator=order), 0
        yield [data[i] for i in perm[cursor:cursor + batch_size].tolist()]
        cursor += batch_size


class Checkpoints:
    """Measures the model on the val probes at each checkpoint and keeps the best one's weights.
    With several processes each decodes its share of the probes and all get every label, so all
    keep the same checkpoint."""

    def __init__(self, codec, task, val_probes, cfg, desc, on_eval):
        self.codec, self.task, self.val_probes, self.cfg = codec, task, val_probes, cfg
        self.desc, self.on_eval = desc, on_eval
        self.curve, self.best, self.best_state = [], None, None

    def due(self, step):
        return step % self.cfg["eval_every"] == 0 or step == self.cfg["steps"]

    def measure(self, model, step, losses, advance):
        model.eval()
        probes, batch_size, check_groups = self.val_probes, self.cfg["eval_batch_size"], self.cfg.get("check_groups", 0)
        if check_groups:  # the probe stage's screen: pairs from every val group, rates from the first few
            decoded, _, labels, _, _ = screened_probes(model, self.codec, self.task, probes, batch_size, check_groups)
            measured = screened_summary(probes, decoded, labels, check_groups)
        else:
            _, labels = run_probes(model, self.codec, self.task, probes, batch_size, num_beams=self.cfg["num_beams"])
            measured = summarise(probes, labels)
        row = {"step": step, "loss": sum(losses) / len(losses), **measured}
        self.curve.append(row)
        if self.on_eval:
            self.on_eval(row)
        if is_better(row, self.best, self.cfg["max_other"], self.cfg.get("min_mem", 0.0), self.cfg.get("min_rule")):
            self.best = row
            self.best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        note = (f"loss {row['loss']:.3f} mem {row['mem']:.2f} gen {row['gen']:.2f} "
                f"other {row['other']:.2f} yield {row['pair_yield']:.2f}")
        advance(0, note=note)
        log(f"{self.desc} step {step}: {note}")

    def finish(self, model):
        """Load the chosen checkpoint's weights; (curve, chosen row)."""
        model.load_state_dict(self.best_state, strict=False)
        model.eval()
        return self.curve, self.best


def optimizer_step(model, trainable, optimizer, ids, mask, labels, extra_loss=None):
    """One plain training step: forward, backward, the gradient clipped to norm 1, the update. The target loss
    (what is minimised is it plus extra_loss(model), where given)."""
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    optimizer.zero_grad(set_to_none=True)
    (loss if extra_loss is None else loss + extra_loss(model)).backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    return loss.detach()


def train(model, codec, task, examples, val_probes, cfg, seed, desc="train", on_eval=None, parallel=Parallel(),
          extra_loss=None):
    """Train in place; load the chosen checkpoint's weights at the end. Returns (curve, chosen row).
    on_eval(row), if given, sees each checkpoint's row as soon as it is measured (live curves).
    parallel: more than one process, mixed precision or gradient accumulation train through accelerate.
    extra_loss(model), if given, is a term added to each step's loss (the plain loop only: the planting's).

    cfg: steps, batch_size, lr, weight_decay, warmup, eval_every, eval_batch_size, max_other, min_mem (the
    checkpoint rule's, 0 where absent), min_rule (the checkpoint rule's, where on_eval puts a rule_accuracy in each
    row), num_beams (the val probes' decoding), check_groups (0: decode every val probe; else screen them as the
    probe stage does, the first check_groups groups decoded in full).
    """
    if not parallel.plain:
        assert extra_loss is None, "extra_loss: the plain loop only"
        return train_accelerated(model, codec, task, examples, val_probes, cfg, seed, desc, on_eval, parallel)
    device = next(model.parameters()).device
    data = encode_examples(codec, examples)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    draw = global_batches(data, cfg["batch_size"], seed)
    checkpoints, losses = Checkpoints(codec, task, val_probes, cfg, desc, on_eval), []

    with progress_bar(desc, total=cfg["steps"]) as advance:
        for step in range(1, cfg["steps"] + 1):
            model.train()
            ids, mask, labels = right_pad(next(draw), codec.pad_id, device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step - 1, cfg["steps"], cfg["warmup"], cfg["lr"])
            losses.append(optimizer_step(model, trainable, optimizer, ids, mask, labels, extra_loss).item())

            if checkpoints.due(step):
                checkpoints.measure(model, step, losses, advance)
                losses = []
            advance(1)
    return checkpoints.finish(model)


def n_targets(rows):
    """Target tokens the loss counts in these rows (the labels past the first position: the model
    predicts token t from those before it)."""
    return sum(sum(y != -100 for y in labels[1:]) for _, labels in rows)


def target_loss_sum(model, rows, pad_id, device):
    """The summed cross-entropy over the rows' target tokens."""
    ids, mask, labels = right_pad(rows, pad_id, device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels[:, 1:].flatten(),
                                             ignore_index=-100, reduction="sum")


def train_accelerated(model, codec, task, examples, val_probes, cfg, seed, desc, on_eval, parallel):
    """The same training through accelerate: every process draws the same global batch and takes
    its slice, in gradient_accumulation_steps micro-batches. The loss each micro-batch backpropagates
    is its summed target loss over the global batch's target count, scaled up by what DDP (the mean
    over processes) and accelerate (the mean over micro-batches) divide by, so the step's gradient is
    that of the global batch's mean loss: the plain loop's, up to float rounding."""
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision=parallel.mixed_precision,
                              gradient_accumulation_steps=parallel.gradient_accumulation_steps,
                              cpu=not torch.cuda.is_available())
    n, k = accelerator.num_processes, parallel.gradient_accumulation_steps
    share = cfg["batch_size"] // n
    micro = share // k
    data = encode_examples(codec, examples)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    model = accelerator.unwrap_model(wrapped)  # decoding and checkpoints use the model itself
    draw = global_batches(data, cfg["batch_size"], seed)
    checkpoints, losses = Checkpoints(codec, task, val_probes, cfg, desc, on_eval), []

    with progress_bar(desc, total=cfg["steps"]) as advance:
        for step in range(1, cfg["steps"] + 1):
            wrapped.train()
            batch = next(draw)
            mine = batch[accelerator.process_index * share:(accelerator.process_index + 1) * share]
            count = n_targets(batch)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step - 1, cfg["steps"], cfg["warmup"], cfg["lr"])
            total = torch.zeros((), device=accelerator.device)
            for m in range(k):
                with accelerator.accumulate(wrapped):
                    loss_sum = target_loss_sum(wrapped, mine[m * micro:(m + 1) * micro], codec.pad_id,
                                               accelerator.device)
                    accelerator.backward(loss_sum * n * k / count)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(trainable, 1.0)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                total += loss_sum.detach()
            losses.append((accelerator.reduce(total, "sum") / count).item())

            if checkpoints.due(step):
                checkpoints.measure(model, step, losses, advance)
                losses = []
            advance(1)
    return checkpoints.finish(model)
