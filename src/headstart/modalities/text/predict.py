"""Predicting with a text run: strings in (a list, ``.txt`` files, a folder of them, a table's
text column, or standard input, one text per line), class probabilities out."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.core.predictions import Prediction, confidence_of, label_of, text_start
from headstart.errors import DataError
from headstart.modalities.text.sources import (
    TABLE_SUFFIXES,
    TEXT_SUFFIX,
    cell_count_problem,
    cell_text,
    read_table,
    row_id,
)
from headstart.modalities.text.textset import TextSet


def predict_text_proba(run, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
    """(N, classes) probabilities for ``texts`` through ``run``'s encoder and head."""
    import torch

    from headstart.core.extractors import extractor_for
    from headstart.core.model import loaded_from_run

    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(f"input #{bad[0]} is a {type(texts[bad[0]]).__name__}, not a string.")
    if not texts:
        return np.zeros((0, len(run.class_names)), dtype=np.float32)
    items = TextSet(texts, np.zeros(len(texts)), tuple(run.class_names), name="predict")
    extractor = extractor_for(loaded_from_run(run), batch_size=batch_size, cache=False)
    features = extractor.extract(items).features
    with torch.no_grad():
        logits = run.model.head.eval()(torch.from_numpy(np.asarray(features, np.float32)))
    return run.task.activate(logits).numpy()


def predict_text_inputs(
    model,
    inputs: Sequence[str],
    *,
    text_column: str = "text",
    batch_size: int = 32,
) -> list[Prediction]:
    """Predict on ``.txt`` files, folders of them, tables (their text column) and ``-``
    (standard input, one text per line); an empty or non-UTF-8 file, and a table row with more
    or fewer cells than the header (an unquoted comma?), becomes an error row.
    Each prediction carries the start of the text it scored (``text_start``).
    ``model``: a loaded run, or an exported one (anything with ``class_names`` and
    ``predict_proba`` on strings)."""
    items = read_text_inputs([str(i) for i in inputs], text_column=text_column)
    good = [(where, text) for where, text, why in items if not why and text.strip()]
    texts = [t for _, t in good]
    probs = model.predict_proba(texts, batch_size=batch_size)
    by_where = {where: p for (where, _), p in zip(good, probs)}
    out = []
    for where, text, why in items:
        start = text_start(text)
        if where in by_where:
            p = by_where[where]
            out.append(
                Prediction(
                    where,
                    label_of(model, p),
                    p,
                    text_start=start,
                    confidence=confidence_of(model, p),
                )
            )
        else:
            why = why or "empty or not UTF-8 text"
            out.append(Prediction(where, None, None, why, text_start=start))
    return out


def read_text_inputs(
    inputs: Sequence[str], *, text_column: str = "text"
) -> list[tuple[str, str, str]]:
    """(where, text, why) for every input: ``-`` (standard input, one text per line), a
    ``.txt`` file, a folder (its ``.txt`` files, sorted), or a table (its text column). ``why``
    is "" or why the input cannot be scored (a table row with the wrong number of cells). Files
    that are not UTF-8 or are empty become (where, "", "") and are reported by the caller."""
    out: list[tuple[str, str, str]] = []
    for item in inputs:
        if item == "-":
            lines = [
                (f"<stdin>:{n}", line, "")
                for n, line in enumerate(sys.stdin.read().splitlines(), start=1)
                if line.strip()
            ]
            if not lines:
                raise DataError(
                    "standard input (-) held no text: give one text per line, for example "
                    '`echo "great drug" | headstart predict RUN -`.'
                )
            out += lines
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob(f"*{TEXT_SUFFIX}") if p.is_file())
            if not files:
                raise DataError(f"{path}: holds no .txt files to predict.")
            out += [(str(f), _read(f), "") for f in files]
        elif path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
            table = _table_texts(path, text_column)
            out += table
        elif path.is_file():
            out.append((str(path), _read(path), ""))
        else:
            raise DataError(f"{path}: no such file or folder.")
    return out


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except (UnicodeDecodeError, OSError):
        return ""


def _table_texts(path: Path, text_column: str) -> list[tuple[str, str, str]]:
    """The text column of a table (a label column, if any, is ignored), each text named by
    its data row (``reviews.csv row 12``: 1 is the first row after the header); a CSV / TSV
    row with the wrong number of cells is not scored (its cells may be shifted)."""
    columns, rows = read_table(path)
    if text_column not in columns:
        raise DataError(
            f"{path}: no {text_column!r} column to predict (it has "
            f"{', '.join(map(repr, columns))}); use --text-column."
        )
    is_csv = TABLE_SUFFIXES[path.suffix.lower()] is not None
    out = []
    for n, line, row in rows:
        problem = cell_count_problem(columns, row) if is_csv else ""
        text = "" if problem else cell_text(row.get(text_column))
        out.append((row_id(str(path), n), text, f"line {line}: {problem}" if problem else ""))
    return out
