"""Predictions as every modality reports them: one row per input (its label and class
probabilities, or the reason it has none, and for a text the start of it), and the CSV
``headstart predict`` writes."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from headstart.choices import DEFAULT_LABELS_SEP

#: Characters of a text a prediction carries to show which text it scored.
TEXT_START_CHARS = 80


def text_start(text: str, limit: int = TEXT_START_CHARS) -> str:
    """The start of ``text`` on one line: whitespace (newlines too) collapsed to single
    spaces, cut to ``limit`` characters with an ellipsis when longer."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


@dataclass
class Prediction:
    """One input's prediction, or the reason it has none. ``text_start``: for a text, its
    first characters (:func:`text_start`), so a row says what it scored; None for images."""

    input: str
    label: str | None
    probabilities: np.ndarray | None
    error: str | None = None
    text_start: str | None = None
    #: the probability of the predicted class; of a predicted label set, the probability of
    #: exactly that set under the labels' independent sigmoids (None: the largest of
    #: ``probabilities``)
    confidence: float | None = None


#: Joins the labels of a predicted label set (``"cat;dog"``): a table's default
#: ``--labels-sep``, so a predictions CSV reads back as multi-label data.
LABEL_JOIN = DEFAULT_LABELS_SEP


def label_of(model, p: np.ndarray) -> str:
    """The predicted class of probabilities ``p`` (one row), or for a multi-label ``model``
    (one with per-label ``thresholds``) its labels at or above their thresholds joined by
    :data:`LABEL_JOIN` (empty: no label)."""
    thresholds = getattr(model, "thresholds", None)
    if thresholds is None:
        return model.class_names[int(np.argmax(p))]
    return LABEL_JOIN.join(c for c, on in zip(model.class_names, p >= thresholds) if on)


def confidence_of(model, p: np.ndarray) -> float:
    """The probability of what :func:`label_of` predicts (see :class:`Prediction`)."""
    thresholds = getattr(model, "thresholds", None)
    if thresholds is None:
        return float(np.max(p))
    p = np.asarray(p, np.float64)
    return float(np.prod(np.where(p >= thresholds, p, 1 - p)))


#: The columns every predictions CSV begins with; the class columns and ``error`` follow.
CSV_FIRST_COLUMNS = ("input", "predicted", "confidence")


def is_predictions_header(line: str) -> bool:
    """Whether ``line`` (a file's first line) is the header :func:`predictions_csv` writes:
    how ``headstart predict`` knows a file it may replace is one it wrote."""
    names = next(csv.reader([line.rstrip("\r\n")]), [])
    if names[-1:] == ["text_start"]:
        names = names[:-1]
    first = len(CSV_FIRST_COLUMNS)
    return (
        tuple(names[:first]) == CSV_FIRST_COLUMNS
        and names[-1:] == ["error"]
        and all(n.startswith("p_") for n in names[first:-1])
    )


def rows_said(predictions: Sequence[Prediction]) -> str:
    """How many rows a predictions CSV holds, in words: ``5 predictions``, or with inputs that
    could not be read, ``6 rows (5 predictions, 1 unreadable)``."""
    failed = sum(bool(p.error) for p in predictions)
    done = len(predictions) - failed
    said = f"{done} prediction{'s' * (done != 1)}"
    if not failed:
        return said
    return f"{len(predictions)} row{'s' * (len(predictions) != 1)} ({said}, {failed} unreadable)"


def predictions_csv(predictions: list[Prediction], class_names: Sequence[str]) -> str:
    """One row per input: input, predicted, confidence, p_<class>..., error, and for texts a
    last column ``text_start`` (the text's first characters, on one line)."""
    texts = any(r.text_start is not None for r in predictions)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = [*CSV_FIRST_COLUMNS, *[f"p_{c}" for c in class_names], "error"]
    w.writerow(header + ["text_start"] * texts)
    for r in predictions:
        if r.probabilities is None:
            row = [r.input, "", "", *[""] * len(class_names), r.error]
        else:
            row = [
                r.input,
                r.label,
                f"{r.probabilities.max() if r.confidence is None else r.confidence:.4f}",
                *[f"{v:.6f}" for v in r.probabilities],
                "",
            ]
        w.writerow(row + [r.text_start or ""] * texts)
    return buf.getvalue()


#: Characters of a text shown in the report's tables (the rest is cut, with an ellipsis).
SNIPPET_CHARS = 240


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of ``text`` on one line, escaped for HTML: a text is data, never markup."""
    return html.escape(text_start(text, limit))
