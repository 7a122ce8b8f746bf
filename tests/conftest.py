import copy
import random
from pathlib import Path

import pytest

from memgen.params import Params, load_params

ROOT = Path(__file__).resolve().parents[1]


def merge(base, over):
    """Nested dicts of `over` merged into `base` (a params profile over params.yaml)."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture
def params_data():
    """A deep copy of the default params.yaml, to edit per test."""
    return copy.deepcopy(load_params(ROOT / "params.yaml").data)


def task_params(data, name):
    return Params(data["tasks"][name], f"tasks.{name}")


@pytest.fixture
def rng():
    return random.Random(1234)
