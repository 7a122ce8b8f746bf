"""Behaviour prediction: per layer, a logistic-regression classifier that tells MEM from GEN states,
beside an input-only baseline (the prompt's tokens in order: each token with its position, and token n-grams),
on a held-out split of pairs. A bag of tokens could not serve: a pair's two prompts hold the same tokens.

Samples are the 2N prompts: row i is pair i's MEM prompt, row N + i its GEN prompt (labels 1 and 0)."""
import re

import numpy as np
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def split_pairs(n_pairs, test_fraction, seed):
    """Train and test sample indices; both prompts of a pair fall on the same side."""
    groups = np.tile(np.arange(n_pairs), 2)
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    return next(splitter.split(groups, groups=groups))


def logistic(l2, max_iter, n_train):
    """L2 logistic regression (lbfgs: deterministic). Our objective is mean log-loss + l2 ||w||^2,
    sklearn's C x summed log-loss + 0.5 ||w||^2: the same minimum at C = 1 / (2 l2 n_train). Neither
    penalises the intercept."""
    return LogisticRegression(C=1 / (2 * l2 * n_train) if l2 > 0 else np.inf, max_iter=max_iter)


def ordered_tokens(pattern, n=3):
    """A text analyzer: every token with its position counted from the start and from the end, and the token
    1..n-grams, so that two prompts with the same tokens in another order get different features."""
    regex = re.compile(pattern)

    def features(text):
        tokens = regex.findall(text)
        at = [f"{i}|{t}" for i, t in enumerate(tokens)] + [f"-{len(tokens) - i}|{t}" for i, t in enumerate(tokens)]
        return at + [" ".join(tokens[i:i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1)]
    return features


def classify_layers(states, prompts, pattern, test_fraction, seed, l2, max_iter):
    """Held-out accuracy of a state classifier per site and layer, and of the ordered-tokens baseline.

    states: {site: (mem, gen)}, each [pairs, layers, width]; prompts: (mem prompt, gen prompt) per pair.
    """
    n_pairs = len(prompts)
    train, test = split_pairs(n_pairs, test_fraction, seed)
    y = np.r_[np.ones(n_pairs), np.zeros(n_pairs)]
    by_layer = {}
    for site, (mem, gen) in states.items():
        by_layer[site] = []
        for layer in range(mem.shape[1]):
            xl = torch.cat([mem[:, layer], gen[:, layer]]).double().numpy()
            model = make_pipeline(StandardScaler(), logistic(l2, max_iter, len(train))).fit(xl[train], y[train])
            by_layer[site].append(float(model.score(xl[test], y[test])))
    texts = np.array([p[0] for p in prompts] + [p[1] for p in prompts], dtype=object)
    # Sparse counts are scaled, not centred: centring would only move the unpenalised intercept.
    words = make_pipeline(CountVectorizer(analyzer=ordered_tokens(pattern)), StandardScaler(with_mean=False),
                          logistic(l2, max_iter, len(train))).fit(texts[train], y[train])
    return {"n_train_pairs": len(train) // 2, "n_test_pairs": len(test) // 2, "by_layer": by_layer,
            "ordered_tokens": float(words.score(texts[test], y[test]))}
