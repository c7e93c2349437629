"""``headstart train`` and ``headstart finetune``, and starting several processes (``--nproc``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from headstart.choices import (
    BACKBONE_SEP,
    CONTINUATIONS,
)
from headstart.cli.base import (
    Command,
    DataArg,
    DemoOpt,
    OverwriteOpt,
    app,
    data_location,
    flags,
    friendly,
    given_flags,
    note,
    with_changes,
)
from headstart.cli.options import (
    FINETUNE_KEPT,
    FINETUNE_SETTINGS,
    PANELS,
    TRAIN_SETTINGS,
    settings_options,
)
from headstart.console import (
    console,
    message,
    path_line,
    render_run,
)
from headstart.core import distributed
from headstart.core.config import TrainConfig
from headstart.core.distributed import speaks
from headstart.errors import HeadstartError


@app.command(cls=Command)
@friendly
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
            "--batch-size stays the global batch. Several machines: torchrun (README).",
            rich_help_panel=PANELS["run"],
        ),
    ] = None,
    *,
    settings: dict,
) -> None:
    """Train a classifier on a pretrained backbone: frozen (default) or fine-tuned.

    The frozen part runs once per image and is cached; each epoch runs only what trains.
    """
    _nproc_asked(nproc)  # a mistyped --nproc is answered before torch loads
    given = given_flags(ctx)
    settings["data"] = data_location(data, demo) if (data is not None or demo) else None
    cfg = _train_config(settings, given, resume, config)
    out = resume if resume is not None else out
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


def _train_config(settings: dict, given: set[str], resume: Path | None, config: Path | None):
    """The run's configuration: a resumed run's as recorded (only where it runs may change),
    a replayed one's with the flags given beside it, or the settings as given."""
    if resume is not None:
        # a resumed run must finish as the uninterrupted one would: only where it runs may change
        changed = sorted(given - {"resume", "device", "workers", "overwrite", "nproc"})
        if changed:
            raise HeadstartError(
                f"--resume finishes {resume} with its recorded configuration; "
                f"{flags(changed)} would change it. Drop {'them' if len(changed) > 1 else 'it'}, "
                "or start a new run with --config RUN_DIR and the changes."
            )
        cfg = TrainConfig.from_file(resume)
        return with_changes(cfg, {k: settings[k] for k in given & {"device", "workers"}})
    if config is not None:
        # replay a recorded configuration; every flag given beside it changes that setting
        cfg = TrainConfig.from_file(config)
        overrides = {k: settings[k] for k in given & settings.keys()}
        if settings["data"] is not None:
            overrides["data"] = settings["data"]
        return with_changes(cfg, overrides)
    if settings["data"] is None:
        settings["data"] = data_location(None, False)  # (refused: no data given)
    return TrainConfig(**settings)


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
        note(
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


@app.command(cls=Command)
@friendly
@settings_options(
    *FINETUNE_SETTINGS,
    helps={
        "strategy": "How to continue: fine-tune (last --unfreeze N stages), freeze-first (all "
        "but the first --layers K blocks) or full (everything)."
    },
    defaults={"strategy": CONTINUATIONS[0]},
)
def finetune(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A saved run to continue (usually frozen).")],
    out: Annotated[Path | None, typer.Option(help="The new run's directory.")] = None,
    overwrite: OverwriteOpt = False,
    *,
    settings: dict,
) -> None:
    """Second stage of the lesson: continue RUN_DIR with the top of the backbone unfrozen.

    The head's trained weights are kept, the new run records its parent, and its report
    plots both histories (Frozen vs Finetuned). The continuation is fitted by the options
    given here, its recipe filling the rest (not the parent's epochs, rates or schedule); its
    batch size, weight decay, label smoothing, flips, workers and cache dtype are the parent's
    unless given.
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
    given = given_flags(ctx)
    changes = {k: v for k, v in settings.items() if k not in FINETUNE_KEPT or k in given}
    cfg = replace(recorded, **changes, parent=str(run_dir))
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
