"""The commands about a saved run or a network: ``evaluate``, ``report``, ``summary``,
``backbones``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from headstart.choices import (
    DEFAULT_IMAGE_POOLING,
)
from headstart.cli.base import (
    Command,
    app,
    flags,
    friendly,
    given_flags,
    run_splits_of,
)
from headstart.cli.options import (
    PANELS,
    READING_SETTINGS,
    settings_options,
)
from headstart.console import (
    console,
    path_line,
    render_backbones,
    render_evaluation,
    render_summary,
)
from headstart.core.labels import LabelFormat
from headstart.errors import HeadstartError
from headstart.io import atomic_write_json
from headstart.modalities.image.backbones.aliases import DEFAULT_BACKBONE


@app.command(cls=Command)
@friendly
@settings_options(*READING_SETTINGS[1:], as_given="the run's", panel="How DATA is read")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    data: Annotated[
        str | None,
        typer.Argument(
            help="Labelled data to evaluate on (default: the run's test split, "
            "else its validation split).",
            show_default=False,
        ),
    ] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(help="Other runs to score on the same examples (repeat)."),
    ] = None,
    bootstrap: Annotated[
        int,
        typer.Option(
            min=1,
            help="Bootstrap resamples for the macro F1 interval (accuracy's is exact: "
            "Clopper-Pearson).",
        ),
    ] = 1000,
    *,
    settings: dict,
) -> None:
    """Metrics with 95% intervals, the majority baseline and other runs in one table."""

    from headstart.core.checks import run_config, run_is_multi_label, run_modality, source_for
    from headstart.core.rundir import check_run_dir

    for path in [run_dir, *(compare or [])]:  # the runs and the data, before torch loads
        check_run_dir(path)
    columns = {k: v for k, v in settings.items() if v is not None}
    if columns and data is None:
        raise HeadstartError(
            f"{flags(sorted(columns))}: these name the columns of DATA and how its labels are "
            "read; without DATA the run's own test split is scored."
        )
    if data is not None:
        multi = run_is_multi_label(run_dir)
        task = settings["task"]
        if task is not None:
            LabelFormat(task=task)  # a value that is no task is refused as such
        if task not in (None, "auto") and (task == "multi-label") != multi:
            raise HeadstartError(
                f"--task {task}: this run predicts {'several labels' if multi else 'one class'} "
                "per example, and evaluates data read that way; drop --task."
            )
        config = run_config(run_dir).reading(columns, multi)
        source_for(config, run_modality(run_dir), location=data)
    from headstart.core.evaluate import evaluate_run
    from headstart.core.modality import modality_of
    from headstart.core.report import write_report
    from headstart.core.runs import load_run

    run = load_run(run_dir)
    others = [load_run(p) for p in compare or []]
    result = evaluate_run(run, data, compare=others, n_boot=bootstrap, columns=columns)
    console().print(render_evaluation(result, modality_of(run).noun))
    if data is None:
        report = write_report(run, evaluation=result, splits=run_splits_of(run))
        console().print(path_line(f"wrote {run_dir}/evaluation.json and {report}"))
    else:
        atomic_write_json(run_dir / "evaluation_external.json", result)
        console().print(path_line(f"wrote {run_dir}/evaluation_external.json"))


@app.command(cls=Command)
@friendly
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """(Re)write RUN_DIR/report.html: a self-contained page with every figure and table."""
    import json as _json

    from headstart.core.rundir import check_run_dir

    check_run_dir(run_dir)  # before torch loads
    from headstart.core.evaluate import evaluate_run
    from headstart.core.report import write_report
    from headstart.core.runs import load_run

    run = load_run(run_dir)
    splits = run_splits_of(run)
    if splits is not None:
        # runs compared by an earlier `evaluate --compare` stay compared (when still there)
        earlier = {}
        if (run_dir / "evaluation.json").is_file():
            earlier = _json.loads((run_dir / "evaluation.json").read_text())
        compared = [
            load_run(r["run_dir"])
            for r in earlier.get("table", [])
            if r.get("kind") == "compared run" and r.get("run_dir") and Path(r["run_dir"]).is_dir()
        ]
        evaluation = evaluate_run(run, compare=compared)
    elif (run_dir / "evaluation.json").is_file():
        evaluation = _json.loads((run_dir / "evaluation.json").read_text())
    else:
        evaluation = None
    out = write_report(run, evaluation=evaluation, splits=splits)
    console().print(path_line(f"wrote {out}"))


@app.command(cls=Command)
@friendly
@settings_options("head", "hidden")
def summary(
    ctx: typer.Context,
    backbone: Annotated[
        str,
        typer.Option(
            help="A Keras name (DenseNet121, MobileNetV2, ...), any timm model, or a text "
            "encoder (minilm, bert-base-uncased, a Hugging Face name or folder).",
            rich_help_panel=PANELS["model"],
        ),
    ] = DEFAULT_BACKBONE,
    classes: Annotated[int, typer.Option(help="Number of classes of your data.")] = 10,
    pooling: Annotated[
        str,
        typer.Option(
            help="Images: max or avg (a text encoder pools its own way).",
            rich_help_panel=PANELS["model"],
        ),
    ] = DEFAULT_IMAGE_POOLING,
    run_dir: Annotated[Path | None, typer.Option("--run", help="Summarise a saved run.")] = None,
    *,
    settings: dict,
) -> None:
    """Parameter counts (total, trainable, frozen) of backbone + head, as Keras' summary."""
    from headstart.core.heads import HeadSpec
    from headstart.core.modality import modality_of_encoder
    from headstart.core.rundir import check_run_dir

    if run_dir is not None:
        ignored = sorted(given_flags(ctx) - {"run_dir"})
        if ignored:
            raise HeadstartError(
                f"--run summarises {run_dir} as it was trained; {flags(ignored)} would not "
                "apply. Drop them, or summarise a backbone without --run."
            )
        check_run_dir(run_dir)
    else:  # the name and the head, before torch loads
        modality_of_encoder(backbone).check_name(backbone)
        HeadSpec(settings["head"], settings["hidden"])
        if classes < 2:
            raise HeadstartError(f"--classes must be at least 2; got {classes}.")
    from headstart.core.catalog import model_summary

    console().print(
        render_summary(
            model_summary(
                backbone=backbone,
                n_classes=classes,
                pooling=pooling,
                run_dir=run_dir,
                **settings,
            )
        )
    )


@app.command(cls=Command)
@friendly
def backbones(
    all_timm: Annotated[
        str | None, typer.Option("--search", help="Also list timm models matching a pattern.")
    ] = None,
) -> None:
    """List backbones: Keras names, timm names, parameters, input size, weight source."""
    from headstart.modalities.image.backbones.catalog import list_backbones

    console().print(render_backbones(list_backbones(all_timm)))
