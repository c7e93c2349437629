"""Text data layouts -> one :class:`~headstart.core.datasource.DataSource` of
:class:`~headstart.modalities.text.textset.TextSet` splits.

* **table**: a CSV, TSV or JSON Lines file with a text column and a label column (default
  names ``text`` and ``label``, set with ``--text-column`` / ``--label-column``) and an optional
  ``split`` column (train / val / test).
* **text folder**: one subfolder per class of ``.txt`` files, optionally under ``train/``,
  ``val/`` (or ``validation/``) and ``test/``.
* **in memory**: lists of strings and labels (:func:`from_texts`).

A table's texts are named by data row (:func:`row_id`, :func:`read_table`). Text is decoded
as UTF-8 (a byte-order mark is dropped). A file that is not valid UTF-8, or is
empty, a table row whose text cell is empty, and a CSV / TSV row with more or fewer cells than
the header (an unquoted comma in a text, :func:`cell_count_problem`), is listed and skipped,
never fatal and never misread. Text is data: it is never executed or evaluated.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.core.datasource import (
    SPLIT_ALIASES,
    SPLIT_NAMES,
    DataSource,
    column_hints,
    refuse_empty_table,
)
from headstart.core.labels import LabelFormat, encode_labels, label_columns_hint
from headstart.errors import DataError
from headstart.modalities.text.textset import TextSet

#: File endings read as tables, and the delimiter of each.
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".ndjson": None}
TEXT_SUFFIX = ".txt"
#: Fields larger than csv's default limit (131,072 characters) are legitimate long texts.
_FIELD_LIMIT = 1 << 30
#: In the reason of every row skipped for its number of cells (see :func:`skip_kinds`).
_HEADER_HAS = "the header has"


def from_texts(
    texts: Sequence[str], labels: Sequence | np.ndarray, *, name: str = "texts"
) -> DataSource:
    """In-memory texts and labels (the training split; validation is carved from it)."""
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(
            f"text #{bad[0]} is a {type(texts[bad[0]]).__name__}, not a string; pass a list of str."
        )
    encoded, names = encode_labels({f"{name} labels": labels})
    if len(texts) != len(encoded[f"{name} labels"]):
        raise DataError(f"{len(texts)} texts but {len(encoded[f'{name} labels'])} labels.")
    keep = [i for i, t in enumerate(texts) if t.strip()]
    notes = []
    if len(keep) < len(texts):
        notes.append(f"{len(texts) - len(keep)} empty text(s) skipped")
    train = TextSet(
        texts=[texts[i] for i in keep],
        labels=encoded[f"{name} labels"][keep],
        class_names=names,
        origin=name,
        ids=[f"{name}#{i}" for i in keep],
    )
    return DataSource(train=train, layout="in-memory", location=f"<{name}>", notes=notes)


def row_id(name: str, row: int) -> str:
    """The id of data row ``row`` of the table ``name``: ``reviews.csv row 12`` (see
    :func:`read_table` for what a row number counts)."""
    return f"{name} row {row}"


def read_table(path: Path) -> tuple[list[str], list[tuple[int, int, dict]]]:
    """(columns, [(row, line, cells)]) of a CSV / TSV / JSON Lines file. ``row`` is the data
    row number: 1 is the first row after a CSV's header (the first object of a JSON Lines file),
    counted in rows, not lines, so a quoted cell spanning lines does not shift it: it is
    ``pandas.read_csv``'s ``df.iloc[row - 1]``, and a spreadsheet (which numbers the header 1)
    shows it as row ``row + 1``. ``line`` is where the row starts in the file, for messages
    pointing at it in an editor."""
    delimiter = TABLE_SUFFIXES[path.suffix.lower()]
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            if delimiter is not None:
                csv.field_size_limit(_FIELD_LIMIT)
                reader = csv.DictReader(f, delimiter=delimiter)
                columns = list(reader.fieldnames or [])  # reads the header
                rows, end = [], reader.line_num
                for row in reader:
                    rows.append((len(rows) + 1, end + 1, row))
                    end = reader.line_num
                return columns, rows
            rows, columns = [], {}
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}, line {n}: not a JSON object ({e.msg}).") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}, line {n}: not a JSON object.")
                columns.update(dict.fromkeys(row))
                rows.append((len(rows) + 1, n, {k: v for k, v in row.items()}))
            return list(columns), rows
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}).") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable table ({e}).") from None


def where_in_table(path: Path, row: int, line: int) -> str:
    """A table row for messages: ``reviews.csv, row 12 (line 15)``; the line is left out when
    it is the row's own (a JSON Lines file without blank lines)."""
    is_csv = TABLE_SUFFIXES[path.suffix.lower()] is not None
    if is_csv or line != row:
        return f"{path}, row {row} (line {line})"
    return f"{path}, row {row}"


