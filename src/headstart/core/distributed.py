"""Several processes, one run: PyTorch's own distributed engine (``torch.distributed``),
started by ``torchrun``, the launcher that ships with PyTorch.

Each process (a *rank*) loads the same data and splits it the same way (same seed), then

* computes the frozen part of the network for a disjoint shard of every split and view, and
  writes its shard beside the cache entry; rank 0 joins the shards into the entry, marker last
  (:mod:`headstart.core.cache`): the entry is the one a single process would write, under
  the same key;
* trains the trainable part wrapped in ``DistributedDataParallel``: every rank draws the same
  global batches from the same seeded generator and takes its share of each (``--batch-size``
  is the global batch, so the learning rate means what it means on one process), and the
  losses are scaled so the averaged gradient is the one of the whole batch;
* reduces validation over ranks (every example counted once), so early stopping decides the
  same on every rank;
* leaves the run directory, checkpoints and report to rank 0.

**Where files live.** The cache (``$HEADSTART_CACHE_DIR``) and the run directory must be one
folder that every rank sees: always true on one machine; across machines, a network or
parallel file system. Each rank reads the finished cache entry and the checkpoint from there,
and the run stops with a clear message when a rank cannot see what rank 0 wrote.

Everything here is a no-op for one process (:data:`SINGLE`), so the rest of the code calls it
unconditionally.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from headstart.errors import ConfigError, RunError

#: Why ``auto`` choices refuse to distribute (said by the command line and by ``train_auto``).
AUTO_SINGLE_PROCESS = (
    "--strategy auto and --backbone auto train their candidates in one process; drop "
    "--nproc (or torchrun), or name a backbone and strategy to train on several."
)

#: Environment variables torchrun sets in every process it starts.
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Group:
    """The processes of this run, and the few collective operations training needs."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None
    #: machines taking part (torchrun's ``--nnodes``), as far as this process knows
    nodes: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def part(self) -> tuple[int, int] | None:
        """(rank, world size) for the inputs' ``epoch(part=...)``; None on one process."""
        return (self.rank, self.world_size) if self.distributed else None

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's contiguous share [lo, hi) of ``n`` items (sizes differ by at most one)."""
        return shard_bounds(n, self.rank, self.world_size)

    def record(self) -> dict:
        """What the run's record says about how it ran."""
        return {"world_size": self.world_size, "backend": self.backend, "nodes": self.nodes}

    # -- collectives (all ranks must call them, in the same order) -----------------------------

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, values):
        """Element-wise sum over ranks of a few numbers (a float64 array)."""
        import numpy as np

        arr = np.asarray(values, dtype=np.float64)
        if not self.distributed:
            return arr
        import torch
        import torch.distributed as dist

        t = torch.from_numpy(arr.copy())
        if self.backend == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().numpy()

    def sync_buffers(self, module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank. DDP broadcasts them
        at the start of each training step, so after an epoch's last step each rank holds its
        own update; syncing before evaluation makes every rank score with the model rank 0
        saves."""
        if not self.distributed:
            return
        import torch.distributed as dist

        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)

    def raise_together(self, error: str | None) -> None:
        """Every rank passes the error it found (or None); if any found one, all raise the
        first rank's as :class:`RunError`, so rank 0 reports it and no rank is left waiting
        in a collective for one that failed alone."""
        errors = [e for e in self.all_gather(error) if e]
        if errors:
            raise RunError(errors[0])


SINGLE = Group()


def describe(record: dict | None) -> str | None:
    """How a run ran, in words, from its record's ``distributed`` (None: one process)."""
    by = (record or {}).get("epochs_by_processes")
    if not record or (record.get("world_size", 1) <= 1 and not by):
        return None
    nodes = record.get("nodes", 1)
    where = f"{nodes} machines" if nodes > 1 else "1 machine"
    text = f"{record['world_size']} on {where}"
    if record.get("backend"):
        text += f" ({record['backend']}), each a share of every batch"
    if by:
        parts = [f"{n} epoch{'s' if n != 1 else ''} on {k}" for k, n in by.items()]
        text += f"; resumed on another number: {', '.join(parts)}"
    return text


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous, balanced shards: the first ``n % world_size`` ranks get one item more."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def launched() -> bool:
    """True in a process that torchrun started as one of several (read from the environment:
    this module imports nothing heavy, so the command line asks it before loading torch)."""
    return all(v in os.environ for v in _TORCHRUN_VARS) and int(os.environ["WORLD_SIZE"]) > 1


def speaks() -> bool:
    """True in the process that talks to the user: rank 0, or the only process."""
    return not launched() or os.environ.get("RANK") == "0"


_GROUP: Group | None = None


def current() -> Group:
    """The group of this process: the one :func:`init` joined, else one process (a process
    group the caller set up for its own purposes does not make headstart distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return _GROUP or SINGLE


def init(device: str) -> Group:
    """Join the process group torchrun set up: NCCL when this run trains on CUDA GPUs (one per
    process, by ``LOCAL_RANK``), gloo otherwise (``device`` is the run's resolved device)."""
    global _GROUP
    import torch
    import torch.distributed as dist

    if _GROUP is not None and dist.is_initialized():
        return _GROUP
    _end_with_launcher()
    local_rank = int(os.environ["LOCAL_RANK"])
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process {local_rank} on this machine has no GPU of its own "
                f"({torch.cuda.device_count()} visible): start at most one process per GPU."
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    _GROUP = Group(
        world_size=dist.get_world_size(),
        rank=dist.get_rank(),
        local_rank=local_rank,
        backend=backend,
        nodes=_machines()[1],
    )
    return _GROUP


def _machines() -> tuple[int, int]:
    """(processes per machine, machines) of this torchrun launch, from its environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return per_machine, max(1, world // max(1, per_machine))


def _end_with_launcher() -> None:
    """On Linux, ask the kernel to stop this process when its launcher dies, however it dies:
    torchrun's workers run in sessions of their own, so a launcher killed with SIGKILL left
    them training (and holding the run's lock) as orphans."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher died before the request was made
        raise SystemExit(1)


def rank_device(device: str, group: Group) -> str:
    """The device of this rank: its own GPU (``cuda:LOCAL_RANK``) under NCCL."""
    if group.backend == "nccl" and (device == "auto" or device.startswith("cuda")):
        return f"cuda:{group.local_rank}"  # (--device cuda:0 too: each process has its own)
    return device


def shutdown() -> None:
    global _GROUP
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _GROUP = None


#: Where a collective's failure surfaces: torch.distributed itself, DistributedDataParallel's
#: forward (it waits there for the previous step's work) and autograd's backward (DDP's
#: gradient all-reduce runs inside it).
DISTRIBUTED_MODULES = ("torch.distributed", "torch.nn.parallel.distributed", "torch.autograd")


def is_peer_failure(error: BaseException) -> bool:
    """True for the error a collective raises when another rank went away, told by type and
    origin, never by its wording: NCCL, the rendezvous store and the network raise
    ``torch.distributed.DistError`` subclasses (``DistBackendError``, ``DistNetworkError``,
    ``DistStoreError``); gloo raises a bare ``RuntimeError`` (torch 2.14; a test kills a real
    gloo peer to check), told apart by where it was raised: inside torch.distributed, DDP or
    its backward pass. Callers ask only in a launched run, and ``--debug`` skips the question
    (a bug raised there still shows its traceback)."""
    import torch.distributed as dist

    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    return type(error) is RuntimeError and raised_in(error, DISTRIBUTED_MODULES)


def raised_in(error: BaseException, modules: tuple[str, ...]) -> bool:
    """Whether the innermost Python frame of ``error``'s traceback belongs to one of
    ``modules`` (or a module below them)."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return any(module == m or module.startswith(m + ".") for m in modules)


@dataclass(frozen=True)
class Failure:
    """The first process of a launch that failed: its rank and how it ended."""

    rank: int
    exitcode: int
    signal: str | None = None

    def describe(self) -> str:
        if self.rank < 0:
            return f"headstart was stopped ({self.signal})"
        if self.signal:
            return f"was killed ({self.signal})"
        return f"ended with exit code {self.exitcode}"


#: Set by :func:`launch` in the processes it starts, so their messages can name ``--nproc``
#: and their record the command the user typed.
NPROC_VAR = "HEADSTART_NPROC"
COMMAND_VAR = "HEADSTART_COMMAND"


def command_line() -> str | None:
    """The command that started this run, as its record keeps it: what the user typed to
    ``headstart`` (also through ``--nproc``), or the torchrun form; None from Python."""
    import sys

    if os.environ.get(COMMAND_VAR):
        return os.environ[COMMAND_VAR]
    first = sys.argv[0] if sys.argv else ""
    args = " ".join(sys.argv[1:])
    if first.endswith("headstart"):
        return f"headstart {args}"
    if launched() and first.endswith("__main__.py") and Path(first).parent.name == "headstart":
        return f"torchrun ... -m headstart {args}"
    return None


def launch(nproc: int, module_args: list[str], command: str | None = None) -> Failure | None:
    """Run ``python -m headstart MODULE_ARGS`` on ``nproc`` processes of this machine through
    torchrun's own entry point (``torch.distributed.run``, standalone rendezvous on a free
    local port), and wait. Returns None when every process succeeded, else the first failure
    (torchrun has stopped the others by then). Each process gets ``cores / nproc`` threads
    unless ``OMP_NUM_THREADS`` is set. ``command``: what the user typed, for the runs' records."""
    import logging
    import signal as signals

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # headstart reports failures itself: quiet torchrun's own log lines (each of its loggers
    # sets its level when created, so every one is set here, after the imports)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ[NPROC_VAR] = str(nproc)
    os.environ.setdefault(COMMAND_VAR, command or "")
    args = parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--module", "headstart", *module_args]
    )
    try:
        run(args)
    except SignalException as e:  # Ctrl-C or a kill sent to the launcher: workers stopped
        name = signals.Signals(e.sigval).name
        return Failure(rank=-1, exitcode=130 if e.sigval == signals.SIGINT else 1, signal=name)
    except ChildFailedError as e:
        return first_failure(e.failures)
    return None


def first_failure(failures: dict) -> Failure:
    """The failure to report among torchrun's (rank -> ProcessFailure): the cause, not its
    consequences. torchrun stops the surviving processes with SIGTERM once one fails, and a
    process whose peer went away fails too; so a process killed by another signal comes
    first, then one that exited with an error, then one torchrun stopped; the earliest within
    each. (torchrun's own ``get_first_failure`` orders by timestamp alone, and a killed
    process's timestamp is when the agent noticed it, which on a busy machine can come after
    its peers' failures.)"""
    import signal as signals

    def order(rank: int) -> tuple:
        code = failures[rank].exitcode
        stopped = code == -int(signals.SIGTERM)  # how torchrun stops the others
        return (stopped, code >= 0, failures[rank].timestamp, rank)

    rank = min(failures, key=order)
    failure = failures[rank]
    signal = failure.signal_name() if failure.exitcode < 0 else None
    return Failure(rank=rank, exitcode=failure.exitcode, signal=signal)


_RUN_DIR: list = []


def remember_run_dir(out) -> None:
    """The run directory this process trains into, for :func:`lost_peer_message`."""
    _RUN_DIR[:] = [out]


def lost_peer_message() -> str | None:
    """What a rank says when a collective failed because another rank went away, or None
    when it should stay quiet: ``--nproc``'s launcher reports the failure itself, and only
    rank 0 speaks under torchrun."""
    if os.environ.get(NPROC_VAR) or not speaks():
        return None
    return (
        "another process of this run stopped, so this one cannot go on (torchrun's report "
        "below names it)."
    )


def run_resume_hint() -> str | None:
    """The command that resumes the run this process trained into, once it can be resumed
    (its split is written); None before."""
    if _RUN_DIR and (Path(_RUN_DIR[0]) / "split.json").is_file():
        return resume_hint(_RUN_DIR[0])
    return None


def resume_hint(out) -> str:
    """The command that resumes ``out`` the way this process was started."""
    if not launched():
        return f"headstart train --resume {out}"
    if os.environ.get(NPROC_VAR):
        return f"headstart train --resume {out} --nproc {os.environ[NPROC_VAR]}"
    per_node, nodes = _machines()
    if nodes <= 1:
        return (
            f"torchrun --standalone --nproc-per-node {per_node} -m headstart train --resume {out}"
        )
    return (
        f"torchrun --nnodes {nodes} --nproc-per-node {per_node} --rdzv-backend c10d "
        f"--rdzv-endpoint HOST:PORT -m headstart train --resume {out}  (on every machine)"
    )
