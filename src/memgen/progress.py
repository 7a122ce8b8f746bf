"""Rich progress bars on stderr; silent when there is nothing to show."""
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .distributed import is_main

_console = Console(stderr=True, soft_wrap=True)


@contextmanager
def progress_bar(desc, total):
    """Yield advance(n); with desc=None nothing is drawn (inner loops, tests), nor on any process
    but the main one."""
    if desc is None or not is_main():
        yield lambda n=1, note=None: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"))
    with Progress(*columns, console=_console, transient=False) as bar:
        task = bar.add_task(desc, total=total, note="")

        def advance(n=1, note=None):
            bar.update(task, advance=n, **({"note": note} if note is not None else {}))
        yield advance


def log(message):
    """A line on stderr (above any live progress bar), from the main process only."""
    if not is_main():
        return
    _console.print(message, highlight=False)
