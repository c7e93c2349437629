"""Label vectors -> integer class indices plus class names, in a stable order.

Labels may be integers (the lesson's arrays), strings (folder names, CSV columns) or integral
floats. Class names are sorted (numerically for integers, alphabetically for strings, as Keras
orders class folders) so the same data always gives the same class order, and the names travel
with every downstream artefact.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from headstart.choices import DEFAULT_LABELS_SEP, TASKS
from headstart.errors import ConfigError, DataError


def is_label_lists(y) -> bool:
    """Whether ``y`` is one list (tuple, set) of labels per example, not an array."""
    return (
        not isinstance(y, np.ndarray)
        and len(y) > 0
        and isinstance(y[0], list | tuple | set | frozenset)
    )


def is_label_sets(labels) -> bool:
    """Whether ``labels`` are multi-label: a 2-D 0/1 indicator matrix (examples x labels, as
    scikit-learn's multi-label estimators take) or a sequence of label lists (or sets)."""
    if isinstance(labels, np.ndarray):
        return labels.ndim == 2 and labels.shape[1] > 1 and _zero_one(labels)
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence) or not len(labels):
        return False
    if is_label_lists(labels):
        return True
    a = np.asarray(labels) if not isinstance(labels[0], str | bytes) else None
    return a is not None and a.ndim == 2 and a.shape[1] > 1 and _zero_one(a)


def _zero_one(a: np.ndarray) -> bool:
    return a.dtype.kind in "biuf" and bool(np.isin(a, (0, 1)).all())


