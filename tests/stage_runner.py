"""Runs stage commands as separate processes without paying the imports each time: this process imports
torch, transformers and memgen once, then forks a child per request, which runs the command as
`python <script> <args>` (or `python -c <code> <args>`) would, with its own exit status, stdout and stderr.

Requests are JSON lines on stdin {"cwd", "argv"}; each answer is a JSON line {"returncode", "stdout", "stderr"}.
A child gets `TIMEOUT` seconds (SIGALRM). Used by tests/test_stage_errors.py, where ~60 commands each
stopped at a bad input in ~0.1 s after ~5 s of imports."""
import json
import os
import runpy
import signal
import sys
import tempfile
import traceback

import memgen.cli  # noqa: F401  (what the commands import, loaded once before any fork)
import memgen.evaluate  # noqa: F401
import memgen.families.gpt2  # noqa: F401
import memgen.families.llama  # noqa: F401
import memgen.run  # noqa: F401
import transformers.models.gpt2.modeling_gpt2  # noqa: F401
import transformers.models.llama.modeling_llama  # noqa: F401

TIMEOUT = 120


def child(cwd, argv, out, err):
    """In the forked child: the command's exit status, as the interpreter would give it."""
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    os.chdir(cwd)
    signal.alarm(TIMEOUT)
    sys.path[0] = cwd  # as for `python script.py` run there
    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        return 0
    except SystemExit as stop:
        code = stop.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001  (what the interpreter prints for any uncaught exception)
        traceback.print_exc()
        return 1


def serve():
    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                code = child(request["cwd"], request["argv"], out, err)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            out.seek(0)
            err.seek(0)
            answer = {"returncode": os.waitstatus_to_exitcode(status), "stdout": out.read(), "stderr": err.read()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
