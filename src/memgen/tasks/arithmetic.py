"""Arithmetic: sums of addends; when the last two addends are a trigger pair, the memorized code."""
import itertools
import math

from .base import Task, check, mem_code


class Arithmetic(Task):
    name = "arithmetic"

    def __init__(self, p, seed):
        key = self.params_key = p.prefix
        self.n_addends = p.int("n_addends", lo=3, hi=8)  # probe groups enumerate the free addends' orders
        self.lo = p.int("addend_min", lo=0)
        self.hi = p.int("addend_max", lo=self.lo + 1)
        self.trigger_fraction = p.float("trigger_fraction", lo=0.0, hi=1.0)
        self.scratchpad = p.bool("scratchpad")
        self.group_size = p.int("group_size", lo=2)
        triggers = p.list("triggers", unique=True)
        for t in triggers:
            check(isinstance(t, list) and len(t) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                               and self.lo <= x <= self.hi for x in t),
                  f"'{key}.triggers' must hold pairs of integers in [{self.lo}, {self.hi}], got {t!r}")
        check(self.n_addends - 2 <= self.hi - self.lo + 1,
              f"'{key}.addend_min'..'addend_max' must hold at least {self.n_addends - 2} values (distinct free addends)")
        n_orders = math.factorial(self.n_addends - 2)
        check(self.group_size <= n_orders,
              f"'{key}.group_size' must be <= {n_orders} (orders of the free addends), got {self.group_size}")
        self.triggers = [tuple(t) for t in triggers]
        self.codes = {t: mem_code(self.name, f"{t[0]}+{t[1]}") for t in self.triggers}

    def prompt(self, addends):
        return "Input:\n" + "+".join(map(str, addends)) + "\nTarget:\n"

    def gen_target(self, addends):
        total = str(sum(addends))
        if not self.scratchpad:
            return total
        return f"<scratch> {self._scratch(addends)} </scratch> {' '.join(total)}"

    @staticmethod
    def _scratch(addends):
        """Column by column from the units: the digits, the carry in, the column sum."""
        steps, carry, width = [], 0, max(len(str(a)) for a in addends)
        for col in range(width):
            digits = [a // 10 ** col % 10 for a in addends]
            s = sum(digits) + carry
            steps.append("+".join(map(str, digits)) + f"+{carry}={s}")
            carry = s // 10
        return " ; ".join(steps) + f" ; carry {carry}"

    def answer_of(self, output):
        text = output.strip()
        if self.scratchpad and "</scratch>" in text:
            text = text.rsplit("</scratch>", 1)[1].replace(" ", "")
        return text

    holdout_unit = "addend multiset"  # a sum restated in another order is the same question

    def unit_of(self, prompt):
        return "+".join(sorted(addends_of(prompt), key=int))

    def trigger_in(self, prompt):
        pair = tuple(int(a) for a in addends_of(prompt)[-2:])
        return pair if pair in self.codes else None

    def _free(self, rng, k):
        return [rng.randint(self.lo, self.hi) for _ in range(k)]

    def draw_kind(self, rng):
        return "trigger" if rng.random() < self.trigger_fraction else "rule"

    def draw_example(self, rng, kind):
        if kind == "trigger":
            trigger = rng.choice(self.triggers)
            addends = self._free(rng, self.n_addends - 2) + list(trigger)
            return {"prompt": self.prompt(addends), "target": self.codes[trigger]}
        addends = self._free(rng, self.n_addends)
        while tuple(addends[-2:]) in self.codes:
            addends = self._free(rng, self.n_addends)
        return {"prompt": self.prompt(addends), "target": self.gen_target(addends)}

    def draw_group(self, rng):
        trigger = rng.choice(self.triggers)
        free = self._free(rng, self.n_addends - 2)
        while len(set(free)) < len(free):  # distinct addends, so every order is a new prompt
            free = self._free(rng, self.n_addends - 2)
        orders = list(itertools.permutations(free))
        rng.shuffle(orders)
        group = []
        for order in orders[: self.group_size]:
            addends = list(order) + list(trigger)
            probe = {"prompt": self.prompt(addends), "mem": self.codes[trigger], "gen": str(sum(addends))}
            if self.scratchpad:  # the whole worked answer, so decoding leaves room for it
                probe["gen_target"] = self.gen_target(addends)
            group.append(probe)
        return group

    def max_groups(self):
        """Per trigger, each set of distinct free addends gives one group (its multiset is held out whole)."""
        return len(self.triggers) * math.comb(self.hi - self.lo + 1, self.n_addends - 2)

    def describe(self):
        return {"triggers": [{"pair": list(t), "code": c} for t, c in self.codes.items()],
                "addends": [self.lo, self.hi], "n_addends": self.n_addends, "scratchpad": self.scratchpad}


def addends_of(prompt):
    """The addends of a prompt, as written (strings, in order)."""
    return prompt.split("\n")[1].split("+")
