"""Run stage commands in one process with every pickle loader patched to refuse.

    python tests/nopickle_runner.py stages/data.py cipher -- stages/train.py gpt2 cipher 0 -- ...

Before anything of memgen (or torch, transformers, peft) is imported, pickle.load / loads /
Unpickler, torch.load and numpy.load(allow_pickle=True) are replaced by functions that record
the call and raise. The record is kept even when a library catches the error (a fallback that
swallows it must still fail the test): at exit it is printed as one line `PICKLE-CALLS: [...]`.
Each command runs as `python STAGE ARGS`; a non-zero exit stops the run with that exit code.
"""
import atexit
import json
import pickle
import runpy
import sys
import traceback

CALLS = []


def refuse(name):
    def refused(*args, **kwargs):
        where = "".join(traceback.format_stack(limit=6)[:-1])
        CALLS.append(f"{name}\n{where}")
        raise RuntimeError(f"{name} called while only safetensors/JSON may be loaded")
    return refused


class RefusingUnpickler(pickle.Unpickler):
    def load(self):
        return refuse("pickle.Unpickler.load")()


def patch():
    import _pickle

    for module in (pickle, _pickle):
        module.load, module.loads = refuse(f"{module.__name__}.load"), refuse(f"{module.__name__}.loads")
        module.Unpickler = RefusingUnpickler
    import numpy
    import torch
    import torch.serialization

    torch.load = torch.serialization.load = refuse("torch.load")
    np_load = numpy.load

    def guarded_np_load(*args, allow_pickle=False, **kwargs):
        if allow_pickle:
            refuse("numpy.load(allow_pickle=True)")()
        return np_load(*args, allow_pickle=False, **kwargs)
    numpy.load = guarded_np_load


def main(argv):
    patch()
    atexit.register(lambda: print("PICKLE-CALLS: " + json.dumps(CALLS), file=sys.stderr))
    commands, current = [], []
    for arg in argv:
        if arg == "--":
            commands.append(current)
            current = []
        else:
            current.append(arg)
    commands.append(current)
    for command in commands:
        sys.argv = list(command)
        try:
            runpy.run_path(command[0], run_name="__main__")
        except SystemExit as done:  # click always exits, also on success
            if done.code not in (0, None):
                sys.exit(done.code)


if __name__ == "__main__":
    main(sys.argv[1:])
