import copy
import random

import pytest

from memgen.params import Params, load_params
from tiny_repo import ROOT


@pytest.fixture
def params_data():
    """A deep copy of the default params.yaml, to edit per test."""
    return copy.deepcopy(load_params(ROOT / "params.yaml").data)


def task_params(data, name):
    return Params(data["tasks"][name], f"tasks.{name}")


@pytest.fixture
def rng():
    return random.Random(1234)
