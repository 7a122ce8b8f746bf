"""Behaviour prediction: per layer, a logistic-regression classifier that tells MEM from GEN states,
beside an input-only baseline (a bag of the prompt's tokens), on a held-out split of pairs."""
import re
from collections import Counter

import torch


def split_pairs(n_pairs, test_fraction, seed):
    """Train and test pair indices; both prompts of a pair fall on the same side."""
    order = torch.randperm(n_pairs, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(test_fraction * n_pairs))
    return order[n_test:], order[:n_test]


def fit_logistic(x, y, l2, max_iter):
    """Weights and bias of an L2-regularised logistic regression (full-batch L-BFGS, float64),
    on features standardised with the training mean and spread; returns a predict function."""
    x, y = x.double(), y.double()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-8)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return lambda xs: (((xs.double() - mean) / std) @ w + b > 0).double()


def accuracy(predict, x, y):
    return float((predict(x) == y.double()).double().mean())


def labelled(mem, gen, idx):
    """States of the pairs `idx` from both conditions, with labels MEM=1, GEN=0."""
    return torch.cat([mem[idx], gen[idx]]), torch.cat([torch.ones(len(idx)), torch.zeros(len(idx))])


def bag_of_tokens(prompts, pattern, vocabulary=None):
    """Token counts of each prompt ([n, vocabulary]) and the vocabulary (built from these prompts if not given)."""
    counts = [Counter(re.findall(pattern, p)) for p in prompts]
    if vocabulary is None:
        vocabulary = sorted(set().union(*counts))
    index = {t: i for i, t in enumerate(vocabulary)}
    x = torch.zeros(len(prompts), len(vocabulary))
    for row, c in enumerate(counts):
        for token, k in c.items():
            if token in index:
                x[row, index[token]] = k
    return x, vocabulary


def classify_layers(states, prompts, pattern, test_fraction, seed, l2, max_iter):
    """Held-out accuracy of a state classifier per site and layer, and of the bag-of-tokens baseline.

    states: {site: (mem, gen)}, each [pairs, layers, width]; prompts: (mem prompt, gen prompt) per pair.
    """
    train, test = split_pairs(len(prompts), test_fraction, seed)
    by_layer = {}
    for site, (mem, gen) in states.items():
        by_layer[site] = []
        for layer in range(mem.shape[1]):
            x_tr, y_tr = labelled(mem[:, layer], gen[:, layer], train)
            x_te, y_te = labelled(mem[:, layer], gen[:, layer], test)
            by_layer[site].append(accuracy(fit_logistic(x_tr, y_tr, l2, max_iter), x_te, y_te))
    texts_mem, texts_gen = [p[0] for p in prompts], [p[1] for p in prompts]
    words_tr, vocabulary = bag_of_tokens([texts_mem[i] for i in train] + [texts_gen[i] for i in train], pattern)
    words_te, _ = bag_of_tokens([texts_mem[i] for i in test] + [texts_gen[i] for i in test], pattern, vocabulary)
    y_tr = torch.cat([torch.ones(len(train)), torch.zeros(len(train))])
    y_te = torch.cat([torch.ones(len(test)), torch.zeros(len(test))])
    baseline = accuracy(fit_logistic(words_tr, y_tr, l2, max_iter), words_te, y_te)
    return {"n_train_pairs": len(train), "n_test_pairs": len(test), "by_layer": by_layer, "bag_of_tokens": baseline}