def _as_label_array(labels: Sequence | np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(labels)
    if a.dtype == object:
        try:
            a = np.asarray([str(v) for v in a.ravel()], dtype=str).reshape(a.shape)
        except Exception as e:  # pragma: no cover - str() of anything works
            raise DataError(f"{where}: labels could not be read as text ({e})") from None
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise DataError(
            f"{where}: labels must be a 1-D vector (one class per example) or a 0/1 matrix "
            f"(examples x labels: several labels per example); got shape {a.shape}."
        )
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: {int(bad.sum())} label(s) are NaN or infinite (first at position "
                f"{first}); remove those images or fix their labels."
            )
        if not np.all(a == np.round(a)):
            first = int(np.flatnonzero(a != np.round(a))[0])
            raise DataError(
                f"{where}: label {a[first]!r} at position {first} is not a whole number; "
                "class labels must be integers or strings."
            )
        a = a.astype(np.int64)
    elif a.dtype.kind == "b":
        a = a.astype(np.int64)
    elif a.dtype.kind not in "iuUS":
        raise DataError(
            f"{where}: labels of type {a.dtype} are not supported; use ints or strings."
        )
    if a.dtype.kind == "S":
        a = a.astype(str)
    return a


def encode_labels(
    label_sets: dict[str, Sequence | np.ndarray],
    class_names: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Encode several label vectors (one per split, keyed by a name used in messages).

    With ``class_names`` given, integer labels index into it and string labels must be among
    it. Without, the classes are the sorted union of the labels seen.
    """
    if any(is_label_sets(v) for v in label_sets.values()):  # several labels per example
        return encode_label_sets(
            {w: list(v) if is_label_lists(v) else np.asarray(v) for w, v in label_sets.items()},
            class_names,
        )
    arrays = {where: _as_label_array(v, where) for where, v in label_sets.items()}
    kinds = {a.dtype.kind for a in arrays.values() if len(a)}
    if kinds and kinds <= {"i", "u"}:
        for where, a in arrays.items():
            if len(a) and a.min() < 0:
                raise DataError(
                    f"{where}: label {int(a.min())} is negative; integer labels are class "
                    "indices 0..n_classes-1."
                )
        if class_names is not None:
            names = tuple(str(c) for c in class_names)
            for where, a in arrays.items():
                if len(a) and a.max() >= len(names):
                    raise DataError(
                        f"{where}: label {int(a.max())} is out of range for {len(names)} class "
                        f"names ({', '.join(names[:5])}{'...' if len(names) > 5 else ''}); "
                        "labels must be 0..n_classes-1."
                    )
            return {w: a.astype(np.int64) for w, a in arrays.items()}, names
        values = np.unique(np.concatenate([a for a in arrays.values() if len(a)]))
        lookup = {int(v): i for i, v in enumerate(values)}
        encoded = {
            w: np.fromiter((lookup[int(v)] for v in a), dtype=np.int64, count=len(a))
            for w, a in arrays.items()
        }
        return encoded, tuple(str(int(v)) for v in values)
    # text labels (or mixed): compare as strings
    str_arrays = {w: a.astype(str) for w, a in arrays.items()}
    if class_names is not None:
        names = tuple(str(c) for c in class_names)
    else:
        names = tuple(sorted(set().union(*[set(a.tolist()) for a in str_arrays.values()])))
    lookup = {n: i for i, n in enumerate(names)}
    encoded = {}
    for where, a in str_arrays.items():
        unknown = sorted(set(a.tolist()) - lookup.keys())
        if unknown:
            raise DataError(
                f"{where}: label(s) {', '.join(map(repr, unknown[:5]))} are not among the "
                f"classes ({', '.join(names[:10])})."
            )
        encoded[where] = np.fromiter((lookup[v] for v in a), dtype=np.int64, count=len(a))
    return encoded, names


def split_cell(cell: str, sep: str) -> list[str]:
    """The labels of one table cell (``"cat; dog"`` -> ``["cat", "dog"]``), blanks dropped."""
    return [part.strip() for part in str(cell).split(sep) if part.strip()]


def encode_label_sets(
    label_sets: dict[str, Sequence], class_names: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Multi-label counterpart of :func:`encode_labels`: each split's labels (a 0/1 matrix,
    or one list of label names per example) -> a 0/1 ``int64`` matrix (examples x labels)
    over ``class_names`` (given, or the sorted union of the names seen). A matrix without
    names names its columns 0..K-1."""
    matrices = {w: v for w, v in label_sets.items() if isinstance(v, np.ndarray) and v.ndim == 2}
    lists = {w: v for w, v in label_sets.items() if w not in matrices}
    widths = {v.shape[1] for v in matrices.values()}
    if len(widths) > 1:
        raise DataError(
            f"label matrices of different widths ({', '.join(map(str, sorted(widths)))}); every "
            "split needs one column per label, in the same order."
        )
    for where, m in matrices.items():
        if not _zero_one(m):
            raise DataError(f"{where}: a label matrix holds only 0 and 1 (label absent/present).")
    if class_names is not None:
        names = tuple(str(c) for c in class_names)
    elif widths:
        names = tuple(str(i) for i in range(widths.pop()))
    else:
        seen = {str(name) for v in lists.values() for labels in v for name in labels}
        names = tuple(sorted(seen, key=_natural))
    if matrices and len(names) != next(iter(matrices.values())).shape[1]:
        raise DataError(
            f"{len(names)} label names for a label matrix of "
            f"{next(iter(matrices.values())).shape[1]} columns."
        )
    lookup = {n: i for i, n in enumerate(names)}
    encoded = {w: np.asarray(m, np.int64) for w, m in matrices.items()}
    for where, v in lists.items():
        out = np.zeros((len(v), len(names)), np.int64)
        for row, labels in enumerate(v):
            unknown = [str(x) for x in labels if str(x) not in lookup]
            if unknown:
                raise DataError(
                    f"{where}: label(s) {', '.join(map(repr, unknown[:5]))} of example {row} "
                    f"are not among the labels ({', '.join(names[:10])})."
                )
            out[row, [lookup[str(x)] for x in labels]] = 1
        encoded[where] = out
    if len(names) < 2:
        raise DataError(
            f"multi-label data needs at least 2 labels; found {len(names)} "
            f"({', '.join(names) or 'none'})."
        )
    return encoded, names


def _natural(name: str):
    """Numbers in numeric order, then names alphabetically."""
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name)


@dataclass(frozen=True)
class LabelFormat:
    """How a table's labels are read (``--task``, ``--labels-sep``, ``--label-columns``).

    ``task="auto"``: multi-label when ``columns`` are given (one 0/1 column per label) or a
    label cell holds ``sep``; ``"single-label"``: every cell is one class, separator or not;
    ``"multi-label"``: every cell is a list of labels (an empty cell: no label)."""

    task: str = TASKS[0]
    sep: str = DEFAULT_LABELS_SEP
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            close = difflib.get_close_matches(str(self.task), list(TASKS), n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"--task must be one of {', '.join(TASKS)}; got {self.task!r}.{hint}")
        if not self.sep:
            raise ConfigError("--labels-sep must not be empty (the default is ';').")
        if self.columns and self.task == TASKS[1]:
            raise ConfigError(
                "--label-columns gives several labels per example: it is a multi-label task; "
                "leave --task at auto or set it to multi-label."
            )

    def missing_columns(self, header: Sequence[str]) -> list[str]:
        return [c for c in self.columns if c not in header]

    def cell(self, row: dict, label_column: str, where: str) -> str:
        """The label text of one row: its label cell, or the names of its 0/1 label columns
        set to 1 joined by the separator."""
        if not self.columns:
            return str(row.get(label_column) or "").strip()
        on = []
        for column in self.columns:
            value = str(row.get(column) or "").strip()
            if value not in ("0", "1", "0.0", "1.0", "true", "false", "True", "False"):
                raise DataError(f"{where}: {column!r} is {value!r}; a label column holds 0 or 1.")
            if value in ("1", "1.0", "true", "True"):
                on.append(column)
        return self.sep.join(on)

    def allows_empty(self) -> bool:
        """Whether an empty label cell may be an example with no label (multi-label data;
        with ``task="auto"`` the loader asks :meth:`check_empty` once every cell is read)."""
        return self.task != TASKS[1]

    def is_multi(self, cells: dict[str, Sequence[str]]) -> bool:
        """Whether these label cells (split -> cells) are multi-label data."""
        if self.task == TASKS[2] or self.columns:
            return True
        return self.task == TASKS[0] and any(self.sep in str(c) for v in cells.values() for c in v)

    def check_empty(self, cells: dict[str, Sequence[str]], first_empty: str | None, column: str):
        """Refuse an empty label cell (``first_empty``: where the first one is) in data of one
        class per example."""
        if first_empty is not None and not self.is_multi(cells):
            distinct = {str(c).strip() for v in cells.values() for c in v} - {""}
            hint = (
                f" (Several labels per example, some with none? Separate labels with "
                f"{self.sep!r} or pass --task multi-label.)"
                if len(distinct) > 1
                else " Give that row its label or remove it."
            )
            raise DataError(f"{first_empty}: empty {column!r} cell.{hint}")

    def encode(self, cells: dict[str, Sequence[str]]):
        """Each split's label cells -> (encoded labels by split, names): class indices, or a
        0/1 matrix when the data is multi-label (see the class docstring)."""
        if not self.is_multi(cells):
            return encode_labels({w: np.asarray(v) for w, v in cells.items()})
        if self.columns:
            sets = {w: [split_cell(c, self.sep) for c in v] for w, v in cells.items()}
            return encode_label_sets(sets, self.columns)
        return encode_label_sets(
            {w: [split_cell(c, self.sep) for c in v] for w, v in cells.items()}
        )


#: Characters that separate labels in other people's tables: a class or label holding one
#: may be several labels read as one (``circle,stripes`` with ``--labels-sep ;``).
SEPARATOR_LIKE = (";", ",", "|", "/")


def separator_note(names, multi_label: bool, noun: str = "example") -> str | None:
    """A note naming the classes (or labels) that hold a separator-like character, or None."""
    odd = [n for n in names if any(c in n for c in SEPARATOR_LIKE)]
    if not odd:
        return None
    shown = ", ".join(map(repr, odd[:5])) + (" ..." if len(odd) > 5 else "")
    found = [c for c in SEPARATOR_LIKE if any(c in n for n in odd)]
    kind = "label(s)" if multi_label else "class(es)"
    return (
        f"{kind} {shown} hold {' or '.join(map(repr, found))}: several labels per {noun} "
        "written with another separator? Name it with --labels-sep (the labels of a cell are "
        "split on it; default ';')"
    )


def label_columns_hint(missing, label_column: str, header, *used: str) -> str:
    """When the label column is missing from a table whose other columns could each be one
    label's 0/1 column: the flag that reads them so (``--label-columns``)."""
    others = [c for c in header if c not in used and c != "split"]
    if label_column not in missing or len(others) < 2:
        return ""
    return f" Several labels as 0/1 columns? --label-columns {','.join(others)}"


def labels_as_given(y):
    """``y`` for the data layer: one list of labels per example stays a list of lists (they
    may differ in length, which no array holds); anything else becomes an array."""
    if is_label_lists(y):
        return [list(v) for v in y]
    return np.asarray(y)
