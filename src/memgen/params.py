"""Reading params.yaml with checks that name the key and what is allowed."""
import hashlib
import math
from pathlib import Path

import yaml

from .errors import UserError

class Params:
    """A view on one section of params.yaml; every getter checks type and range."""

    def __init__(self, data, prefix=""):
        self.data = data
        self.prefix = prefix

    def dotted(self, key):  # the key's full name, as an error message gives it
        return f"{self.prefix}.{key}" if self.prefix else key

    def raw(self, key, default=...):
        if key not in self.data:
            if default is ...:
                raise UserError(f"params: missing key '{self.dotted(key)}'")
            return default
        return self.data[key]

    def section(self, key):
        value = self.raw(key)
        if not isinstance(value, dict):
            raise UserError(f"params: '{self.dotted(key)}' must be a mapping, got {value!r}")
        return Params(value, self.dotted(key))

    def int(self, key, lo=None, hi=None, default=...):
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"params: '{self.dotted(key)}' must be an integer, got {value!r}")
        return self._in_range(key, value, lo, hi)

    def float(self, key, lo=None, hi=None, lo_open=False, default=...):
        value = self.raw(key, default)
        if not is_number(value):
            raise UserError(f"params: '{self.dotted(key)}' must be a finite number, got {value!r}")
        if lo_open and (value <= lo or (hi is not None and value > hi)):
            span = f"({lo}, {'inf' if hi is None else hi}" + (")" if hi is None else "]")
            raise UserError(f"params: '{self.dotted(key)}' must be in {span}, got {value!r}")
        return float(self._in_range(key, value, lo, hi))

    def bool(self, key, default=...):
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise UserError(f"params: '{self.dotted(key)}' must be true or false, got {value!r}")
        return value

    def str(self, key, choices=None, default=...):
        value = self.raw(key, default)
        if not isinstance(value, str) or (choices is not None and value not in choices):
            allowed = f"one of {', '.join(choices)}" if choices else "a string"
            raise UserError(f"params: '{self.dotted(key)}' must be {allowed}, got {value!r}")
        return value

    def list(self, key, min_len=1, unique=False, default=...):
        value = self.raw(key, default)
        if not isinstance(value, list) or len(value) < min_len:
            raise UserError(
                f"params: '{self.dotted(key)}' must be a list of at least {min_len} item(s), got {value!r}")
        if unique and len({repr(v) for v in value}) != len(value):
            raise UserError(f"params: '{self.dotted(key)}' must not repeat items, got {value!r}")
        return value

    def numbers(self, key, lo=None):
        """A non-empty list of finite numbers, each at least `lo`, as floats."""
        value = self.list(key)
        if any(not is_number(v) or (lo is not None and v < lo) for v in value):
            bound = "" if lo is None else f" >= {lo:g}"
            raise UserError(f"params: '{self.dotted(key)}' must be a list of finite numbers{bound}, got {value!r}")
        return [float(v) for v in value]

    def one_or_list(self, key):
        """A knob given as one value or as a non-empty list of values: always a list."""
        value = self.raw(key)
        return self.list(key, unique=True) if isinstance(value, list) else [value]

    def _in_range(self, key, value, lo, hi):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            raise UserError(f"params: '{self.dotted(key)}' must be in {span}, got {value!r}")
        return value


def is_number(value):
    """A finite int or float (not a bool, NaN or infinity)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def load_params(path="params.yaml"):
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except yaml.YAMLError as err:  # its text spans several lines: the problem and where, in one
        mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None) or type(err).__name__
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML ({problem}{where})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: must hold a mapping of params")
    return Params(data)


def derive_seed(base, *names):
    """A 31-bit seed from the base seed and names, stable across runs and machines."""
    text = "/".join([str(base), *map(str, names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> 1
