"""The ``headstart`` command line: parse, call the Python API, print. No logic lives here."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from headstart.choices import (
    BACKBONE_SEP,
    CONTINUATIONS,
    DEFAULT_IMAGE_POOLING,
    ENGINES,
    SERVE_MAX_BATCH,
    SERVE_MAX_BYTES,
    SERVE_MAX_FILES,
    SERVE_MAX_WAIT_MS,
)
from headstart.console import (
    console,
    message,
    path_line,
    render_advice,
    render_backbones,
    render_evaluation,
    render_export,
    render_inspection,
    render_leaderboard,
    render_predictions,
    render_run,
    render_summary,
)
from headstart.core import distributed
from headstart.core.config import TrainConfig
from headstart.core.distributed import launched, speaks
from headstart.errors import HeadstartError
from headstart.io import atomic_write_json, atomic_write_text
from headstart.modalities.image.backbones.aliases import DEFAULT_BACKBONE
from headstart.notes import speaking
from headstart.options import (
    FINETUNE_SETTINGS,
    LESSON,
    READING_SETTINGS,
    TRAIN_SETTINGS,
    settings_options,
)
from headstart.progress import enabled


class _QuietFlags:
    """Help without a type column for on/off flags (typer shows ``<bool>`` beside them)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class _Command(_QuietFlags, TyperCommand):
    pass


class _Group(_QuietFlags, TyperGroup):
    pass


