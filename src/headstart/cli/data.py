"""The commands that read data before any run exists: ``inspect``, ``advise``, ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from headstart.cli.base import (
    Command,
    DataArg,
    DemoOpt,
    OverwriteOpt,
    app,
    data_location,
    friendly,
    note,
    one_class_each,
)
from headstart.cli.options import (
    LESSON,
    RANKING_SETTINGS,
    READING_SETTINGS,
    settings_options,
)
from headstart.console import (
    console,
    path_line,
    render_advice,
    render_inspection,
    render_leaderboard,
)
from headstart.core.config import TrainConfig
from headstart.errors import HeadstartError
from headstart.io import atomic_write_json, atomic_write_text


@app.command(cls=Command)
@friendly
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
        data_location(data, demo),
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


@app.command(cls=Command)
@friendly
@settings_options(
    *RANKING_SETTINGS,
    "epochs",
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
    location = data_location(data, demo)
    columns = {k: settings[k] for k in ("label_column", "text_column")}
    modality = data_modality(location, settings["modality"], **columns)
    cfg = TrainConfig(data=location, **{**settings, "modality": modality})
    if names is not None:  # the names, the weights and the data, before torch loads
        check_networks(names, modality)
    check_weights(cfg.weights)
    one_class_each(source_for(cfg, modality), "compare")
    from headstart.core.compare import compare_backbones

    if names is None:
        from headstart.core.extractors import available_encoders

        names = available_encoders(modality)
        note(f"comparing every {modality} network with offline weights: {', '.join(names)}")
    result = compare_backbones(cfg, names, out, overwrite=overwrite)
    console().print(render_leaderboard(result))
    console().print(path_line(f"wrote {out}/leaderboard.json and {result['report']}"))


@app.command(cls=Command)
@friendly
@settings_options(
    *RANKING_SETTINGS,
    "pooling",
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
    location = data_location(data, demo)
    columns = {k: settings[k] for k in ("label_column", "text_column")}
    kind = data_modality(location, settings["modality"], **columns)
    if names:
        check_candidates(names, kind)
    check_weights(settings["weights"])
    cfg = TrainConfig(**{**settings, "modality": kind})
    pooling = cfg.for_modality(kind).pooling  # (refused when wrong for the data)
    source = load_source(location, modality=kind, **columns)
    one_class_each(source, "advise")
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
