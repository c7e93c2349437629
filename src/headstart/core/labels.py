"""Label vectors -> integer class indices plus class names, in a stable order.

Labels may be integers (the lesson's arrays), strings (folder names, CSV columns) or integral
floats. Class names are sorted (numerically for integers, alphabetically for strings, as Keras
orders class folders) so the same data always gives the same class order, and the names travel
with every downstream artefact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from headstart.errors import DataError


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
            f"{where}: labels must be a 1-D vector, one label per image; got shape {a.shape}. "
            "One-hot labels? Pass labels.argmax(axis=1)."
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
