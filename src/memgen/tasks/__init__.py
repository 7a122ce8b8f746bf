"""The task registry: a new task is one module here plus its section in params.yaml."""
from ..errors import UserError
from ..params import derive_seed
from .arithmetic import Arithmetic
from .base import BEHAVIOURS, GEN, MEM, OTHER, Task
from .cipher import Cipher
from .incontext import InContext

TASKS = {cls.name: cls for cls in (Arithmetic, Cipher, InContext)}


def check_task_name(name):
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: allowed are {', '.join(TASKS)}")
    return name


def load_task(params, name):
    """The task `name` as params.yaml defines it; its seeded defaults derive from `seed`."""
    check_task_name(name)
    seed = derive_seed(params.int("seed", lo=0), "task", name)
    return TASKS[name](params.section("tasks").section(name), seed)


__all__ = ["TASKS", "Task", "load_task", "check_task_name", "MEM", "GEN", "OTHER", "BEHAVIOURS"]
