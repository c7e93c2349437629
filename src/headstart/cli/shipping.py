"""The commands that use a run elsewhere: ``predict``, ``export``, ``serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from headstart.choices import (
    ENGINES,
    SERVE_MAX_BATCH,
    SERVE_MAX_BYTES,
    SERVE_MAX_FILES,
    SERVE_MAX_WAIT_MS,
)
from headstart.cli.base import (
    Command,
    app,
    friendly,
)
from headstart.console import (
    console,
    message,
    path_line,
    render_export,
    render_predictions,
)
from headstart.errors import HeadstartError
from headstart.io import atomic_write_text


@app.command(cls=Command)
@friendly
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
    preds = _predictions(run, engine, inputs, text_column, batch_size)
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


def _predictions(run, engine: str, inputs: list[Path], text_column, batch_size: int):
    """The run's (or its export's) predictions for the inputs, as its kind of data reads
    them (a text run's tables by ``text_column``, else the run's own column)."""
    if run.modality != "text":
        from headstart.modalities.image.predict import predict_inputs

        return predict_inputs(run, inputs, batch_size=batch_size)
    from headstart.modalities.text.predict import predict_text_inputs

    if engine == "onnx":
        default_column = run.meta["client"].get("text_column", "text")
    else:
        default_column = run.config.text_column
    return predict_text_inputs(
        run,
        [str(i) for i in inputs],
        text_column=text_column or default_column,
        batch_size=batch_size,
    )


@app.command(cls=Command)
@friendly
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


@app.command(cls=Command)
@friendly
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
