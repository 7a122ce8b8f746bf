"""The task registry: a task is one module (built in here, or a plug-in named by
`tasks.<name>.module`) plus its section in params.yaml."""
from ..errors import UserError
from ..params import derive_seed
from ..plugins import load_plugin
from .arithmetic import Arithmetic
from .base import BEHAVIOURS, GEN, MEM, OTHER, Task
from .cipher import Cipher
from .incontext import InContext

TASKS = {cls.name: cls for cls in (Arithmetic, Cipher, InContext)}


def task_class(params, name):
    """The Task subclass of `name`: built in, or loaded from the module its params name."""
    section = params.section("tasks").raw(name, None)
    if isinstance(section, dict) and "module" in section:
        cls = load_plugin(section["module"], "TASK", f"tasks.{name}.module")
        if not (isinstance(cls, type) and issubclass(cls, Task) and cls.name == name):
            raise UserError(f"params: 'tasks.{name}.module' must define TASK, a Task subclass named {name!r}")
        return cls
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: built in are {', '.join(TASKS)} (or name a plug-in with "
                        f"'tasks.{name}.module')")
    return TASKS[name]


def load_task(params, name):
    """The task `name` as params.yaml defines it; its seeded defaults derive from `seed`."""
    cls = task_class(params, name)
    seed = derive_seed(params.int("seed", lo=0), "task", name)
    return cls(params.section("tasks").section(name), seed)


__all__ = ["TASKS", "Task", "load_task", "task_class", "MEM", "GEN", "OTHER", "BEHAVIOURS"]
