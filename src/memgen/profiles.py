"""Params profiles: a YAML overlay of params.yaml (profiles/<name>.yaml) turned into the `-S key=value`
settings `dvc exp run` applies, so a profile is an experiment like any other (dvc exp show, diff, queue).

Each value is written as compact JSON, which DVC reads as YAML, without spaces, so that
`dvc exp run $(memgen profile paper)` splits it into the right words."""
import json
from pathlib import Path

import yaml

from .errors import UserError

PROFILES = Path("profiles")


def read_profile(name, profiles_dir=PROFILES):
    path = profiles_dir / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in profiles_dir.glob("*.yaml"))
        raise UserError(f"no profile {name!r} in {profiles_dir}/ (known: {', '.join(known) or 'none'})")
    overlay = yaml.safe_load(path.read_text())
    if not isinstance(overlay, dict):
        raise UserError(f"{path}: a profile is a mapping of params to set")
    return overlay


def settings(overlay, params, prefix=""):
    """[(dotted key, value)] for every leaf of the overlay. A key must exist in params.yaml (a typo would
    otherwise add a param no stage reads); a mapping in the overlay whose params counterpart is not a
    mapping replaces it whole."""
    out = []
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if not isinstance(params, dict) or key not in params:
            raise UserError(f"profile sets {dotted!r}, which params.yaml does not have")
        if isinstance(value, dict) and isinstance(params[key], dict):
            out += settings(value, params[key], f"{dotted}.")
        else:
            out.append((dotted, value))
    return out


def set_args(pairs):
    """['-S', 'key=value', ...] with each value as compact JSON."""
    args = []
    for key, value in pairs:
        text = json.dumps(value, separators=(",", ":"))
        if any(c.isspace() for c in text):
            raise UserError(f"profile value of {key!r} holds a space ({text}); set it with -S by hand")
        args += ["-S", f"{key}={text}"]
    return args
