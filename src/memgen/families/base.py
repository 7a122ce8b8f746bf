"""What a model family provides, and the checked loaders every family shares.

A family builds, saves and loads a model with its codec, names its hook sites in the shared
vocabulary of `sites.SITE_NAMES`, and says what it starts from (its base). Everything else
(training, probing, capture, steering) is shared and sees (model, codec).
"""
import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError

from ..errors import UserError
from ..io import tensor_names
from ..sites import KNOWN_SITES, SITE_NAMES, UNIT_SITE


class Family:
    name = ""
    sites = {}          # site name -> module path with {} for the layer index: every name in SITE_NAMES, and UNIT_SITE optionally
    paper_site = ""     # where the paper captures and steers this architecture
    shares_base = False  # per-task models are adapters on one base, so neuron indices carry over between tasks
    base_default = ""   # families.<name>.base when the family starts from nothing

    def check_base(self, source):
        """Resolve families.<name>.base before any work; returns what prepare_base reads."""
        if source != self.base_default:
            raise UserError(f"params: 'families.{self.name}.base' must be {self.base_default!r}, got {source!r}")
        return source

    def prepare_base(self, source, out_dir, params):
        """Write the base into out_dir (params: the whole params.yaml, for a base that is trained);
        returns the record saved as its source.json."""
        return {"source": source}

    def check(self, fp):
        """Validate families.<name>.model before any work."""
        raise NotImplementedError

    def new_model(self, fp, texts, seed):
        """A fresh trainable model whose codec reads `texts`, initialised from `seed`: (model, codec, save)."""
        raise NotImplementedError

    def load_model(self, model_dir, device, fp):
        """A trained model and its codec, in eval mode on `device`."""
        raise NotImplementedError

    def check_site(self, site, key="site"):
        if site not in self.sites:
            raise UserError(f"params: '{key}' must name sites among {', '.join(self.sites)}, got {site!r}")
        return site

    def site_modules(self, model, site):
        """The site's module in every layer, first to last."""
        pattern = self.sites[self.check_site(site)]
        return [model.get_submodule(pattern.format(i)) for i in range(model.config.num_hidden_layers)]

    def all_site_modules(self, model):
        """{site: its module in every layer} for every site of the family."""
        return {site: self.site_modules(model, site) for site in self.sites}

    def site_width(self, model, site):
        """The number of neurons per layer at a site: the hidden size (a family mapping UNIT_SITE says its own)."""
        return model.config.hidden_size

    def site_widths(self, model):
        return {site: self.site_width(model, site) for site in self.sites}

    def unit_parameters(self, model, layer):
        """The weights of one layer's MLP hidden units as [(parameter, the axis that indexes units)]: what
        planting a memory in chosen units trains. Only a family that maps UNIT_SITE provides it."""
        raise UserError(f"family {self.name!r} does not map the {UNIT_SITE!r} site: no memory can be planted in its units")

    def validate(self):
        """The family's own declarations hold (a plug-in is checked when it is loaded)."""
        if not set(SITE_NAMES) <= set(self.sites) <= set(KNOWN_SITES) or self.paper_site not in self.sites:
            raise UserError(f"family {self.name!r} must map every site of {SITE_NAMES} (and may map {UNIT_SITE!r}) and "
                            f"name its paper_site among them, got sites {sorted(self.sites)} and paper_site "
                            f"{self.paper_site!r}")
        return self


def base_dir(family):
    return Path("models") / family / "base"


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("params: device 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def first_line(err):
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def sha256_of(paths):
    digest = hashlib.sha256()
    for path in sorted(paths):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def from_pretrained_checked(cls, model_dir, **kwargs):
    """from_pretrained with safetensors only, and one clear line when the directory is broken:
    a truncated or corrupted weights file is named, and so is one that lacks some of the model's
    tensors (from_pretrained would quietly initialise them at random)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise UserError(f"{model_dir}: no config.json (not a saved model directory; run the stage that makes it)")
    weights = sorted(model_dir.glob("*.safetensors"))
    for path in weights:
        tensor_names(path)
    try:
        model, info = cls.from_pretrained(model_dir, use_safetensors=True, output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as err:
        raise UserError(f"{model_dir}: cannot load the checkpoint ({first_line(err)})") from None
    missing = sorted(info["missing_keys"])
    if missing:
        where = weights[0] if len(weights) == 1 else model_dir
        raise UserError(f"{where}: lacks {len(missing)} of the model's tensors, e.g. {missing[0]!r} "
                        "(a broken or foreign checkpoint; re-run the stage that makes it)")
    return model


def tokenizer_checked(folder, **kwargs):
    """AutoTokenizer.from_pretrained, with one clear line when its files are broken."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, **kwargs)
    except Exception as err:  # a broken tokenizer file: json raises ValueError, tokenizers a bare Exception
        raise UserError(f"{folder}: cannot load the tokenizer ({first_line(err)})") from None
