"""The data layer's front door, whatever the modality: a location (or in-memory examples) in,
a :class:`DataSource` or recorded :class:`Splits` out.

The modality is detected from the data (image files or arrays; a table with a text column, or
folders of ``.txt`` files) or forced with ``modality="image"|"text"`` (``--modality``); each
modality's own loaders live in ``headstart.modalities.<name>``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from headstart.choices import MODALITIES
from headstart.core.datasource import DataSource, column_hints, refuse_empty_table
from headstart.core.labels import LabelFormat
from headstart.core.modality import FALLBACK, modality_of, own_settings_of
from headstart.core.modality import modality as named
from headstart.core.splits import Splits, make_splits, splits_from_record
from headstart.errors import ConfigError


def detect_modality(
    location,
    *,
    text_column: str = "text",
    filename_column: str = "filename",
    label_column: str = "label",
    sample: int = 2000,
) -> str:
    """``"text"`` or ``"image"`` for ``location`` (a path, ``demo:NAME``, a DataSource or
    Splits): a
    text table (TSV, JSON Lines, or a CSV with the text column), or a folder whose class
    subfolders hold ``.txt`` files and no images, is text; everything else is images (whose
    loader explains what it expected)."""
    if isinstance(location, DataSource | Splits):
        return modality_of(location.train).name
    if str(location).startswith("demo:"):
        return FALLBACK
    columns = {"text_column": text_column, "filename_column": filename_column}
    others = [named(name) for name in MODALITIES if name != FALLBACK]
    path = Path(location).expanduser()
    if path.is_file():
        for m in others:
            if m.claims_table(path, own_settings_of(m, columns)):
                return m.name
        _refuse_unknown_table(path, filename_column, text_column, label_column)
        return FALLBACK
    if not path.is_dir():
        return FALLBACK
    entries = list(path.iterdir())
    for m in others:  # tables of texts side by side (train.csv, test.csv), and no folders
        own = own_settings_of(m, columns)
        tables = [p for p in entries if p.is_file() and m.claims_table(p, own)]
        if tables and not any(p.is_dir() for p in entries if not p.name.startswith(".")):
            return m.name
    kinds = [named(name) for name in MODALITIES]
    found = dict.fromkeys(MODALITIES, 0)  # files of each kind inside the class folders
    for f in itertools.islice(path.glob("*/**/*"), sample):
        if f.is_file():
            for kind in kinds:
                found[kind.name] += kind.recognises(f)
    if found[FALLBACK]:
        return FALLBACK
    return next((name for name in MODALITIES if found[name]), FALLBACK)


def load_source(
    location: str | Path | DataSource,
    *,
    modality: str = "auto",
    filename_column: str = "filename",
    label_column: str = "label",
    text_column: str = "text",
    labels: LabelFormat | None = None,
) -> DataSource:
    """Detect the layout at ``location`` and load it (see the README's data layouts);
    ``labels`` says how a table's label cells are read (one class, or several labels per
    example: :class:`~headstart.core.labels.LabelFormat`)."""
    if isinstance(location, DataSource):
        return location
    if modality not in ("auto", *MODALITIES):
        raise ConfigError(f"modality must be auto, {', '.join(MODALITIES)}; got {modality!r}.")
    if modality == "auto":
        modality = detect_modality(
            location,
            text_column=text_column,
            filename_column=filename_column,
            label_column=label_column,
        )
    kind = named(modality)
    columns = {"filename_column": filename_column, "text_column": text_column}
    return kind.load_source(
        location,
        label_column=label_column,
        labels=labels or LabelFormat(),
        own=own_settings_of(kind, columns),
    )


def _refuse_unknown_table(
    path: Path, filename_column: str, text_column: str, label_column: str
) -> None:
    """A CSV with neither an image-path column nor a text column: say both ways to read it
    (detection could not tell images from text)."""
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return
    import csv

    refuse_empty_table(
        path, f"{filename_column},{label_column} for images, {text_column},{label_column} for texts"
    )
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None) or []
    except (OSError, UnicodeDecodeError):
        return  # the loader names the problem
    if filename_column not in header and text_column not in header:
        from headstart.errors import DataError

        raise DataError(
            f"{path}: neither a {filename_column!r} column (image paths) nor a "
            f"{text_column!r} column (texts); it has {', '.join(map(repr, header)) or 'none'}. "
            "Name yours with --filename-column or --text-column (and --label-column)."
            + column_hints(
                {"--filename-column": filename_column, "--text-column": text_column}, header
            )
        )


def load_data(
    location: str | Path | DataSource,
    *,
    val_split: float = 0.2,
    test_split: float | None = None,
    seed: int = 0,
    split_record: dict | None = None,
    modality: str = "auto",
    filename_column: str = "filename",
    label_column: str = "label",
    text_column: str = "text",
    labels: LabelFormat | None = None,
) -> Splits:
    """Load any supported layout and split it (or replay a recorded split exactly)."""
    source = load_source(
        location,
        modality=modality,
        filename_column=filename_column,
        label_column=label_column,
        text_column=text_column,
        labels=labels,
    )
    if split_record is not None:
        return splits_from_record(source, split_record)
    return make_splits(source, val_split=val_split, test_split=test_split, seed=seed)


def inspect_source(source: DataSource, *, progress: bool | None = True, **options):
    """The modality's inspection of ``source`` (counts, baselines, duplicates, leakage...);
    ``progress``: a bar or a line (None: as the caller's entry point set it)."""
    from headstart.progress import enabled

    with enabled(progress):
        return modality_of(source.train).inspect(source, **options)


def content_hashes(examples) -> list[str | None]:
    """A content hash per example (None where unreadable): decoded pixels for images, the
    normalised text for texts. What finds training examples in evaluation data."""
    return modality_of(examples).content_hashes(examples)


__all__ = [
    "DataSource",
    "Splits",
    "content_hashes",
    "detect_modality",
    "inspect_source",
    "load_data",
    "load_source",
    "make_splits",
    "splits_from_record",
]
