"""The Python entry points that do what the commands do: training followed by the run's
report. The core's :func:`headstart.pipeline.train` only trains and saves; reports are
written here, by the caller of training, as the command line does."""

from __future__ import annotations

from pathlib import Path

from headstart.config import TrainConfig
from headstart.pipeline import train as train_only
from headstart.report import write_run_report
from headstart.runs import Run, load_run


def train(
    config: TrainConfig | None = None,
    /,
    *,
    data=None,
    out: str | Path | None = None,
    progress: bool = True,
    save: bool = True,
    report: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    say=print,
    **options,
) -> Run:
    """Train with ``config`` (defaults: the lesson's frozen recipe) and return the run.

    ``data`` overrides ``config.data`` (a folder, CSV, ``demo:NAME``, a
    :class:`~headstart.data.DataSource` or ready splits). With ``save`` the run is written to
    ``out`` (a timestamped folder under ``runs/`` by default) and reloads with
    :func:`headstart.load_run`; with ``report`` too it also gets inspection.json,
    evaluation.json, plots/ and a self-contained report.html. ``resume`` continues an
    interrupted run in ``out`` from its last checkpoint; an ``out`` holding an earlier run is
    replaced only with ``overwrite``. Other keyword arguments (``max_seconds``, ``stop_after``)
    and the details: :func:`headstart.pipeline.train`.
    """
    run = train_only(
        config,
        data=data,
        out=out,
        progress=progress,
        save=save,
        resume=resume,
        overwrite=overwrite,
        say=say,
        **options,
    )
    if save and report:
        parent = load_run(run.parent) if run.parent else None
        write_run_report(run, parent=parent, progress=progress)
    return run
