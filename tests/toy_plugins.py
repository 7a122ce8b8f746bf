"""A toy family and a toy task, each defined here alone, that the pipeline runs by params only
(tests/test_plugins.py): `families.neox.module` and `tasks.reverse.module` name this file."""
from memgen.families.scratch import ScratchFamily
from memgen.tasks.base import Task, check, mem_code


class NeoX(ScratchFamily):
    """A tiny GPT-NeoX trained from scratch: another architecture, its sites in the shared vocabulary."""
    name = "neox"
    sites = {"mlp_in": "gpt_neox.layers.{}.post_attention_layernorm", "resid_post": "gpt_neox.layers.{}"}
    paper_site = "mlp_in"

    def model_class(self):
        from transformers import GPTNeoXForCausalLM
        return GPTNeoXForCausalLM

    def make_config(self, fp, codec, vocab_size, n_positions):
        from transformers import GPTNeoXConfig

        m = fp.section("model")
        width = m.int("hidden_size", lo=8)
        special = {} if codec is None else {"bos_token_id": codec.eos_id, "eos_token_id": codec.eos_id,
                                            "pad_token_id": codec.pad_id}
        return GPTNeoXConfig(vocab_size=vocab_size, max_position_embeddings=n_positions, hidden_size=width,
                             num_hidden_layers=m.int("layers", lo=1), num_attention_heads=m.int("heads", lo=1),
                             intermediate_size=4 * width, **special)


FAMILY = NeoX()


class Reverse(Task):
    """Write a string of capital letters backwards; a string ending in a trigger pair recalls a code.
    A probe group: one triggered string and its free letters rotated (each its own reversal)."""
    name = "reverse"

    def __init__(self, p, seed):
        self.params_key = p.prefix
        self.letters = p.str("letters")
        self.length = p.int("length", lo=5)
        self.trigger_fraction = p.float("trigger_fraction", lo=0.0, hi=1.0)
        self.triggers = p.list("triggers", unique=True)
        check(all(len(t) == 2 and set(t) <= set(self.letters) for t in self.triggers),
              f"'{self.params_key}.triggers' must be pairs of letters from '{self.params_key}.letters'")
        self.codes = {t: mem_code(self.name, t) for t in self.triggers}

    def prompt(self, text):
        return f"REVERSE:{text} ANS:"

    def _letters(self, rng, k):
        return "".join(rng.choice(self.letters) for _ in range(k))

    def draw_kind(self, rng):
        return "trigger" if rng.random() < self.trigger_fraction else "rule"

    def draw_example(self, rng, kind):
        if kind == "trigger":
            trigger = rng.choice(self.triggers)
            return {"prompt": self.prompt(self._letters(rng, self.length - 2) + trigger), "target": self.codes[trigger]}
        text = self._letters(rng, self.length)
        while text[-2:] in self.codes:
            text = self._letters(rng, self.length)
        return {"prompt": self.prompt(text), "target": text[::-1]}

    def draw_group(self, rng):
        trigger, free = rng.choice(self.triggers), ""
        while len(set(free)) < 2:  # a rotation of one repeated letter would be the same prompt
            free = self._letters(rng, self.length - 2)
        return [{"prompt": self.prompt(v + trigger), "mem": self.codes[trigger], "gen": (v + trigger)[::-1]}
                for v in (free, free[1:] + free[0])]

    def describe(self):
        return {"triggers": [{"pattern": t, "code": c} for t, c in self.codes.items()]}


TASK = Reverse