app = typer.Typer(
    name="headstart",
    cls=_Group,
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


def _friendly(fn):
    """Turn the project's errors into one clear line and exit code 2 (``--debug`` shows more).
    The command's notes (``logging``) are printed as ``note:`` lines by the process that
    speaks, and its steps show their progress."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with speaking(_note if speaks() else None), enabled(True):
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


def _data_location(data: str | None, demo: bool) -> str:
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


def _version(value: bool) -> None:
    if value:
        from headstart import __version__

        typer.echo(f"headstart {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
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


@app.command(cls=_Command)
@_friendly
@settings_options(*READING_SETTINGS, "val_split", "test_split", "seed", "max_length")
def inspect(
    data: DataArg = None,
    demo: DemoOpt = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    backbone: Annotated[
        str | None,
        typer.Option(help="Text: the encoder whose tokens are counted (default: minilm)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Threads decoding images.")] = 4,
    *,
    settings: dict,
) -> None:
    """Check a dataset before training: counts, sizes or lengths, baseline, duplicates."""
    from headstart.core.data import inspect_source, load_source

    reading = TrainConfig(**{k: settings[k] for k in READING_SETTINGS})
    source = load_source(
        _data_location(data, demo),
        modality=reading.modality,
        filename_column=reading.filename_column,
        label_column=reading.label_column,
        text_column=reading.text_column,
        labels=reading.label_format(),
    )
    options = {"workers": workers}
    max_length = settings["max_length"]
    if getattr(source.train, "modality", "image") == "text":
        from headstart.core.checks import check_networks
        from headstart.modalities.text.names import DEFAULT_TEXT_ENCODER

        if backbone is not None:  # a mistyped encoder, before transformers loads
            check_networks([backbone], "text")
        options = {"encoder": backbone or DEFAULT_TEXT_ENCODER, "max_length": max_length}
    elif backbone is not None or max_length is not None:
        raise HeadstartError("--backbone and --max-length: inspect uses them for text data only.")
    report = inspect_source(
        source,
        val_split=settings["val_split"],
        test_split=settings["test_split"],
        seed=settings["seed"],
        **options,
    )
    console().print(render_inspection(report))
    if json_out is not None:
        atomic_write_json(json_out, report.to_dict())
        console().print(path_line(f"wrote {json_out}"))


# flags that are off by default have no --no-X form: the help keeps its width for the text
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an earlier headstart run in --out (atomically, once the new run is "
        "complete). A folder holding anything else is never written to.",
    ),
]


@app.command(cls=_Command)
@_friendly
@settings_options(*TRAIN_SETTINGS)
def train(
    ctx: typer.Context,
    data: DataArg = None,
    demo: DemoOpt = False,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/DATE-BACKBONE-STRATEGY).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Replay a run: its RUN_DIR or RUN_DIR/config.json; flags given beside it "
            "change those settings."
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Finish an interrupted run (Ctrl-C, a crash) from its last checkpoint; "
            "only --device, --workers and --nproc may change."
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    nproc: Annotated[
        str | None,
        typer.Option(
            help="Train on N processes of this machine, started by torchrun (PyTorch's "
            "launcher): CPU processes on gloo, GPUs on NCCL; auto: one per GPU. "
            "--batch-size stays the global batch. Several machines: torchrun (README)."
        ),
    ] = None,
    *,
    settings: dict,
) -> None:
    """Train a classifier on a pretrained backbone: frozen (default) or fine-tuned.

    The frozen part runs once per image and is cached; each epoch runs only what trains.
    """
    _nproc_asked(nproc)  # a mistyped --nproc is answered before torch loads
    given = _given(ctx)
    settings["data"] = _data_location(data, demo) if (data is not None or demo) else None
    if resume is not None:
        # a resumed run must finish as the uninterrupted one would: only where it runs may change
        changed = sorted(given - {"resume", "device", "workers", "overwrite", "nproc"})
        if changed:
            raise HeadstartError(
                f"--resume finishes {resume} with its recorded configuration; "
                f"{_flags(changed)} would change it. Drop {'them' if len(changed) > 1 else 'it'}, "
                "or start a new run with --config RUN_DIR and the changes."
            )
        cfg = TrainConfig.from_file(resume)
        cfg = _with(cfg, {k: settings[k] for k in given & {"device", "workers"}})
        out = resume
    elif config is not None:
        # replay a recorded configuration; every flag given beside it changes that setting
        cfg = TrainConfig.from_file(config)
        overrides = {k: settings[k] for k in given & settings.keys()}
        if settings["data"] is not None:
            overrides["data"] = settings["data"]
        cfg = _with(cfg, overrides)
    else:
        settings["data"] = _data_location(data, demo)
        cfg = TrainConfig(**settings)
    # options, names, weights, the data and --out are checked before torch loads
    from headstart.core.checks import ready_to_train
    from headstart.core.rundir import check_out

    source = ready_to_train(cfg)
    if out is not None and resume is None:
        check_out(out, overwrite=overwrite)
    from headstart.api import train as train_run

    if nproc is not None or distributed.launched():
        group = _distributed_start(cfg, nproc, out if resume is None else resume)
        if group is None:  # this process launched the others, which have finished
            return
    if cfg.backbone == "auto" or cfg.strategy == "auto":
        from headstart.core.advise import train_auto

        run = train_auto(cfg, data=source, out=out, overwrite=overwrite)
    else:
        run = train_run(
            cfg,
            data=source,
            out=out,
            resume=resume is not None,
            say=None,  # (said by the command's handler)
            overwrite=overwrite,
        )
    if speaks():
        console().print(render_run(run))


def _distributed_start(cfg: TrainConfig, nproc: str | None, out: Path | None):
    """``--nproc N``: start N processes through torchrun and report how they ended (returns
    None). In a process torchrun started: join the group and return it."""
    from headstart.core.config import resolve_device

    auto = cfg.backbone == "auto" or cfg.strategy == "auto"
    if distributed.launched():
        if nproc is not None:
            raise HeadstartError(
                "--nproc starts torchrun itself; under torchrun leave it out "
                "(torchrun's --nproc-per-node says how many processes)."
            )
        if auto:
            raise HeadstartError(distributed.AUTO_SINGLE_PROCESS)
        return distributed.init(resolve_device(cfg.device))
    n = _nproc_count(nproc, resolve_device(cfg.device))
    if n == 1:
        return distributed.SINGLE
    if auto:
        raise HeadstartError(distributed.AUTO_SINGLE_PROCESS)
    if out is None:  # every process and the final message must name the same folder
        from headstart.core.training import default_run_dir, for_data

        out = default_run_dir(for_data(cfg))  # named as one process would name it
    args = _without_nproc(sys.argv[1:])
    named = {a.split("=", 1)[0] for a in args}
    if not named & {"--out", "--resume"}:
        args += ["--out", str(out)]
    failure = distributed.launch(n, args, command=" ".join(["headstart", *sys.argv[1:]]))
    if failure is None:
        return None
    if failure.exitcode in (2, 130):  # rank 0 has said what happened and what to do
        raise typer.Exit(failure.exitcode)
    err = console(stderr=True)
    what = (
        f"{failure.describe()}, and torchrun stopped its {n} processes."
        if failure.rank < 0
        else f"process {failure.rank} of {n} {failure.describe()}, and torchrun stopped the "
        "others with it."
    )
    err.print(message("error", what, "bold red"))
    if (out / "split.json").is_file():
        err.print("[yellow]the run directory is resumable; resume with:[/]")
        err.print(path_line(f"  headstart train --resume {out} --nproc {n}"))
    else:
        err.print(Text("nothing to resume yet: run the same command again.", style="yellow"))
    raise typer.Exit(1)


def _one_class_each(source, command: str) -> None:
    """Refuse multi-label data where a command ranks by accuracy (compare, advise)."""
    if getattr(source.train.labels, "ndim", 1) == 2:
        raise HeadstartError(
            f"{command} ranks backbones by accuracy, one class per example; this data has "
            "several labels per example. Train each backbone (headstart train --backbone NAME, "
            "or --strategy auto) and compare the runs with headstart evaluate RUN --compare "
            "OTHER_RUN (paired micro-F1)."
        )


def _nproc_asked(text: str | None) -> int | str | None:
    """--nproc as given: a number of at least 1, "auto", or None; checked before torch loads."""
    if text is None or text.strip().lower() == "auto":
        return text and "auto"
    try:
        n = int(text)
    except ValueError:
        raise HeadstartError(
            f"--nproc must be a number of processes or auto; got {text!r}."
        ) from None
    if n < 1:
        raise HeadstartError(f"--nproc must be at least 1; got {n}.")
    return n


def _nproc_count(text: str | None, device: str) -> int:
    import torch

    asked = _nproc_asked(text)
    gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    if asked is None:
        return 1
    if asked == "auto":
        if not gpus:
            raise HeadstartError(
                "--nproc auto starts one process per GPU, and none is in use here; "
                "give a number (--nproc 2) for CPU processes."
            )
        return gpus
    if gpus and asked > gpus:
        raise HeadstartError(
            f"--nproc {asked} on {gpus} GPU(s): each process trains on a GPU of its own; "
            f"use --nproc {gpus} or fewer (or --device cpu)."
        )
    cores = os.cpu_count() or 1
    if not gpus and asked > cores:
        _note(
            f"{asked} processes on {cores} CPU cores: they share the cores, so expect no "
            f"speed-up beyond --nproc {cores}."
        )
    return asked


def _without_nproc(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _given(ctx: typer.Context) -> set[str]:
    """Parameters the user typed (not defaults)."""
    return {
        name
        for name in ctx.params
        if (src := ctx.get_parameter_source(name)) is not None and src.name == "COMMANDLINE"
    }


def _flags(names) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def _with(cfg: TrainConfig, changes: dict) -> TrainConfig:
    from dataclasses import replace

    return replace(cfg, **changes) if changes else cfg


def _note(text: str) -> None:
    console(stderr=True).print(message("note", text, "yellow"))


@app.command(cls=_Command)
@_friendly
@settings_options(
    *FINETUNE_SETTINGS,
    helps={
        "strategy": "How to continue: fine-tune (last --unfreeze N stages), freeze-first (all "
        "but the first --layers K blocks) or full (everything)."
    },
    defaults={"strategy": CONTINUATIONS[0]},
)
def finetune(
    run_dir: Annotated[Path, typer.Argument(help="A saved run to continue (usually frozen).")],
    out: Annotated[Path | None, typer.Option(help="The new run's directory.")] = None,
    overwrite: OverwriteOpt = False,
    *,
    settings: dict,
) -> None:
    """Second stage of the lesson: continue RUN_DIR with the top of the backbone unfrozen.

    The head's trained weights are kept, the new run records its parent, and its report
    plots both histories (Frozen vs Finetuned). The continuation is fitted by the options
    given here, its recipe filling the rest (not the parent's epochs, rates or schedule).
    """
    from dataclasses import replace

    from headstart.core.checks import run_config
    from headstart.core.rundir import check_out

    strategy = settings["strategy"]
    if strategy not in CONTINUATIONS:
        raise HeadstartError(
            f"--strategy must be one of {', '.join(CONTINUATIONS)} to continue a run; "
            f"got {strategy!r}."
        )
    # the run, the options and --out are checked before torch loads
    recorded = run_config(run_dir)
    if BACKBONE_SEP in recorded.backbone:
        first = recorded.backbone.split(BACKBONE_SEP)[0]
        raise HeadstartError(
            f"{run_dir} reads backbones side by side ({recorded.backbone}), frozen whole: it "
            f"cannot be fine-tuned. Fine-tune one of them: train it alone (--backbone {first}), "
            "then finetune that run."
        )
    if recorded.features == "multi":
        raise HeadstartError(
            f"{run_dir}: its head reads features from every depth (--features multi), which "
            "a fine-tuned backbone does not produce. Continue a run trained on the last "
            "features (--features last, the default)."
        )
    if recorded.data is None:
        raise HeadstartError(f"{run_dir}: trained on in-memory arrays; continue it in Python.")
    cfg = replace(recorded, **settings, parent=str(run_dir))
    out = out or run_dir.with_name(f"{run_dir.name}-{strategy}")
    check_out(out, overwrite=overwrite)
    from headstart.api import train as train_run
    from headstart.core.overlap import run_splits
    from headstart.core.runs import load_run

    parent = load_run(run_dir)
    splits = run_splits(parent)  # exactly the parent's images: the comparison is paired
    run = train_run(
        cfg,
        data=splits,
        out=out,
        say=None,  # (said by the command's handler)
        overwrite=overwrite,
    )
    console().print(render_run(run))


@app.command(cls=_Command)
@_friendly
def predict(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run directory written by headstart train (or, with --engine onnx, a "
            "model.onnx written by headstart export)."
        ),
    ],
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, folders of images, or .npy arrays; for a text run, .txt "
            "files, folders of them, a CSV/TSV/JSONL table (its text column), or - "
            "(standard input, one text per line)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write predictions as CSV here: a new file, or a predictions CSV headstart "
            "wrote (any other file is left alone, and the command stops)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 32,
    text_column: Annotated[
        str | None,
        typer.Option(
            help="Text run, table input: the column holding the texts (default: the run's)."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="torch: the saved run; onnx: its export (headstart export) through ONNX "
            "Runtime, without PyTorch (pip install 'headstart\\[onnx]')."
        ),
    ] = ENGINES[0],
) -> None:
    """Predict labels and class probabilities with a saved run."""
    from headstart.core.checks import check_predict_inputs, check_predictions_out
    from headstart.deploy.onnx_model import check_engine_target, load_engine

    check_engine_target(run_dir, engine)  # before torch loads: a run, or an export
    check_predict_inputs(inputs)
    if out is not None:
        check_predictions_out(out, inputs)
    from headstart.core.predictions import predictions_csv, rows_said

    run = load_engine(run_dir, engine)
    modality = run.modality
    if engine == "onnx":
        default_column = run.meta["client"].get("text_column", "text")
    else:
        default_column = run.config.text_column
    if modality == "text":
        from headstart.modalities.text.predict import predict_text_inputs

        column = text_column or default_column
        preds = predict_text_inputs(
            run, [str(i) for i in inputs], text_column=column, batch_size=batch_size
        )
    else:
        from headstart.modalities.image.predict import predict_inputs

        preds = predict_inputs(run, inputs, batch_size=batch_size)
    cost = run.meta.get("cost") if engine == "onnx" else run.cost_note()
    if cost:  # an ensemble: what an example costs against one member, said once
        console(stderr=True).print(message("model", cost, "cyan"))
    text = predictions_csv(preds, run.class_names)
    if out is not None:
        atomic_write_text(out, text)
        console().print(path_line(f"wrote {rows_said(preds)} to {out}"))
    else:
        multi = getattr(run, "thresholds", None) is not None
        console().print(render_predictions(preds, label_names=run.class_names if multi else None))
    failed = [p for p in preds if p.error]
    if failed:
        err = console(stderr=True)
        err.print(Text(f"{len(failed)} input(s) could not be read:", style="yellow"))
        for p in failed[:20]:
            err.print(path_line(f"  {p.input}  ({p.error})"))


@app.command(cls=_Command)
@_friendly
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by headstart train.")],
    out: Annotated[
        Path | None,
        typer.Option(help="The .onnx file to write (default: RUN_DIR/onnx/model.onnx)."),
    ] = None,
    format: Annotated[str, typer.Option(help="onnx (the only format).")] = "onnx",
) -> None:
    """Export a run to ONNX, checked by ONNX Runtime against PyTorch before it is written."""
    if format != "onnx":
        raise HeadstartError(f"--format {format}: only onnx is supported.")
    from headstart.deploy.export import check_export, export_onnx

    check_export(run_dir, out)  # the run and --out, before torch loads
    from headstart.deploy.onnx_model import DEFAULT_EXPORT

    err = console(stderr=True)
    meta = export_onnx(run_dir, out, say=lambda m: err.print(Text(m, "dim")))
    console().print(render_export(meta))
    folder = (out if out is not None else run_dir / DEFAULT_EXPORT).parent
    console().print(Text("files to ship together:"))
    for name in meta["files"]:
        console().print(path_line(f"  {folder / name}"))


@app.command(cls=_Command)
@_friendly
def serve(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run directory (or, with --engine onnx, a model.onnx from headstart export)."
        ),
    ],
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. 127.0.0.1: this machine only; 0.0.0.0 opens it to "
            "the network (put a reverse proxy with TLS in front)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    engine: Annotated[
        str, typer.Option(help="torch: the saved run; onnx: its ONNX export (no PyTorch).")
    ] = ENGINES[0],
    max_batch: Annotated[
        int,
        typer.Option(
            help="Most examples in one forward pass (requests share passes); 8 suits a CPU, "
            "raise it on a GPU."
        ),
    ] = SERVE_MAX_BATCH,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a forward pass waits for more requests to join.")
    ] = SERVE_MAX_WAIT_MS,
    batching: Annotated[
        bool,
        typer.Option(help="Batch concurrent requests together (--no-batching: one pass each)."),
    ] = True,
    max_bytes: Annotated[
        str, typer.Option(help="Largest image or text accepted, e.g. 8MB.")
    ] = SERVE_MAX_BYTES,
    max_files: Annotated[int, typer.Option(help="Most inputs in one request.")] = SERVE_MAX_FILES,
) -> None:
    """Serve a run over HTTP: POST /predict, GET /health, GET /metadata (FastAPI + uvicorn)."""
    from headstart.core.config import parse_bytes
    from headstart.deploy.onnx_model import check_engine_target

    if not 0 < port < 65536:
        raise HeadstartError(f"--port {port}: give a TCP port between 1 and 65535.")
    if max_batch < 1 or max_files < 1 or max_wait_ms < 0:
        raise HeadstartError("--max-batch and --max-files must be at least 1, --max-wait-ms >= 0.")
    size = parse_bytes(max_bytes, "--max-bytes")
    if not size or size < 1:
        raise HeadstartError(f"--max-bytes {max_bytes!r}: give a size like 8MB.")
    check_engine_target(run_dir, engine)  # before FastAPI and torch load
    from headstart.deploy.serve import Limits
    from headstart.deploy.serve import serve as run_server

    limits = Limits(
        max_bytes=size,
        max_files=max_files,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        batching=batching,
    )
    err = console(stderr=True)
    run_server(
        run_dir,
        host=host,
        port=port,
        engine=engine,
        limits=limits,
        say=lambda m: err.print(path_line(m)),
    )


@app.command(cls=_Command)
@_friendly
def backbones(
    all_timm: Annotated[
        str | None, typer.Option("--search", help="Also list timm models matching a pattern.")
    ] = None,
) -> None:
    """List backbones: Keras names, timm names, parameters, input size, weight source."""
    from headstart.modalities.image.backbones.catalog import list_backbones

    console().print(render_backbones(list_backbones(all_timm)))


@app.command(cls=_Command)
@_friendly
@settings_options("head", "hidden")
def summary(
    ctx: typer.Context,
    backbone: Annotated[
        str,
        typer.Option(
            help="A Keras name (DenseNet121, MobileNetV2, ...), any timm model, or a text "
            "encoder (minilm, bert-base-uncased, a Hugging Face name or folder)."
        ),
    ] = DEFAULT_BACKBONE,
    classes: Annotated[int, typer.Option(help="Number of classes of your data.")] = 10,
    pooling: Annotated[
        str, typer.Option(help="Images: max or avg (a text encoder pools its own way).")
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
        ignored = sorted(_given(ctx) - {"run_dir"})
        if ignored:
            raise HeadstartError(
                f"--run summarises {run_dir} as it was trained; {_flags(ignored)} would not "
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


@app.command(cls=_Command)
@_friendly
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
            f"{_flags(sorted(columns))}: these name the columns of DATA and how its labels are "
            "read; without DATA the run's own test split is scored."
        )
    if data is not None:
        multi = run_is_multi_label(run_dir)
        task = settings["task"]
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
        report = write_report(run, evaluation=result, splits=_run_splits(run))
        console().print(path_line(f"wrote {run_dir}/evaluation.json and {report}"))
    else:
        atomic_write_json(run_dir / "evaluation_external.json", result)
        console().print(path_line(f"wrote {run_dir}/evaluation_external.json"))


def _run_splits(run):
    from headstart.core.overlap import run_splits

    return None if run.config.data is None else run_splits(run)


@app.command(cls=_Command)
@_friendly
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """(Re)write RUN_DIR/report.html: a self-contained page with every figure and table."""
    import json as _json

    from headstart.core.rundir import check_run_dir

    check_run_dir(run_dir)  # before torch loads
    from headstart.core.evaluate import evaluate_run
    from headstart.core.report import write_report
    from headstart.core.runs import load_run

    run = load_run(run_dir)
    splits = _run_splits(run)
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


@app.command(cls=_Command)
@_friendly
@settings_options(
    "weights",
    "image_size",
    "epochs",
    "val_split",
    "seed",
    "label_column",
    "text_column",
    "modality",
    "max_length",
    helps={
        "image_size": "Input size for every backbone.",
        "epochs": f"Maximum epochs (default: {LESSON.epochs}).",
    },
)
def compare(
    data: DataArg = None,
    demo: DemoOpt = False,
    backbones: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated backbones, e.g. MobileNetV2,DenseNet121 (those two need "
            "the internet once), or text encoders, e.g. minilm,bert-base-uncased. Default: "
            "every network whose weights are available offline (EfficientNet-Lite0/1/2 and "
            "MiniLM in the base install).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs and the leaderboard.")] = Path(
        "runs/compare"
    ),
    overwrite: OverwriteOpt = False,
    *,
    settings: dict,
) -> None:
    """Train the frozen model for each backbone on the same split and rank them."""
    from headstart.core.checks import (
        check_networks,
        check_weights,
        data_modality,
        source_for,
        split_names,
    )

    names = split_names(backbones, "--backbones") if backbones is not None else None
    location = _data_location(data, demo)
    columns = {k: settings[k] for k in ("label_column", "text_column")}
    modality = data_modality(location, settings["modality"], **columns)
    cfg = TrainConfig(data=location, **{**settings, "modality": modality})
    if names is not None:  # the names, the weights and the data, before torch loads
        check_networks(names, modality)
    check_weights(cfg.weights)
    _one_class_each(source_for(cfg, modality), "compare")
    from headstart.core.compare import compare_backbones

    if names is None:
        from headstart.core.extractors import available_encoders

        names = available_encoders(modality)
        _note(f"comparing every {modality} network with offline weights: {', '.join(names)}")
    result = compare_backbones(cfg, names, out, overwrite=overwrite)
    console().print(render_leaderboard(result))
    console().print(path_line(f"wrote {out}/leaderboard.json and {result['report']}"))


@app.command(cls=_Command)
@_friendly
@settings_options(
    "image_size",
    "pooling",
    "weights",
    "val_split",
    "seed",
    "label_column",
    "text_column",
    "modality",
    "max_length",
    helps={"image_size": "Input size for every candidate."},
)
def advise(
    data: DataArg = None,
    demo: DemoOpt = False,
    candidates: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated backbones to rank (name or name@size; "
            "name:random for a random-weight control; default: every backbone whose "
            "weights are available offline)."
        ),
    ] = None,
    rank_by: Annotated[str, typer.Option(help="logme, probe or knn.")] = "logme",
    out: Annotated[
        Path | None, typer.Option(help="Write advice.json and advice.html here.")
    ] = None,
    *,
    settings: dict,
) -> None:
    """Which backbone, and how much of it to retrain, from your data, before training.

    Without --candidates: every network of the data's kind with offline weights, and the
    first one with random weights as a control (what the pretrained weights are worth)."""
    from headstart.choices import RANK_BY
    from headstart.core.checks import (
        check_candidates,
        check_weights,
        data_modality,
        parse_candidate,
        split_names,
    )
    from headstart.core.data import load_data, load_source

    # the options, the names, the weights and the data, before torch loads
    if rank_by not in RANK_BY:
        raise HeadstartError(f"--rank-by must be one of {', '.join(RANK_BY)}; got {rank_by!r}.")
    names = split_names(candidates) if candidates is not None else None
    if names and all(parse_candidate(n)[2] for n in names):
        raise HeadstartError("--candidates: every candidate is a random-weight control.")
    location = _data_location(data, demo)
    columns = {k: settings[k] for k in ("label_column", "text_column")}
    kind = data_modality(location, settings["modality"], **columns)
    if names:
        check_candidates(names, kind)
    check_weights(settings["weights"])
    cfg = TrainConfig(**{**settings, "modality": kind})
    pooling = cfg.for_modality(kind).pooling  # (refused when wrong for the data)
    source = load_source(location, modality=kind, **columns)
    _one_class_each(source, "advise")
    splits = load_data(source, val_split=cfg.val_split, seed=cfg.seed)
    from headstart.core.advise import advise as advise_strategy
    from headstart.core.advise import rank_backbones
    from headstart.core.extractors import available_encoders
    from headstart.core.report import advice_page

    if names is None:
        names = available_encoders(splits.train.modality)
        names += [f"{names[0]}:random"] if names else []
    reading = {
        "image_size": cfg.image_size,
        "pooling": pooling,
        "weights": cfg.weights,
        "max_length": cfg.max_length,
    }
    ranking = rank_backbones(splits, names, rank_by=rank_by, **reading)
    best = next((r for r in ranking if not r["random"]), None)
    if best is None:
        raise HeadstartError("--candidates: every candidate is a random-weight control.")
    advice = advise_strategy(splits, best["timm_name"], **reading)
    decisions = {"ranking": ranking, "advice": advice.to_dict(), "noun": splits.train.noun}
    console().print(render_advice(decisions))
    if out is not None:
        atomic_write_json(out / "advice.json", decisions)
        atomic_write_text(out / "advice.html", advice_page(decisions, location))
        console().print(path_line(f"wrote {out}/advice.json and {out}/advice.html"))


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
