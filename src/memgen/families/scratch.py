"""Families trained from scratch with a task tokenizer and saved whole (gpt2, or a plug-in's own
architecture): a subclass names its transformers model class and builds its config."""
from pathlib import Path

import torch

from ..codec import Codec, build_task_tokenizer, load_task_tokenizer
from ..tasks.base import TOKEN_PATTERN
from .base import Family, from_pretrained_checked


class ScratchFamily(Family):
    base_default = "scratch"

    def model_class(self):
        """The transformers causal-LM class (imported late: transformers is slow to import)."""
        raise NotImplementedError

    def make_config(self, fp, codec, vocab_size, n_positions):
        """The model config from families.<name>.model and the task tokenizer's sizes."""
        raise NotImplementedError

    def check(self, fp):
        self.make_config(fp, None, 1, 1)

    def new_model(self, fp, texts, seed):
        tokenizer = build_task_tokenizer(texts, TOKEN_PATTERN)
        codec = Codec.from_task_tokenizer(tokenizer)
        longest = max(len(codec.prompt_ids(t)) for t in texts)
        config = self.make_config(fp, codec, tokenizer.get_vocab_size(), 2 * longest + 16)
        torch.manual_seed(seed)
        model = self.model_class()(config)

        def save(out_dir):
            model.save_pretrained(out_dir, safe_serialization=True)
            tokenizer.save(str(Path(out_dir) / "tokenizer.json"))
        return model, codec, save

    def load_model(self, model_dir, device, fp):
        model_dir = Path(model_dir)
        codec = Codec.from_task_tokenizer(load_task_tokenizer(model_dir / "tokenizer.json"))
        model = from_pretrained_checked(self.model_class(), model_dir)
        return model.to(device).eval(), codec