def cell_count_problem(columns: Sequence[str], row: dict) -> str:
    """Why a CSV / TSV row read by :func:`read_table` cannot be trusted, or "": it has more
    cells than the header (``csv.DictReader`` files the extra ones under the key None: most
    often an unquoted delimiter inside a text) or fewer (it fills the missing ones with None).
    Such a row is skipped, never read with its cells shifted. A JSON Lines row is always ""."""
    extra = row.get(None)
    if extra is None and all(v is not None for v in row.values()):
        return ""
    cells = sum(v is not None for k, v in row.items() if k is not None) + len(extra or [])
    hint = "an unquoted comma or tab in a text?" if extra else "a missing delimiter?"
    plural = "s" if cells != 1 else ""
    return f"{cells} cell{plural}, {_HEADER_HAS} {len(columns)}: {hint}"


def cell_text(value) -> str:
    """A table cell as text: strings as they are, numbers and booleans as written in JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise DataError(f"a cell holds a {type(value).__name__}; texts and labels must be scalars.")


def from_table(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split_column: str = "split",
    labels: LabelFormat = LabelFormat(),
) -> DataSource:
    """A CSV / TSV / JSON Lines file of texts and labels (optional split column); ``labels``:
    how the label cells are read (several labels per text, see
    :class:`~headstart.core.labels.LabelFormat`)."""
    path = Path(path)
    refuse_empty_table(path, f"{text_column},{label_column}")
    columns, rows = read_table(path)
    missing = [c for c in (text_column, *(labels.columns or (label_column,))) if c not in columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; it has "
            f"{', '.join(map(repr, columns)) or 'no columns'}. Name the columns with "
            "--text-column / --label-column."
            + label_columns_hint(missing, label_column, columns, text_column)
            + column_hints(
                {"--text-column": text_column, "--label-column": label_column}, list(columns)
            )
        )
    if not rows:
        raise DataError(f"{path}: has a header but no rows.")
    by_split: dict[str, tuple[list[str], list[str], list[str]]] = {}
    skipped: list[dict[str, str]] = []
    former: dict[str, str] = {}
    is_csv = TABLE_SUFFIXES[path.suffix.lower()] is not None
    first_empty = None  # where the first empty label cell is (no label, multi-label)
    for number, line, row in rows:
        item_id = row_id(path.name, number)
        problem = cell_count_problem(columns, row) if is_csv else ""
        if problem:
            skipped.append({"path": item_id, "reason": f"line {line}: {problem}"})
            continue
        text = cell_text(row.get(text_column))
        cells = {c: cell_text(row.get(c)) for c in labels.columns or (label_column,)}
        label = labels.cell(cells, label_column, where_in_table(path, number, line))
        if not label and first_empty is None:
            first_empty = where_in_table(path, number, line)
        if not label and not labels.allows_empty():
            where = where_in_table(path, number, line)
            raise DataError(f"{where}: empty {label_column!r} cell.")
        if not text.strip():
            skipped.append({"path": item_id, "reason": f"empty {text_column!r} cell"})
            continue
        split = "train"
        raw = cell_text(row.get(split_column)).strip().lower() if split_column in columns else ""
        if raw:
            if raw not in SPLIT_ALIASES:
                where = where_in_table(path, number, line)
                raise DataError(f"{where}: split {raw!r} is not one of train, val, test.")
            split = SPLIT_ALIASES[raw]
        texts, cells_of_split, ids = by_split.setdefault(split, ([], [], []))
        texts.append(text)
        cells_of_split.append(label)
        ids.append(item_id)
        former[f"{path.name}:{line}"] = item_id  # its id in older runs' split.json: its line
    labels.check_empty({s: v[1] for s, v in by_split.items()}, first_empty, label_column)
    source = _source(by_split, path, "table", skipped, labels)
    source.former_ids = former
    return source


def _read_text(path: Path) -> tuple[str | None, str]:
    """(the file's text, "") or (None, why it is skipped: "empty" or "not UTF-8")."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (UnicodeDecodeError, OSError):
        return None, "not UTF-8"
    return (text, "") if text.strip() else (None, "empty")


def from_text_folder(root: str | Path) -> DataSource:
    """One subfolder per class of ``.txt`` files, optionally under train/ val/ test/."""
    root = Path(root)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = {
        SPLIT_ALIASES[p.name.lower()]: p for p in subdirs if p.name.lower() in SPLIT_ALIASES
    }
    tops = split_dirs if "train" in split_dirs else {"train": root}
    by_split: dict[str, tuple[list[str], list[str], list[str]]] = {}
    skipped: list[dict[str, str]] = []
    for split in SPLIT_NAMES:
        top = tops.get(split)
        if top is None:
            continue
        for class_dir in sorted(
            p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            for f in sorted(class_dir.rglob(f"*{TEXT_SUFFIX}")):
                rel = f.relative_to(root).as_posix()
                text, reason = _read_text(f)
                if text is None:
                    skipped.append({"path": rel, "reason": reason})
                    continue
                texts, labels, ids = by_split.setdefault(split, ([], [], []))
                texts.append(text)
                labels.append(class_dir.name)
                ids.append(rel)
    if not by_split.get("train"):
        raise DataError(
            f"{root}: no readable .txt files in class subfolders (cat/, dog/ holding "
            "*.txt), optionally under train/ val/ test/."
        )
    return _source(by_split, root, "text-folder", skipped)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _source(
    by_split: dict,
    where: Path,
    layout: str,
    skipped: list[dict[str, str]],
    labels: LabelFormat = LabelFormat(),
) -> DataSource:
    if "train" not in by_split:
        raise DataError(f"{where}: no texts belong to the train split.")
    keys = {s: f"{where} ({s} labels)" for s in by_split}
    encoded, names = labels.encode({keys[s]: v[1] for s, v in by_split.items()})
    sets = {
        s: TextSet(
            texts=texts,
            labels=encoded[keys[s]],
            class_names=names,
            name=s,
            origin=where.name,
            ids=ids,
        )
        for s, (texts, _, ids) in by_split.items()
    }
    notes = [f"{len(skipped)} text(s) skipped ({skip_kinds(skipped)})"] if skipped else []
    return DataSource(**sets, layout=layout, location=str(where), notes=notes, skipped=skipped)


def skip_kinds(skipped: Sequence[dict[str, str]]) -> str:
    """Why texts were skipped, for a one-line note: "empty or not UTF-8" and / or "wrong
    number of cells" (a table row, :func:`cell_count_problem`)."""
    ragged = sum(_HEADER_HAS in s["reason"] for s in skipped)
    kinds = ["empty or not UTF-8"] if ragged < len(skipped) else []
    return " or ".join(kinds + (["wrong number of cells"] if ragged else []))


def is_text_table(path: Path, *, text_column: str = "text") -> bool:
    """A TSV or JSON Lines file, or a CSV whose header has the text column."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".tsv"):
        return True
    if suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                return text_column in (next(csv.reader(f), None) or [])
        except (OSError, UnicodeDecodeError):
            return False
    return False


def load_text_source(
    location: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    labels: LabelFormat = LabelFormat(),
) -> DataSource:
    """A table (CSV, TSV, JSON Lines) or a folder of class subfolders of ``.txt`` files
    (``labels``: how a table's label cells are read)."""
    path = Path(location).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder.")
    if path.is_file():
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise DataError(
                f"{path}: unknown text layout. Give a .csv, .tsv or .jsonl table (columns "
                f"{text_column!r} and {label_column!r}) or a folder of class subfolders of "
                ".txt files."
            )
        return from_table(path, text_column=text_column, label_column=label_column, labels=labels)
    tables = sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
    has_dirs = any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())
    if len(tables) == 1 and not has_dirs:
        return from_table(
            tables[0], text_column=text_column, label_column=label_column, labels=labels
        )
    return from_text_folder(path)
