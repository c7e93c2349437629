"""What every command shares: the app, its help's look, the arguments several commands take,
and the one place errors become one clear line (:func:`friendly`)."""

from __future__ import annotations

import functools
import os
import sys
from typing import Annotated

import typer
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from headstart.console import (
    console,
    message,
    path_line,
)
from headstart.core import distributed
from headstart.core.config import TrainConfig
from headstart.core.distributed import launched, speaks
from headstart.errors import HeadstartError
from headstart.notes import speaking
from headstart.progress import enabled


class QuietFlags:
    """Help without a type column for on/off flags (typer shows ``<bool>`` beside them)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class Command(QuietFlags, TyperCommand):
    pass


#: The commands in the order ``headstart --help`` lists them: the lesson's (look at the data,
#: train, continue, use the run), then the tools around it.
COMMAND_ORDER = (
    "inspect",
    "train",
    "finetune",
    "predict",
    "export",
    "serve",
    "backbones",
    "summary",
    "evaluate",
    "report",
    "compare",
    "advise",
)


class Group(QuietFlags, TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: rank.get(n, len(rank)))


app = typer.Typer(
    name="headstart",
    cls=Group,
    help="Adapt a pretrained network to your own labelled images or texts, fast and honestly "
    "evaluated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


DataArg = Annotated[
    str | None,
    typer.Argument(
        help="Images: a folder (class subfolders, train/ val/ test/ split folders, or "
        "train_images.npy arrays), a .csv of filename,label rows, or demo:digits / demo:lfw. "
        "Texts: a .csv/.tsv/.jsonl table with a text column, or class folders of .txt files.",
        show_default=False,
    ),
]


DemoOpt = Annotated[
    bool, typer.Option("--demo", help="Use the built-in demo data (scikit-learn's digits).")
]


# flags that are off by default have no --no-X form: the help keeps its width for the text
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an earlier headstart run in --out (atomically, once the new run is "
        "complete). A folder holding anything else is never written to.",
    ),
]


def friendly(fn):
    """Turn the project's errors into one clear line and exit code 2 (``--debug`` shows more).
    The command's notes (``logging``) are printed as ``note:`` lines by the process that
    speaks, and its steps show their progress."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with speaking(note if speaks() else None), enabled(True):
                return fn(*args, **kwargs)
        except HeadstartError as e:
            if os.environ.get("HEADSTART_DEBUG"):
                raise
            # plain Text: a message quoting a path like "img[1].png" is not markup; in a
            # distributed run rank 0 speaks (the ranks agree on errors before raising them)
            if speaks():
                console(stderr=True).print(message("error", str(e), "bold red"))
            raise typer.Exit(2) from None
        except Exception as e:
            debug = os.environ.get("HEADSTART_DEBUG")
            if launched() and not debug and distributed.is_peer_failure(e):  # a rank died
                said = distributed.lost_peer_message()
                if said:
                    err = console(stderr=True)
                    err.print(message("error", said, "bold red"))
                    hint = distributed.run_resume_hint()
                    if hint:
                        err.print("[yellow]resume with:[/]")
                        err.print(path_line(f"  {hint}"))
                raise typer.Exit(1) from None
            raise
        except KeyboardInterrupt as e:
            if not speaks():
                raise typer.Exit(130) from None
            err = console(stderr=True)
            if sys.stderr.isatty():
                sys.stderr.write("\n")  # below the progress bar the interrupt left behind
            out = getattr(e, "out", None)
            if out:
                err.print("[yellow]interrupted; resume with:[/]")
                err.print(path_line(f"  {distributed.resume_hint(out)}"))
            else:
                err.print(Text(str(e) or "interrupted", style="yellow"))
            raise typer.Exit(130) from None

    return wrapper


def data_location(data: str | None, demo: bool) -> str:
    if demo and data is not None:
        raise HeadstartError(
            f"give a DATA location or --demo, not both (got {data!r} and --demo); "
            "demo:lfw names the other built-in data set."
        )
    if demo:
        return "demo:digits"
    if data is None:
        raise HeadstartError("give a DATA location, or --demo for the built-in digits data.")
    return data


def print_version(value: bool) -> None:
    if value:
        from headstart import __version__

        typer.echo(f"headstart {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    if debug:
        os.environ["HEADSTART_DEBUG"] = "1"
    if launched() and ctx.invoked_subcommand != "train":
        if speaks():
            console(stderr=True).print(
                message(
                    "error",
                    f"headstart {ctx.invoked_subcommand} runs in one process; under torchrun "
                    "only `headstart train` runs on several. Start it without torchrun.",
                    "bold red",
                )
            )
        raise typer.Exit(2)


def given_flags(ctx: typer.Context) -> set[str]:
    """Parameters the user typed (not defaults)."""
    return {
        name
        for name in ctx.params
        if (src := ctx.get_parameter_source(name)) is not None and src.name == "COMMANDLINE"
    }


def flags(names) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def with_changes(cfg: TrainConfig, changes: dict) -> TrainConfig:
    from dataclasses import replace

    return replace(cfg, **changes) if changes else cfg


def note(text: str) -> None:
    console(stderr=True).print(message("note", text, "yellow"))


def one_class_each(source, command: str) -> None:
    """Refuse multi-label data where a command ranks by accuracy (compare, advise)."""
    if getattr(source.train.labels, "ndim", 1) == 2:
        raise HeadstartError(
            f"{command} ranks backbones by accuracy, one class per example; this data has "
            "several labels per example. Train each backbone (headstart train --backbone NAME, "
            "or --strategy auto) and compare the runs with headstart evaluate RUN --compare "
            "OTHER_RUN (paired micro-F1)."
        )


def run_splits_of(run):
    from headstart.core.overlap import run_splits

    return None if run.config.data is None else run_splits(run)
