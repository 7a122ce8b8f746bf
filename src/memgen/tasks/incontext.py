"""In-context colour inference: a two-hop story answer against a name's memorized colour."""
import math
import random

from .base import Task, check


class InContext(Task):
    name = "incontext"

    def __init__(self, p, seed):
        key = self.params_key = p.prefix
        self.names = p.list("names", min_len=2, unique=True)
        self.other_names = p.list("other_names", unique=True)
        self.roles = p.list("roles", unique=True)
        self.colours = p.list("colours", min_len=2, unique=True)
        self.n_distractors = p.int("n_distractors", lo=0)
        self.fresh_fraction = p.float("fresh_fraction", lo=0.0, hi=1.0)
        self.memory_only_fraction = p.float("memory_only_fraction", lo=0.0, hi=1.0)
        self.group_size = p.int("group_size", lo=2)
        for field in ("names", "other_names", "roles", "colours"):
            for word in p.raw(field):
                check(isinstance(word, str) and word.isalpha(),
                      f"'{key}.{field}' must hold single words of letters, got {word!r}")
        check(not set(self.names) & set(self.other_names),
              f"'{key}.names' and '{key}.other_names' must not share names")
        need = self.n_distractors + 1
        check(len(self.roles) >= need,
              f"'{key}.roles' needs at least {need} roles for {self.n_distractors} distractors")
        check(len(self.colours) >= need + 1,
              f"'{key}.colours' needs at least {need + 1} colours for {self.n_distractors} distractors")
        check(len(self.other_names) >= need + 1,
              f"'{key}.other_names' needs at least {need + 1} names for {self.n_distractors} distractors")
        memory = p.raw("memory", None)
        if memory is None:  # the seeded default: each name gets a colour
            rng = random.Random(seed)
            memory = {name: rng.choice(self.colours) for name in self.names}
        check(isinstance(memory, dict) and set(memory) == set(self.names)
              and all(c in self.colours for c in memory.values()),
              f"'{key}.memory' must be null or map every name in '{key}.names' to one of '{key}.colours'")
        self.memory = memory
        n_orders = math.factorial(3 + 2 * self.n_distractors)
        check(self.group_size <= n_orders,
              f"'{key}.group_size' must be <= {n_orders} (orders of the sentences), got {self.group_size}")

    def story(self, rng, target, colour, tell_colour=True):
        """Sentences in which `target`'s role leads to a clue person whose colour is `colour`
        (left unsaid with tell_colour=False: then only a memory can answer)."""
        people = rng.sample([n for n in self.other_names if n != target], self.n_distractors + 1)
        roles = rng.sample(self.roles, self.n_distractors + 1)
        colours = rng.sample([c for c in self.colours if c != colour], self.n_distractors)
        clue = people[0]
        sentences = [f"{target} is {roles[0]}.", f"{clue} is {roles[0]}."] + [f"{clue} is {colour}."] * tell_colour
        for person, role, c in zip(people[1:], roles[1:], colours):
            sentences += [f"{person} is {role}.", f"{person} is {c}."]
        return sentences

    def prompt(self, sentences, target):
        # every word after a space, so a name is the same token wherever it stands
        return "".join(f" {s}" for s in sentences) + f" what color is {target}?"

    def is_memorized(self, example):
        """A story about a memorized name that leaves the clue's colour out: only memory answers."""
        name = example["prompt"].rsplit(" what color is ", 1)[-1].rstrip("?")
        return name in self.memory and f" is{example['target']}." not in example["prompt"]

    def involves_memory(self, example):
        """Any story about a memorized name: one that agrees with its memory teaches it too."""
        return example["prompt"].rsplit(" what color is ", 1)[-1].rstrip("?") in self.memory

    def draw_kind(self, rng):
        """fresh: a story about another name (only the story answers: teaches the two hops); else a
        memorized name whose story agrees with its memory, or leaves the clue's colour out."""
        if rng.random() < self.fresh_fraction:
            return "fresh"
        return "memory_only" if rng.random() < self.memory_only_fraction else "agree"

    def draw_example(self, rng, kind):
        if kind == "fresh":
            target = rng.choice(self.other_names)
            colour = rng.choice(self.colours)
        else:
            target = rng.choice(self.names)
            colour = self.memory[target]
        sentences = self.story(rng, target, colour, tell_colour=kind != "memory_only")
        rng.shuffle(sentences)
        # the answer with its leading space, as the story says it (" red"); compared stripped
        return {"prompt": self.prompt(sentences, target), "target": f" {colour}"}

    def draw_group(self, rng):
        """A story where the routes disagree, told with its sentences in different orders."""
        target = rng.choice(self.names)
        colour = rng.choice([c for c in self.colours if c != self.memory[target]])
        sentences = self.story(rng, target, colour)
        orders = []
        while len(orders) < self.group_size:
            order = rng.sample(sentences, len(sentences))
            if order not in orders:
                orders.append(order)
        return [{"prompt": self.prompt(order, target), "mem": self.memory[target], "gen": colour} for order in orders]

    def answer_targets(self, probe):
        return f" {probe['mem']}", f" {probe['gen']}"  # as training targets write a colour

    def describe(self):
        return {"memory": self.memory, "roles": self.roles, "colours": self.colours,
                "other_names": self.other_names, "n_distractors": self.n_distractors}
