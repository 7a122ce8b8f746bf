"""Text <-> token ids for both families: a task tokenizer (gpt2) or the base model's (llama)."""
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

from .errors import UserError

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def build_task_tokenizer(texts, pattern):
    """A word-level tokenizer over the pieces `pattern` cuts from `texts`; decoding concatenates."""
    split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    pieces = sorted({piece for text in texts for piece, _ in split.pre_tokenize_str(text)})
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK] + pieces)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = split
    tokenizer.decoder = decoders.Fuse()
    return tokenizer


class Codec:
    """encode / decode / pad and eos ids, the same for a `tokenizers.Tokenizer` or an HF tokenizer."""

    def __init__(self, encode, decode, pad_id, eos_id, prefix_ids=()):
        self._encode, self._decode = encode, decode
        self.pad_id, self.eos_id = pad_id, eos_id
        self.prefix_ids = list(prefix_ids)  # e.g. a BOS token before every prompt

    def prompt_ids(self, text):
        return self.prefix_ids + self._encode(text)

    def target_ids(self, text):
        return self._encode(text) + [self.eos_id]

    def text(self, ids):
        """The text of generated ids, up to the first EOS."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self._decode(ids)

    @classmethod
    def from_task_tokenizer(cls, tokenizer):
        return cls(lambda t: tokenizer.encode(t).ids, tokenizer.decode,
                   tokenizer.token_to_id(PAD), tokenizer.token_to_id(EOS))

    @classmethod
    def from_hf(cls, tokenizer, pattern):
        """A pretrained tokenizer applied to the pieces `pattern` cuts (the cut the task tokenizers
        make), each piece on its own: a ciphertext is read letter by letter and a number digit by
        digit, instead of in BPE merges that differ from one string to the next ("SM", "QR")."""
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")

        def encode(text):
            pieces = [piece for piece, _ in split.pre_tokenize_str(text)]
            return [i for ids in tokenizer(pieces, add_special_tokens=False).input_ids for i in ids] if pieces else []
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        prefix = tokenizer.encode("", add_special_tokens=True)  # what the model expects first (a BOS, or nothing)
        return cls(encode, lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
                   pad, tokenizer.eos_token_id, prefix)


def load_task_tokenizer(path):
    path = Path(path)
    try:
        return Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for a broken file
        if not path.exists():
            raise UserError(f"{path}: file not found (run the stage that makes it first)") from None
        raise UserError(f"{path}: not a readable tokenizer ({str(err).splitlines()[0]})") from None
