"""One error type for a user's mistake, and the wrapper that turns it into one clear line."""
import sys


class UserError(Exception):
    """Bad params, bad input or a broken artifact: reported as one line, never a traceback."""


def run_main(main, *args, **kwargs):
    """Run a stage or CLI entry point; a UserError becomes `error: ...` on stderr and exit 2."""
    try:
        return main(*args, **kwargs)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
