"""What a command was given, checked before any heavy library loads.

Importing torch, timm or transformers takes seconds (10 s on a quiet two-core machine), so the
commands check their arguments first, with what costs milliseconds: option values (the
configuration), network names (against the alias tables and the list of timm's architectures,
read without importing timm), weight files, run directories (their JSON files), output folders
and the data itself (folder layout, classes, CSV header and rows, read by the data layer, which
imports neither). Each check raises the same error the work would have raised later, so a
mistake is answered at once, and nothing is printed or written for work that will not happen.
``bench/bench_cli_start.py`` measures it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from headstart.choices import BACKBONE_SEP
from headstart.core.config import TrainConfig
from headstart.core.data import detect_modality, load_source
from headstart.core.modality import modality
from headstart.core.rundir import check_run_dir, read_json
from headstart.errors import BackboneError, ConfigError, DataError, HeadstartError


def parse_candidate(text: str) -> tuple[str, int | None, bool]:
    """``name[@size][:random]``: e.g. ``tf_efficientnet_lite0@160``, or a random-weight
    control ``tf_efficientnet_lite0@96:random``."""
    text = text.strip()
    random = text.endswith(":random")
    name, _, size = text.removesuffix(":random").partition("@")
    try:
        return name.strip(), int(size) if size else None, random
    except ValueError:
        raise ConfigError(
            f"candidate {text!r}: write NAME, NAME@SIZE or NAME@SIZE:random."
        ) from None


def check_networks(names, kind: str) -> None:
    """Refuse any of ``names`` (networks, or ``name@size:random`` candidates) that cannot be
    a network of modality ``kind``, saying which names are closest."""
    for text in names:
        name, _, _ = parse_candidate(text)
        if not name:
            raise ConfigError(f"an empty name in the list of networks: {', '.join(names)}.")
        modality(kind).check_name(name)


def check_candidates(names, kind: str) -> None:
    """:func:`check_networks` for the backbones ``advise`` and ``--backbone auto`` rank: each
    one network (its advice says how much of it to retrain, and ``--strategy auto`` may
    fine-tune the winner), never backbones side by side."""
    joined = [n for n in names if BACKBONE_SEP in n]
    if joined:
        raise ConfigError(
            f"--candidates: {joined[0]} is backbones side by side; rank single backbones "
            f"(train the pair with --backbone {joined[0]}, or let --strategy auto add other "
            "backbones: --ensemble-backbones)."
        )
    check_networks(names, kind)


def check_ensemble_backbones(text: str, kind: str) -> None:
    """``--ensemble-backbones``: auto, none, or single backbones of modality ``kind``, each
    named once."""
    if text in ("auto", "none"):
        return
    option = "--ensemble-backbones"
    names = split_names(text, option)
    close = difflib.get_close_matches(text.strip().lower(), ["auto", "none"], n=1, cutoff=0.6)
    if close and len(names) == 1 and BACKBONE_SEP not in text:
        hint = f" Did you mean {close[0]}?"
    else:
        hint = ""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{option}: {twice[0]} is named twice; name each backbone once.")
    joined = [n for n in names if BACKBONE_SEP in n]
    if joined:
        raise ConfigError(
            f"{option}: {joined[0]} is backbones side by side; name single backbones (auto "
            "adds the probe on all of them side by side itself)."
        )
    try:
        check_networks(names, kind)
    except HeadstartError as e:
        raise type(e)(f"{option}: {e}{hint}") from None


def check_weights(weights: str) -> None:
    """``imagenet``, ``none`` or a weights file that exists."""
    if weights.lower() in ("imagenet", "none"):
        return
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BackboneError(
            f"{path}: weights file not found. Give --weights imagenet, none, or the path of a "
            ".safetensors / state-dict file."
        )


def data_modality(
    location: str,
    asked: str = "auto",
    *,
    filename_column: str = "filename",
    label_column: str = "label",
    text_column: str = "text",
) -> str:
    """The modality of the data at ``location``: ``asked`` unless it is ``auto``, else
    detected from the data (as training detects it)."""
    if asked != "auto":
        return asked
    return detect_modality(
        location,
        text_column=text_column,
        filename_column=filename_column,
        label_column=label_column,
    )


def source_for(config: TrainConfig, kind: str, location=None):
    """The data at ``location`` (default: ``config.data``) read the way ``config`` reads it:
    layout, columns, classes; every data error is raised here."""
    return load_source(
        location if location is not None else config.data,
        modality=kind,
        filename_column=config.filename_column,
        label_column=config.label_column,
        text_column=config.text_column,
        labels=config.label_format(),
    )


def ready_to_train(config: TrainConfig):
    """Check everything a training run is given before it starts: the data location, the
    options as they apply to its modality, the network names, the weights; returns the data
    source (train with ``data=`` it: the data is read once)."""
    if config.data is None:
        raise ConfigError("no data given: pass a data location (or --demo).")
    config.check_new_run()
    kind = data_modality(
        config.data,
        config.modality,
        filename_column=config.filename_column,
        label_column=config.label_column,
        text_column=config.text_column,
    )
    configured = config.for_modality(kind)
    if configured.backbone != "auto":
        check_networks([configured.backbone], kind)
    elif configured.candidates:
        check_candidates(split_names(configured.candidates), kind)
    check_ensemble_backbones(configured.ensemble_backbones, kind)
    check_weights(configured.weights)
    source = source_for(config, kind)
    config.check_task(getattr(source.train.labels, "ndim", 1) == 2)
    return source


def split_names(text: str, option: str = "--candidates") -> list[str]:
    """``A,B,C`` -> ``["A", "B", "C"]``; an empty list is refused, naming ``option``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"{option}: give at least one name, e.g. {option} A,B.")
    return names


