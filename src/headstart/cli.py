"""The ``headstart`` command line: parse, call the Python API, print. No logic lives here."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from headstart.console import console, render_inspection
from headstart.errors import HeadstartError
from headstart.io import atomic_write_json

app = typer.Typer(
    name="headstart",
    help="Adapt a pretrained network to your own labelled images, fast and honestly evaluated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataArg = Annotated[
    str | None,
    typer.Argument(
        help="A folder (class subfolders, train/ val/ test/ split folders, or train_images.npy "
        "arrays), a .csv of filename,label rows, or demo:digits / demo:lfw.",
        show_default=False,
    ),
]
DemoOpt = Annotated[
    bool, typer.Option("--demo", help="Use the built-in demo data (scikit-learn's digits).")
]
ValSplitOpt = Annotated[
    float, typer.Option(help="Fraction of train held out for validation when the data has none.")
]
TestSplitOpt = Annotated[
    float, typer.Option(help="Fraction of train held out as a test set when the data has none.")
]
SeedOpt = Annotated[int, typer.Option(help="Seed for splits (and, in training, everything else).")]
FilenameColOpt = Annotated[str, typer.Option(help="CSV column holding image paths.")]
LabelColOpt = Annotated[str, typer.Option(help="CSV column holding labels.")]


def _friendly(fn):
    """Turn the project's errors into one clear line and exit code 2 (``--debug`` shows more)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HeadstartError as e:
            if os.environ.get("HEADSTART_DEBUG"):
                raise
            console(stderr=True).print(f"[bold red]error:[/] {e}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console(stderr=True).print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def _data_location(data: str | None, demo: bool) -> str:
    if demo:
        return "demo:digits"
    if data is None:
        raise HeadstartError("give a DATA location, or --demo for the built-in digits data.")
    return data


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
) -> None:
    if debug:
        os.environ["HEADSTART_DEBUG"] = "1"


@app.command()
@_friendly
def inspect(
    data: DataArg = None,
    demo: DemoOpt = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    val_split: ValSplitOpt = 0.2,
    test_split: TestSplitOpt = 0.0,
    seed: SeedOpt = 0,
    filename_column: FilenameColOpt = "filename",
    label_column: LabelColOpt = "label",
    workers: Annotated[int, typer.Option(help="Threads decoding images.")] = 4,
) -> None:
    """Check a dataset before training: counts, sizes, baseline, corrupt files, duplicates."""
    from headstart.data import inspect_source, load_source

    source = load_source(
        _data_location(data, demo), filename_column=filename_column, label_column=label_column
    )
    report = inspect_source(
        source,
        val_split=val_split,
        test_split=test_split,
        seed=seed,
        workers=workers,
        progress=sys.stderr.isatty(),
    )
    console().print(render_inspection(report))
    if json_out is not None:
        atomic_write_json(json_out, report.to_dict())
        console().print(f"wrote {json_out}")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
