"""More than one process: the params switch, the re-launch under torch.distributed.run, and whole
batches shared out between the processes and gathered back in their original order.

One process (the default) never starts torch.distributed: every helper here is then the identity."""
import logging
import os
import sys
from dataclasses import dataclass

import torch

from .errors import UserError

# params: null (full precision) or a half type; "no" is what accelerate calls null. params.yaml
# does not spell "no": `dvc exp run -S` rewrites the file unquoted and YAML 1.1 reads `no` as false.
MIXED_PRECISION = (None, "fp16", "bf16")


@dataclass(frozen=True)
class Parallel:
    num_processes: int = 1
    mixed_precision: str = "no"
    gradient_accumulation_steps: int = 1

    @property
    def plain(self):
        """The default: one process, full precision, one step per batch (today's plain loop)."""
        return self == Parallel()


def read_parallel(params):
    """params `parallel`; an absent section or key takes the default."""
    if params.raw("parallel", None) is None:
        return Parallel()
    p = params.section("parallel")
    precision = p.raw("mixed_precision", None)
    if precision not in MIXED_PRECISION:
        raise UserError(f"params: 'parallel.mixed_precision' must be null, fp16 or bf16, got {precision!r}")
    return Parallel(p.int("num_processes", lo=1, default=1), precision or "no",
                    p.int("gradient_accumulation_steps", lo=1, default=1))


def pin_threads(params):
    """torch's threads in this process from params `parallel.threads`, the threads a stage uses in all,
    split evenly over its processes (null: torch's own choice, the machine's core count). On a CPU the
    bytes a run writes follow its thread count (a reduction splits differently), not the machine's load
    (measured: identical under 3 competing processes), so the count is a param, not the machine's. A
    forward pass can still round differently between processes (~1e-5; README "Same bytes"). Returns the count."""
    section = params.section("parallel") if params.raw("parallel", None) is not None else None
    if section is not None and section.raw("threads", None) is not None:
        processes = int(os.environ.get("WORLD_SIZE", 1)) if launched() else 1
        threads = max(1, section.int("threads", lo=1) // processes)
        if threads != torch.get_num_threads():  # set only to change it: an explicit set changes how MKL threads
            torch.set_num_threads(threads)
    return torch.get_num_threads()


def launched():
    """Whether this process was started by the launcher (it sets LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ


def launch_command(num_processes, argv):
    """The command starting `argv` (a script and its arguments) as num_processes processes: this
    module run as the launcher (below). torch.distributed.run, not `accelerate launch`: on CPU the
    latter starts one process (its multi-CPU mode wants mpirun); --standalone picks a free port, so
    runs side by side never clash."""
    return [sys.executable, "-m", "memgen.distributed", "--standalone", f"--nproc_per_node={num_processes}", *argv]


def launch(args):
    """torch.distributed.run with `args`, less its log and traceback: each process says what went
    wrong in its own line; the exit status is the first failure's (a signal: one line for it)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    for name in list(logging.root.manager.loggerDict):  # each sets its own level when made
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(parse_args(args))
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        if failure.exitcode < 0:
            print(f"error: process {rank} was killed by signal {-failure.exitcode}", file=sys.stderr)
        sys.exit(max(1, failure.exitcode))


def relaunch_if_asked(parallel):
    """Replace this process by num_processes copies of itself, unless one or already launched."""
    if parallel.num_processes > 1 and not launched():
        cmd = launch_command(parallel.num_processes, sys.argv)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(cmd[0], cmd)


def state():
    """accelerate's process state (it joins the process group once: gloo on CPU, nccl on CUDA)."""
    from accelerate import PartialState
    return PartialState(cpu=not torch.cuda.is_available())


def world():
    """(this process's index, number of processes)."""
    if not launched():
        return 0, 1
    s = state()
    return s.process_index, s.num_processes


def is_main():
    """Only the main process writes outputs and draws progress."""
    return world()[0] == 0


def process_device(device):
    """Each launched process on CUDA gets its own GPU."""
    if launched() and device.type == "cuda":
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def my_batches(batches):
    """(index, batch) of the batches this process computes: batch i goes to process i mod N, so each
    is computed whole, with the padding and shapes one process would give it."""
    rank, n = world()
    return [(i, b) for i, b in enumerate(batches) if i % n == rank]


def gather_in_order(results):
    """(index, result) pairs from every process -> all the results, in index order, on every process.
    Results must be picklable and off the GPU."""
    if world()[1] > 1:
        from accelerate.utils import gather_object
        results = sorted(gather_object(results), key=lambda pair: pair[0])
    return [r for _, r in results]


if __name__ == "__main__":
    launch(sys.argv[1:])
