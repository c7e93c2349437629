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
from headstart.core.datasource import DataSource
from headstart.core.splits import Splits, make_splits, splits_from_record
from headstart.errors import ConfigError


def detect_modality(
    location,
    *,
    text_column: str = "text",
    filename_column: str = "filename",
    sample: int = 2000,
) -> str:
    """``"text"`` or ``"image"`` for ``location`` (a path, ``demo:NAME``, a DataSource or
    Splits): a
    text table (TSV, JSON Lines, or a CSV with the text column), or a folder whose class
    subfolders hold ``.txt`` files and no images, is text; everything else is images (whose
    loader explains what it expected)."""
    if isinstance(location, DataSource | Splits):
        return getattr(location.train, "modality", "image")
    if str(location).startswith("demo:"):
        return "image"
    from headstart.modalities.image.data.decode import is_image_path
    from headstart.modalities.text.sources import TEXT_SUFFIX, is_text_table

    path = Path(location).expanduser()
    if path.is_file():
        if is_text_table(path, text_column=text_column):
            return "text"
        _refuse_unknown_table(path, filename_column, text_column)
        return "image"
    if not path.is_dir():
        return "image"
    tables = [
        p for p in path.iterdir() if p.is_file() and is_text_table(p, text_column=text_column)
    ]
    if tables and not any(p.is_dir() for p in path.iterdir() if not p.name.startswith(".")):
        return "text"
    texts = images = 0
    for f in itertools.islice(path.glob("*/**/*"), sample):  # files inside subfolders
        if f.is_file():
            texts += f.suffix.lower() == TEXT_SUFFIX
            images += is_image_path(f)
    return "text" if texts and not images else "image"


def load_source(
    location: str | Path | DataSource,
    *,
    modality: str = "auto",
    filename_column: str = "filename",
    label_column: str = "label",
    text_column: str = "text",
) -> DataSource:
    """Detect the layout at ``location`` and load it (see the README's data layouts)."""
    if isinstance(location, DataSource):
        return location
    if modality not in ("auto", *MODALITIES):
        raise ConfigError(f"modality must be auto, {', '.join(MODALITIES)}; got {modality!r}.")
    if modality == "auto":
        modality = detect_modality(
            location, text_column=text_column, filename_column=filename_column
        )
    if modality == "text":
        from headstart.modalities.text.sources import load_text_source

        return load_text_source(location, text_column=text_column, label_column=label_column)
    from headstart.modalities.image.data.sources import load_image_source

    return load_image_source(location, filename_column=filename_column, label_column=label_column)


def _refuse_unknown_table(path: Path, filename_column: str, text_column: str) -> None:
    """A CSV with neither an image-path column nor a text column: say both ways to read it
    (detection could not tell images from text)."""
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return
    import csv

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
) -> Splits:
    """Load any supported layout and split it (or replay a recorded split exactly)."""
    source = load_source(
        location,
        modality=modality,
        filename_column=filename_column,
        label_column=label_column,
        text_column=text_column,
    )
    if split_record is not None:
        return splits_from_record(source, split_record)
    return make_splits(source, val_split=val_split, test_split=test_split, seed=seed)


def inspect_source(source: DataSource, *, progress: bool = True, **options):
    """The modality's inspection of ``source`` (counts, baselines, duplicates, leakage...)."""
    if getattr(source.train, "modality", "image") == "text":
        from headstart.modalities.text.inspect import inspect_texts

        return inspect_texts(source, progress=progress, **options)
    from headstart.modalities.image.data.inspect import inspect_source as inspect_images

    return inspect_images(source, progress=progress, **options)


def content_hashes(examples, *, progress: bool = False) -> list[str | None]:
    """A content hash per example (None where unreadable): decoded pixels for images, the
    normalised text for texts. What finds training examples in evaluation data."""
    if getattr(examples, "modality", "image") == "text":
        from headstart.modalities.text.inspect import text_hash

        return [text_hash(t) for t in examples.texts]
    from headstart.modalities.image.data.inspect import hash_images

    return hash_images(examples, progress=progress)


def from_arrays(*args, **kwargs) -> DataSource:
    """Images in memory: see :func:`headstart.modalities.image.data.sources.from_arrays`."""
    from headstart.modalities.image.data.sources import from_arrays as images

    return images(*args, **kwargs)


def from_texts(*args, **kwargs) -> DataSource:
    """Texts in memory: see :func:`headstart.modalities.text.sources.from_texts`."""
    from headstart.modalities.text.sources import from_texts as texts

    return texts(*args, **kwargs)


__all__ = [
    "DataSource",
    "Splits",
    "content_hashes",
    "detect_modality",
    "from_arrays",
    "from_texts",
    "inspect_source",
    "load_data",
    "load_source",
    "make_splits",
    "splits_from_record",
]
