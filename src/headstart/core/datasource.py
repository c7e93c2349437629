"""``DataSource``: what a location holds, whatever the modality: its train / val / test sets
(``ImageSet`` or ``TextSet``, which share one protocol) and what was noticed on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headstart.errors import DataError

SPLIT_NAMES = ("train", "val", "test")
#: Names of split folders and split-column values, and the split each means.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def refuse_empty_table(path: Path, header: str) -> None:
    """Say that a table file is empty (nothing but blanks: no header, no rows), rather than
    that its columns are missing. ``header`` is what its first line should be."""
    try:
        with open(path, "rb") as f:
            start = f.read(_BLANK_PROBE + 1)
    except OSError:
        return  # the loader names the problem
    if len(start) <= _BLANK_PROBE and not start.decode("utf-8", "replace").strip("\ufeff \t\r\n"):
        raise DataError(
            f"{path}: the file is empty. A table needs a header row ({header}) and one row "
            "per example."
        )


_BLANK_PROBE = 4096


def column_hints(asked: dict[str, str], header: list[str]) -> str:
    """`` Did you mean --text-column review?`` for each asked column (``--flag`` -> name) that
    is missing from ``header`` while a close name is in it; empty when none is."""
    import difflib

    hints = []
    for flag, name in asked.items():
        if name in header:
            continue
        folded = {h.casefold(): h for h in header}
        close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
        if close:
            hints.append(f"{flag} {folded[close[0]]}")
    return f" Did you mean {' and '.join(hints)}?" if hints else ""


@dataclass
class DataSource:
    """What was found at a location: the splits it provides (sets of one modality, e.g.
    ``ImageSet`` or ``TextSet``) and what was noticed on the way."""

    train: object
    val: object | None = None
    test: object | None = None
    layout: str = "in-memory"
    location: str = "<arrays>"
    notes: list[str] = field(default_factory=list)
    #: files that are not examples of this modality (a README beside the images)
    ignored_files: list[str] = field(default_factory=list)
    #: examples found but unusable, left out of every split: {"path", "reason"} each (an empty
    #: or non-UTF-8 text file, an empty text cell)
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: ids that runs recorded by an older naming, mapped to today's (a table's texts were
    #: named by their line, ``reviews.csv:15``, now by their row, ``reviews.csv row 12``):
    #: a split recorded under the old names still replays (:func:`~headstart.core.splits.
    #: splits_from_record`)
    former_ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.train) == 0:
            raise DataError(f"{self.location}: the training split holds no examples.")
        n_classes = len(self.class_names)
        present = np.flatnonzero(self.train.class_counts())
        if n_classes < 2 or len(present) < 2:
            only = self.class_names[int(present[0])] if len(present) else "?"
            raise DataError(
                f"{self.location}: only one class ({only!r}) has training examples; a "
                "classifier needs at least two classes."
            )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    def splits(self) -> dict:
        return {
            n: s for n, s in zip(SPLIT_NAMES, (self.train, self.val, self.test)) if s is not None
        }
