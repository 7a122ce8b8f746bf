"""The family registry: a family is one module (built in here, or a plug-in named by
`families.<name>.module`) plus its section in params.yaml."""
import warnings

from transformers.utils import logging as hf_logging

from ..errors import UserError
from ..plugins import load_plugin
from . import gpt2, gpt2_shared, llama
from .base import Family, base_dir, pick_device

# The stages draw their own progress bars; transformers' loading bars and notes are noise here,
# and so is a deprecation notice that peft's wrapper triggers inside transformers.
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

BUILT_IN = {f.name: f for f in (gpt2.FAMILY, gpt2_shared.FAMILY, llama.FAMILY)}


def get_family(params, name):
    """The family `name`: built in, or loaded from the module its params name."""
    entry = params.section("families").raw(name, None)
    if isinstance(entry, dict) and "module" in entry:
        family = load_plugin(entry["module"], "FAMILY", f"families.{name}.module")
        if not isinstance(family, Family) or family.name != name:
            raise UserError(f"params: 'families.{name}.module' must define FAMILY, a Family named {name!r}")
        return family.validate()
    if name not in BUILT_IN:
        raise UserError(f"unknown family {name!r}: built in are {', '.join(BUILT_IN)} "
                        f"(or name a plug-in with 'families.{name}.module')")
    return BUILT_IN[name]


__all__ = ["BUILT_IN", "Family", "get_family", "base_dir", "pick_device"]