def run_config(run_dir: str | Path) -> TrainConfig:
    """The configuration of the saved run in ``run_dir``, after checking it is a run."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    payload = read_json(run_dir / "config.json")
    return TrainConfig.from_dict(payload.get("config", payload))


def run_is_multi_label(run_dir: str | Path) -> bool:
    """Whether the saved run in ``run_dir`` predicts label sets (its ``metrics.json`` says)."""
    path = Path(run_dir) / "metrics.json"
    return path.is_file() and read_json(path).get("task") == "multi-label"


def run_modality(run_dir: str | Path) -> str:
    """The modality of the saved run in ``run_dir`` (as its ``model.json`` records it)."""
    meta = check_run_dir(run_dir)
    if meta is None:  # an interrupted run: its configuration says
        return run_config(run_dir).modality
    return meta.get("modality", "image")


def check_paths(paths, what: str) -> None:
    """Every one of ``paths`` exists (``-``, standard input, passes)."""
    for p in paths:
        if str(p) != "-" and not Path(p).expanduser().exists():
            raise DataError(f"{p}: no such file or folder ({what}).")


def check_predict_inputs(inputs) -> None:
    """``headstart predict``'s inputs: each exists, and a folder holds files (hidden ones
    aside); which of them the run can read is decided as they are read."""
    check_paths(inputs, "an input to predict")
    for p in inputs:
        p = Path(p).expanduser()
        if str(p) != "-" and p.is_dir() and not any(_visible_files(p)):
            raise DataError(
                f"{p}: an empty folder, nothing to predict on; give files or a folder of them."
            )


def _visible_files(folder: Path):
    for f in folder.rglob("*"):
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts):
            yield f


def check_predictions_out(out, inputs) -> None:
    """``headstart predict --out``: a file to write, not one of ``inputs``, and, if it exists,
    a predictions CSV headstart wrote (its first line is that header); anything else there is
    the user's, and is never replaced."""
    from headstart.core.predictions import is_predictions_header

    out = Path(out).expanduser()
    if out.is_dir():
        raise ConfigError(
            f"--out {out}: is a folder; give a file name, e.g. {out / 'predictions.csv'}."
        )
    here = out.resolve()
    if any(str(i) != "-" and Path(i).expanduser().resolve() == here for i in inputs):
        raise ConfigError(f"--out {out}: is one of the inputs; give another file name.")
    if out.exists():
        with open(out, encoding="utf-8", errors="replace", newline="") as f:
            first = f.readline(65536)
        if not is_predictions_header(first):
            raise ConfigError(
                f"--out {out}: exists and is not a predictions CSV headstart wrote; "
                "give another file name, or move that file away."
            )
