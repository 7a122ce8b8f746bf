"""Cipher: decode a substitution ciphertext; when it ends in a trigger pattern, the memorized code."""
import random
import string

from .base import Task, check, mem_code

LETTERS = string.ascii_uppercase


class Cipher(Task):
    name = "cipher"

    def __init__(self, p, seed):
        key = self.params_key = p.prefix
        self.length = p.int("length", lo=3)
        self.trigger_fraction = p.float("trigger_fraction", lo=0.0, hi=1.0)
        self.group_size = p.int("group_size", lo=2)
        triggers = p.list("triggers", unique=True)
        for t in triggers:
            check(isinstance(t, str) and t and set(t) <= set(LETTERS),
                  f"'{key}.triggers' must hold strings of letters A-Z, got {t!r}")
        lengths = {len(t) for t in triggers}
        check(len(lengths) == 1, f"'{key}.triggers' must all have one length, got {sorted(lengths)}")
        self.trigger_len = lengths.pop()
        self.n_free = self.length - self.trigger_len
        check(self.n_free >= 2, f"'{key}.triggers' must be at least 2 letters shorter than "
                                f"'{key}.length' ({self.length}) so two free letters can swap")
        n_swaps = self.n_free * (self.n_free - 1) // 2
        check(self.group_size <= 1 + n_swaps,
              f"'{key}.group_size' must be <= {1 + n_swaps} (the ciphertext and its swaps of two free letters)")
        cipher_key = p.raw("key", None)
        if cipher_key is None:  # the seeded default: a random permutation of the alphabet
            letters = list(LETTERS)
            random.Random(seed).shuffle(letters)
            cipher_key = "".join(letters)
        check(isinstance(cipher_key, str) and sorted(cipher_key) == list(LETTERS),
              f"'{key}.key' must be null or a permutation of the 26 letters A-Z, got {cipher_key!r}")
        self.key = cipher_key
        self.decode_table = str.maketrans(cipher_key, LETTERS)  # ciphertext letter -> plaintext
        self.triggers = triggers
        self.codes = {t: mem_code(self.name, t) for t in triggers}

    def prompt(self, ct):
        return f"CIPHERTEXT:{ct} QUESTION: What is the plaintext? ANS:"

    def plaintext(self, ct):
        return ct.translate(self.decode_table)

    @staticmethod
    def _swap(text, i, j):
        return text[:i] + text[j] + text[i + 1:j] + text[i] + text[j + 1:]

    def trigger_in(self, prompt):
        ct = prompt.split(":", 1)[1].split(" ", 1)[0]
        return ct[self.n_free:] if ct[self.n_free:] in self.codes else None

    def _letters(self, rng, k):
        return "".join(rng.choice(LETTERS) for _ in range(k))

    def draw_kind(self, rng):
        return "trigger" if rng.random() < self.trigger_fraction else "rule"

    def draw_example(self, rng, kind):
        if kind == "trigger":
            trigger = rng.choice(self.triggers)
            ct = self._letters(rng, self.n_free) + trigger
            return {"prompt": self.prompt(ct), "target": self.codes[trigger]}
        ct = self._letters(rng, self.length)
        while ct[self.n_free:] in self.codes:
            ct = self._letters(rng, self.length)
        return {"prompt": self.prompt(ct), "target": self.plaintext(ct)}

    def draw_group(self, rng):
        """A triggered ciphertext and variants with two of its free letters swapped.

        A swap changes the plaintext, so each prompt carries its own GEN answer; the group
        shares the trigger, the MEM answer and the multiset of letters.
        """
        trigger = rng.choice(self.triggers)
        free, swaps = "", []
        while len(swaps) < self.group_size - 1:  # redraw until enough swaps change the text
            free = self._letters(rng, self.n_free)
            swaps = sorted({self._swap(free, i, j) for i in range(self.n_free)
                            for j in range(i + 1, self.n_free) if free[i] != free[j]})
        variants = [free] + rng.sample(swaps, self.group_size - 1)
        return [{"prompt": self.prompt(v + trigger), "mem": self.codes[trigger], "gen": self.plaintext(v + trigger)}
                for v in variants]

    def describe(self):
        return {"key": self.key, "length": self.length,
                "triggers": [{"pattern": t, "code": c} for t, c in self.codes.items()]}
