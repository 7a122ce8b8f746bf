"""Loading a family or a task from a module named in params.yaml (`families.<name>.module`,
`tasks.<name>.module`): a dotted module on sys.path or a path to a .py file."""
import importlib
import importlib.util
import sys
from pathlib import Path

from .errors import UserError


def load_plugin(module, attribute, key):
    """`attribute` of the module named by the param `key` (one line when it cannot be found)."""
    if not isinstance(module, str) or not module:
        raise UserError(f"params: '{key}' must name a module (dotted, or a path to a .py file), got {module!r}")
    if module.endswith(".py"):
        path = Path(module)
        if not path.is_file():
            raise UserError(f"params: '{key}' {module!r} is not a file")
        name = f"memgen_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded  # dataclasses and pickling-free introspection look the module up by name
        spec.loader.exec_module(loaded)
    else:
        try:
            loaded = importlib.import_module(module)
        except ImportError as err:
            raise UserError(f"params: '{key}': cannot import {module!r} ({err})") from None
    if not hasattr(loaded, attribute):
        raise UserError(f"params: '{key}': {module!r} defines no {attribute}")
    return getattr(loaded, attribute)
