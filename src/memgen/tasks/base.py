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


class Task:
    name = ""
    codes = {}  # trigger -> its memorized code, for tasks whose MEM answer is a code

    def training_examples(self, rng, n):
        """n dicts {"prompt", "target"}."""
        raise NotImplementedError

    def probe_groups(self, rng, n):
        """n groups of probes, flattened: a list of {"group", "prompt", "mem", "gen"}."""
        raise NotImplementedError

    def is_memorized(self, example):
        """Whether a training example's target is the memorized answer (a trigger's code)."""
        return example["target"] in self.codes.values()

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
