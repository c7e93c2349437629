"""The data layer: sources (three layouts + arrays) -> ImageSet -> recorded splits -> inspection.

Most users need :func:`load_data` (a location or arrays in, :class:`Splits` out) and
:func:`inspect_source`.
"""

from __future__ import annotations

from pathlib import Path

from headstart.data.decode import UnreadableImage, decode_image
from headstart.data.imageset import ImageSet
from headstart.data.inspect import Inspection, inspect_source, scan_unreadable
from headstart.data.sources import (
    DataSource,
    from_array_folder,
    from_arrays,
    from_csv,
    from_image_folder,
    load_source,
)
from headstart.data.splits import Splits, make_splits, splits_from_record


def load_data(
    location: str | Path | DataSource,
    *,
    val_split: float = 0.2,
    test_split: float | None = None,
    seed: int = 0,
    split_record: dict | None = None,
    filename_column: str = "filename",
    label_column: str = "label",
) -> Splits:
    """Load any supported layout and split it (or replay a recorded split exactly)."""
    source = load_source(location, filename_column=filename_column, label_column=label_column)
    if split_record is not None:
        return splits_from_record(source, split_record)
    return make_splits(source, val_split=val_split, test_split=test_split, seed=seed)


__all__ = [
    "DataSource",
    "ImageSet",
    "Inspection",
    "Splits",
    "UnreadableImage",
    "decode_image",
    "from_array_folder",
    "from_arrays",
    "from_csv",
    "from_image_folder",
    "inspect_source",
    "scan_unreadable",
    "load_data",
    "load_source",
    "make_splits",
    "splits_from_record",
]
