"""One error type for a user's mistake, and the wrapper that turns it into one clear line."""
import sys

import click


class UserError(Exception):
    """Bad params, bad input or a broken artifact: reported as one line, never a traceback."""


def run_main(main, *args, **kwargs):
    """Run a stage or CLI entry point; a UserError becomes `error: ...` on stderr and exit 2."""
    try:
        return main(*args, **kwargs)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


class OneLineCommand(click.Command):
    """A click command whose usage errors (a bad argument, a missing one) are one line too."""

    def main(self, *args, **kwargs):
        kwargs.pop("standalone_mode", None)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as err:  # a bare group: its help, as click shows it
            err.show()
            sys.exit(err.exit_code)
        except click.ClickException as err:
            print(f"error: {err.format_message()}", file=sys.stderr)
            sys.exit(2)
        except click.exceptions.Abort:
            sys.exit(1)


class OneLineGroup(OneLineCommand, click.Group):
    """The same for a group of commands."""
    command_class = OneLineCommand
