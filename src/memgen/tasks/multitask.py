"""Several tasks as one, for a model trained on all of them: each probe carries its task's name."""
from ..paths import MULTITASK
from .base import Task


class MultiTask(Task):
    name = MULTITASK

    def __init__(self, tasks):
        self.tasks = {t.name: t for t in tasks}

    def classify(self, output, probe):
        return self.tasks[probe["task"]].classify(output, probe)

    def answer_targets(self, probe):
        return self.tasks[probe["task"]].answer_targets(probe)

    def is_memorized(self, example):  # no two tasks share a prompt format, so at most one says yes
        return any(t.is_memorized(example) for t in self.tasks.values())
