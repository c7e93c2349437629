"""The Python entry points that do what the commands do: training followed by the run's
report. The core's :func:`headstart.core.training.train` only trains and saves; reports are
written here, by the caller of training, as the command line does.

An entry point configures what the layers below it show, for the duration of the call: its
``progress`` sets :mod:`headstart.progress` (bars, or one line per step when piped), and its
``say`` receives headstart's notes through :func:`headstart.notes.speaking` (``print`` by
default, as in a notebook). A program that configured ``logging`` itself gets the notes as
records of the ``headstart`` loggers instead, printed once, by its own handlers."""

from __future__ import annotations

from pathlib import Path

from headstart.core import distributed
from headstart.core.config import TrainConfig
from headstart.core.report import write_run_report
from headstart.core.runs import Run, load_run
from headstart.core.training import train as train_only
from headstart.notes import speaking
from headstart.progress import enabled


def train(
    config: TrainConfig | None = None,
    /,
    *,
    data=None,
    out: str | Path | None = None,
    progress: bool | None = True,
    save: bool = True,
    report: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    say=print,
    **options,
) -> Run:
    """Train with ``config`` (defaults: the lesson's frozen recipe) and return the run.

    ``data`` overrides ``config.data`` (a folder, CSV, ``demo:NAME``, a data source from
    :func:`headstart.load_source` or ready splits). With ``save`` the run is written to
    ``out`` (a timestamped folder under ``runs/`` by default) and reloads with
    :func:`headstart.load_run`; with ``report`` too it also gets inspection.json,
    evaluation.json, plots/ and a self-contained report.html. ``resume`` continues an
    interrupted run in ``out`` from its last checkpoint; an ``out`` holding an earlier run is
    replaced only with ``overwrite``. Other keyword arguments (``max_seconds``, ``stop_after``)
    and the details: :func:`headstart.core.training.train`.

    ``progress``: bars (one line per step when piped); None: as the caller set it. ``say``:
    where the notes go while the call runs (``print``; None: only to ``logging``), unless the
    program already routes the ``headstart`` logger's records (see :mod:`headstart.notes`).

    Under ``torchrun`` (after :func:`headstart.core.distributed.init`), every process calls
    this; they train together, rank 0 writes the run and the report, and the process group
    ends with training.
    """
    with speaking(say), enabled(progress):
        group = distributed.current()
        run = train_only(
            config, data=data, out=out, save=save, resume=resume, overwrite=overwrite, **options
        )
        if group.distributed:
            # training is the distributed part; the report is rank 0's alone, in one process
            distributed.shutdown()
            if not group.is_main:
                return run
        if save and report:
            parent = load_run(run.parent) if run.parent else None
            write_run_report(run, parent=parent)
    return run
