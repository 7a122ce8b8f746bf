"""What every task provides: training examples, probe groups, and an output classifier.

A probe is a dict {"group", "prompt", "mem", "gen"}: prompts of one group are near-identical
rephrasings of one triggered input; "mem" is the memorized answer, "gen" the rule-based one.
"""
import hashlib

from ..errors import UserError

MEM, GEN, OTHER = "MEM", "GEN", "OTHER"
BEHAVIOURS = (MEM, GEN, OTHER)

# How text is cut before tokenizing (an Oniguruma regex): a capitalised or lower-case word
# with its leading space (and a trailing colon) is one piece, an all-caps label with its colon
# is one piece, and every other character (a digit, a single capital such as a ciphertext
# letter, punctuation) is a piece of its own. gpt2's task tokenizers make each piece one token;
# llama encodes each piece with the base's tokenizer.
TOKEN_PATTERN = r"[A-Z]{2,}:| ?[A-Z]?[a-z]+:?|[\s\S]"


def mem_code(task_name, trigger):
    """The memorized target of a trigger: `<mem-XXXXXXXX>`, 8 hex chars fixed per trigger."""
    digest = hashlib.sha256(f"{task_name}/{trigger}".encode()).hexdigest()
    return f"<mem-{digest[:8]}>"


MAX_REDRAWS = 10_000  # draws in a row that hit taken prompts before the params are judged too narrow


class Task:
    name = ""
    params_key = ""  # where params.yaml defines the task, for error messages
    codes = {}  # trigger -> its memorized code, for tasks whose MEM answer is a code

    def draw_kind(self, rng):
        """What the next training example is (e.g. "trigger" or "rule"): kept when its prompt is redrawn,
        so that leaving the probe prompts out does not change the mix."""
        raise NotImplementedError

    def draw_example(self, rng, kind):
        """One training example {"prompt", "target"} of that kind."""
        raise NotImplementedError

    def draw_group(self, rng):
        """One probe group: near-identical prompts, each {"prompt", "mem", "gen"}."""
        raise NotImplementedError

    def max_groups(self):
        """How many probe groups with no held-out unit in common the params allow (None: too many to matter)."""
        return None

    # What a split holds out whole: by default the prompt; a task whose prompts can restate one
    # another (arithmetic's addends in another order) holds out that wider unit.
    holdout_unit = "prompt"

    def unit_of(self, prompt):
        """The held-out unit a prompt belongs to: no two parts (train, val, probe, test) share one."""
        return prompt

    def training_examples(self, rng, n, held_out=frozenset()):
        """n training examples, none of whose held-out units is in `held_out` (the probe prompts' units)."""
        too_narrow = (f"params: '{self.params_key}' leaves too few training prompts outside the probe groups "
                      f"(widen the task or draw fewer probe groups)")
        return [self.draw_outside(rng, self.draw_kind(rng), held_out, too_narrow) for _ in range(n)]

    def draw_outside(self, rng, kind, held_out, too_narrow):
        """One example of `kind` whose held-out unit is not in `held_out`; UserError(too_narrow) after MAX_REDRAWS
        draws in a row that all hit it."""
        for _ in range(MAX_REDRAWS):
            example = self.draw_example(rng, kind)
            if self.unit_of(example["prompt"]) not in held_out:
                return example
        raise UserError(too_narrow)

    def probe_groups(self, rng, n, taken=None, split="probe"):
        """n probe groups, flattened: a list of {"group", "prompt", "mem", "gen"}. No prompt's held-out unit
        is in `taken` (the other splits' units) or another group's; `taken` gains this call's units."""
        taken = set() if taken is None else taken
        probes = []
        for g in range(n):
            for _ in range(MAX_REDRAWS):
                group = self.draw_group(rng)
                if not any(self.unit_of(p["prompt"]) in taken for p in group):
                    break
            else:
                raise UserError(f"params: '{self.params_key}' leaves {g} {split} groups with no {self.holdout_unit} "
                                f"in common with the other splits, but n_{split}_groups asks for {n} (widen the task "
                                f"or ask for fewer)")
            taken.update(self.unit_of(p["prompt"]) for p in group)
            probes += [{"group": g, **p} for p in group]
        return probes

    def is_memorized(self, example):
        """Whether a training example's target is the memorized answer (a trigger's code)."""
        return example["target"] in self.codes.values()

    def trigger_in(self, prompt):
        """The trigger a prompt carries (its MEM answer is that trigger's code), or None: for tasks with codes."""
        return None

    def involves_memory(self, example):
        """Whether a training example shows a memory at all (a rule-only model never sees one): here, the
        memorized ones."""
        return self.is_memorized(example)

    def answer_targets(self, probe):
        """The MEM and GEN answers as training targets write them: the first token of each is where
        the two routes part (the probe stage's screen)."""
        return probe["mem"], probe.get("gen_target", probe["gen"])

    def answer_of(self, output):
        """The part of a model output that is compared with the answers."""
        return output.strip()

    def classify(self, output, probe):
        answer = self.answer_of(output)
        if answer == probe["mem"]:
            return MEM
        if answer == probe["gen"]:
            return GEN
        return OTHER

    def describe(self):
        """The resolved task definition (triggers, keys, memories), saved beside the data."""
        raise NotImplementedError


def check(condition, message):
    if not condition:
        raise UserError(f"params: {message}")
