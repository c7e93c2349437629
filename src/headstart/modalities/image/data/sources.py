"""The lesson's three data layouts (and in-memory arrays) -> one :class:`DataSource`.

* **arrays**: a folder with ``train_images.npy`` / ``train_labels.npy`` and optionally ``val_*``
  and ``test_*`` (Dollar Street, as in the lesson; with no ``val_*``, ``test_*`` is the
  validation set, exactly as the lesson uses it). Arrays are memory-mapped, never pickled.
* **image folder**: one subfolder per class, optionally under ``train/``, ``val/`` (or
  ``validation/``) and ``test/`` (Keras ``flow_from_directory`` / ``image_dataset_from_directory``).
* **CSV**: ``filename,label`` rows (column names configurable, optional ``split`` column), paths
  relative to the CSV file.

Everything is validated here, once, with messages that name the file or value and the fix.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.core.datasource import SPLIT_ALIASES, DataSource, column_hints, refuse_empty_table
from headstart.core.labels import LabelFormat, encode_labels, label_columns_hint
from headstart.errors import DataError
from headstart.modalities.image.data.decode import is_image_path
from headstart.modalities.image.data.imageset import ImageSet

_CLASS_NAME_FILES = ("class_names.txt", "classes.txt")


# --------------------------------------------------------------------------- arrays


def check_image_array(a: np.ndarray, where: str) -> np.ndarray:
    """Validate an N-first image array without copying it (memory-maps stay memory-maps)."""
    if a.dtype == object:
        raise DataError(f"{where}: holds Python objects, not pixels; save a numeric array.")
    if a.dtype.kind not in "uif":
        raise DataError(f"{where}: dtype {a.dtype} is not an image type; use uint8 or float.")
    if a.ndim == 4 and a.shape[-1] not in (1, 3, 4) and a.shape[1] in (1, 3):
        raise DataError(
            f"{where}: shape {a.shape} looks channels-first (N, C, H, W); headstart expects "
            "N, H, W, C: pass images.transpose(0, 2, 3, 1)."
        )
    if not (a.ndim == 3 or (a.ndim == 4 and a.shape[-1] in (1, 3, 4))):
        raise DataError(
            f"{where}: shape {a.shape} is not an image batch; expected (N, H, W) greyscale or "
            "(N, H, W, C) with C = 1, 3 or 4."
        )
    if a.shape[0] == 0:
        raise DataError(f"{where}: holds no images (shape {a.shape}).")
    if a.shape[1] == 0 or a.shape[2] == 0:
        raise DataError(f"{where}: images have zero size (shape {a.shape}).")
    if a.dtype != np.uint8:
        lo, hi, finite = _chunked_range(a)
        if not finite:
            raise DataError(f"{where}: contains NaN or infinite pixel values; fix or drop them.")
        if a.dtype.kind == "f" and (lo < 0.0 or hi > 1.0):
            hint = " (it looks like 0..255: divide by 255 or store uint8)" if hi <= 255 else ""
            raise DataError(
                f"{where}: float images must lie in [0, 1]; found values {lo:g}..{hi:g}{hint}."
            )
        if a.dtype.kind in "iu" and (lo < 0 or hi > 255):
            raise DataError(
                f"{where}: integer images must lie in 0..255; found {lo:g}..{hi:g}. "
                "Rescale to uint8 first."
            )
    return a


def _chunked_range(a: np.ndarray, rows: int = 256) -> tuple[float, float, bool]:
    lo, hi = np.inf, -np.inf
    for start in range(0, len(a), rows):
        chunk = np.asarray(a[start : start + rows])
        if chunk.dtype.kind == "f" and not np.isfinite(chunk).all():
            return 0.0, 0.0, False
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    return lo, hi, True


def _array_sets(
    pairs: dict[str, tuple[np.ndarray, Sequence | np.ndarray, str]],
    class_names: Sequence[str] | None,
) -> dict[str, ImageSet]:
    """Build ImageSets from {split: (images, labels, origin)} with shared class names."""
    for images, labels, origin in pairs.values():
        check_image_array(images, origin)
        if len(images) != len(labels):
            raise DataError(
                f"{origin}: {len(images)} images but {len(labels)} labels; every image needs "
                "exactly one label."
            )
    encoded, names = encode_labels({o: lab for _, (_, lab, o) in pairs.items()}, class_names)
    return {
        split: ImageSet(
            labels=encoded[origin], class_names=names, array=images, name=split, origin=origin
        )
        for split, (images, _, origin) in pairs.items()
    }


def from_arrays(
    images: np.ndarray,
    labels: Sequence | np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    val_images: np.ndarray | None = None,
    val_labels: Sequence | np.ndarray | None = None,
    test_images: np.ndarray | None = None,
    test_labels: Sequence | np.ndarray | None = None,
) -> DataSource:
    """In-memory arrays (the Python API): images NHWC uint8 or float in [0, 1], or (N, H, W)."""
    pairs = {"train": (np.asarray(images), labels, "images")}
    for split, x, y in (("val", val_images, val_labels), ("test", test_images, test_labels)):
        if (x is None) != (y is None):
            raise DataError(f"{split}_images and {split}_labels must be given together.")
        if x is not None:
            pairs[split] = (np.asarray(x), y, f"{split}_images")
    sets = _array_sets(pairs, class_names)
    return DataSource(**sets, layout="in-memory", location="<arrays>")


def load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise DataError(
                f"{path}: holds Python objects (a pickled array), which headstart refuses to "
                "load for safety; save a numeric array with np.save."
            ) from None
        raise DataError(f"{path}: not a readable .npy array ({e}).") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read as a .npy array ({e}).") from None


def _read_class_names(folder: Path) -> list[str] | None:
    for name in _CLASS_NAME_FILES:
        f = folder / name
        if f.is_file():
            names = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if len(set(names)) != len(names):
                raise DataError(f"{f}: class names must be unique.")
            return names
    return None


def from_array_folder(folder: str | Path) -> DataSource:
    """The lesson's layout: ``train_images.npy`` + ``train_labels.npy`` [+ val_*, test_*]."""
    folder = Path(folder)
    notes: list[str] = []
    found: dict[str, tuple[Path, Path]] = {}
    for split, prefixes in (
        ("train", ("train",)),
        ("val", ("val", "validation")),
        ("test", ("test",)),
    ):
        for p in prefixes:
            x, y = folder / f"{p}_images.npy", folder / f"{p}_labels.npy"
            if x.exists() or y.exists():
                if not (x.exists() and y.exists()):
                    missing = y if x.exists() else x
                    raise DataError(f"{folder}: {missing.name} is missing (its pair is there).")
                found[split] = (x, y)
                break
    if "train" not in found:
        raise DataError(
            f"{folder}: no train_images.npy / train_labels.npy here. The arrays layout needs "
            "those two files (optionally val_* and test_*)."
        )
    if "test" in found and "val" not in found:
        found = {"train": found["train"], "val": found["test"]}
        notes.append(
            "test_images.npy is used as the validation set (as in the lesson); a test set, "
            "if any, is carved from train (see split)."
        )
    pairs = {
        split: (load_npy(x), np.asarray(load_npy(y)), x.name) for split, (x, y) in found.items()
    }
    sets = _array_sets(pairs, _read_class_names(folder))
    return DataSource(**sets, layout="arrays", location=str(folder), notes=notes)


# --------------------------------------------------------------------------- image folder


def _scan_class_dirs(split_root: Path, ignored: list[str]) -> dict[str, list[str]]:
    """{class name: sorted image paths} for the class subfolders of ``split_root``."""
    classes: dict[str, list[str]] = {}
    for entry in sorted(os.scandir(split_root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files: list[str] = []
            for dirpath, dirnames, filenames in os.walk(entry.path, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in sorted(filenames):
                    if f.startswith("."):
                        continue
                    full = os.path.join(dirpath, f)
                    (files if is_image_path(f) else ignored).append(full)
            classes[entry.name] = files
        elif entry.is_file():
            ignored.append(entry.path)
    return classes


def from_image_folder(root: str | Path) -> DataSource:
    """One subfolder per class, optionally inside ``train/``, ``val/``, ``test/`` split folders."""
    root = Path(root)
    subdirs = {e.name.lower(): Path(e.path) for e in os.scandir(root) if e.is_dir()}
    split_dirs = {SPLIT_ALIASES[n]: p for n, p in subdirs.items() if n in SPLIT_ALIASES}
    ignored: list[str] = []
    notes: list[str] = []
    if "train" in split_dirs:
        scanned = {s: _scan_class_dirs(p, ignored) for s, p in split_dirs.items()}
        for e in os.scandir(root):
            if e.is_file() and not e.name.startswith("."):
                ignored.append(e.path)
        extra = sorted(set(subdirs) - set(SPLIT_ALIASES))
        if extra:
            notes.append(f"folders beside the split folders were ignored: {', '.join(extra)}")
    else:
        if split_dirs:
            raise DataError(
                f"{root}: has {'/'.join(sorted(split_dirs))} folder(s) but no train/ folder. "
                "Add train/ (one subfolder per class), or put the class folders directly here."
            )
        scanned = {"train": _scan_class_dirs(root, ignored)}
    train_classes = scanned["train"]
    where = split_dirs.get("train", root)
    if not train_classes:
        raise DataError(
            f"{where}: no class subfolders found. Expected one folder per class holding its "
            f"images (e.g. {where}/cat/001.jpg, {where}/dog/002.jpg)."
        )
    empty = [c for c, files in train_classes.items() if not files]
    if empty:
        raise DataError(
            f"{where}: class folder(s) {', '.join(repr(c) for c in empty)} contain no images "
            "(looked for .jpg, .png, .bmp, .gif, .tif, .webp...); add images or remove them."
        )
    class_names = tuple(train_classes)  # already sorted by name
    sets: dict[str, ImageSet] = {}
    for split, classes in scanned.items():
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise DataError(
                f"{split_dirs[split]}: class folder(s) {', '.join(map(repr, unknown))} do not "
                "exist in train/; every class needs training images."
            )
        paths = [p for c in class_names for p in classes.get(c, [])]
        labels = [i for i, c in enumerate(class_names) for _ in classes.get(c, [])]
        if not paths:
            notes.append(f"{split_dirs[split]} holds no images and was ignored")
            continue
        sets[split] = ImageSet(
            labels=np.asarray(labels), class_names=class_names, paths=paths, root=root, name=split
        )
    if ignored:
        notes.append(f"{len(ignored)} non-image file(s) ignored")
    return DataSource(
        **sets, layout="image-folder", location=str(root), notes=notes, ignored_files=ignored
    )


# --------------------------------------------------------------------------- CSV


def from_csv(
    csv_path: str | Path,
    *,
    filename_column: str = "filename",
    label_column: str = "label",
    split_column: str = "split",
    labels: LabelFormat = LabelFormat(),
) -> DataSource:
    """A CSV of ``filename,label`` rows, paths relative to the CSV (an optional split column).
    ``labels``: how the label cells are read (several labels per image, see
    :class:`~headstart.core.labels.LabelFormat`)."""
    csv_path = Path(csv_path)
    base = csv_path.parent
    refuse_empty_table(csv_path, f"{filename_column},{label_column}")
    columns, rows = _csv_rows(csv_path, filename_column, label_column, labels)
    by_split: dict[str, tuple[list[str], list[str]]] = {}
    missing_files: list[str] = []
    first_empty = None  # where the first empty label cell is (no label, multi-label)
    for line, row in enumerate(rows, start=2):
        extra = row.get(None)  # csv.DictReader keeps cells beyond the header under None
        if extra:
            raise DataError(
                f"{csv_path}, line {line}: {len(columns) + len(extra)} cells, the header has "
                f"{len(columns)} (an unquoted comma in a file name?). Quote that cell or fix "
                "the row."
            )
        name = (row.get(filename_column) or "").strip()
        label = labels.cell(row, label_column, f"{csv_path}, line {line}")
        if not label and first_empty is None:
            first_empty = f"{csv_path}, line {line}"
        if not name or (not label and not labels.allows_empty()):
            raise DataError(
                f"{csv_path}, line {line}: empty {'filename' if not name else 'label'} cell."
            )
        split = _split_of(row, split_column, columns, f"{csv_path}, line {line}")
        path = Path(name) if os.path.isabs(name) else base / name
        if not path.is_file():
            missing_files.append(name)
        paths, cells_of_split = by_split.setdefault(split, ([], []))
        paths.append(str(path))
        cells_of_split.append(label)
    if missing_files:
        shown = ", ".join(missing_files[:5]) + (" ..." if len(missing_files) > 5 else "")
        raise DataError(
            f"{csv_path}: {len(missing_files)} listed file(s) do not exist (relative to "
            f"{base}): {shown}. Fix the paths or remove those rows."
        )
    if "train" not in by_split:
        raise DataError(f"{csv_path}: no rows belong to the train split.")
    cells = {f"{csv_path} ({s} labels)": labs for s, (_, labs) in by_split.items()}
    labels.check_empty(cells, first_empty, label_column)
    encoded, names = labels.encode(cells)
    sets = {
        s: ImageSet(
            labels=encoded[f"{csv_path} ({s} labels)"],
            class_names=names,
            paths=paths,
            root=base,
            name=s,
        )
        for s, (paths, _) in by_split.items()
    }
    return DataSource(**sets, layout="csv", location=str(csv_path))


def _csv_rows(csv_path: Path, filename_column, label_column, labels: LabelFormat):
    """The CSV's header and rows, once the columns asked for are known to be there."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            wanted = (filename_column, *(labels.columns or (label_column,)))
            missing = [c for c in wanted if c not in columns]
            if missing:
                raise DataError(
                    f"{csv_path}: column(s) {', '.join(map(repr, missing))} not found; the "
                    f"header has {', '.join(map(repr, columns)) or 'no columns'}. Name the "
                    "columns with --filename-column / "
                    + ("--label-columns." if labels.columns else "--label-column.")
                    + label_columns_hint(missing, label_column, columns, filename_column)
                    + column_hints(
                        {"--filename-column": filename_column, "--label-column": label_column},
                        list(columns),
                    )
                )
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise DataError(f"{csv_path}: not a UTF-8 text CSV ({e}).") from None
    if not rows:
        raise DataError(f"{csv_path}: has a header but no rows.")
    return columns, rows


def _split_of(row: dict, split_column: str, columns, where: str) -> str:
    """A row's split: its split cell (train, val, test or an alias), else train."""
    if split_column not in columns or not (row.get(split_column) or "").strip():
        return "train"
    raw = row[split_column].strip().lower()
    if raw not in SPLIT_ALIASES:
        raise DataError(f"{where}: split {row[split_column]!r} is not one of train, val, test.")
    return SPLIT_ALIASES[raw]


# --------------------------------------------------------------------------- dispatch


def _csv_has_column(csv_path: Path, column: str) -> bool:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            return column in (next(csv.reader(f), None) or [])
    except (OSError, UnicodeDecodeError):
        return False


def load_image_source(
    location: str | Path | DataSource,
    *,
    filename_column: str = "filename",
    label_column: str = "label",
    labels: LabelFormat = LabelFormat(),
) -> DataSource:
    """Detect the image layout at ``location`` (or a ``demo:NAME`` data set) and load it
    (``labels``: how a table's label cells are read)."""
    if isinstance(location, DataSource):
        return location
    text = str(location)
    if text.startswith("demo:"):
        from headstart.modalities.image.data.demo import demo_images

        train, note = demo_images(text.removeprefix("demo:"))
        return DataSource(train=train, layout="demo", location=text, notes=[note])
    path = Path(location).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder.")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return from_csv(
                path, filename_column=filename_column, label_column=label_column, labels=labels
            )
        if path.suffix.lower() == ".npy":
            raise DataError(
                f"{path}: point headstart at the folder holding train_images.npy and "
                "train_labels.npy, not at one array."
            )
        raise DataError(
            f"{path}: unknown layout. Give a folder (class subfolders or *_images.npy arrays) "
            "or a .csv of filename,label rows."
        )
    names = {p.name for p in path.iterdir()}
    if "train_images.npy" in names or "train_labels.npy" in names:
        return from_array_folder(path)
    if any(n.endswith(".npy") for n in names):
        raise DataError(
            f"{path}: has .npy files but no train_images.npy / train_labels.npy; rename them to "
            "the lesson's layout (train_*, optional val_* and test_*)."
        )
    csvs = sorted(n for n in names if n.lower().endswith(".csv"))
    has_dirs = any((path / n).is_dir() and not n.startswith(".") for n in names)
    # A folder holding one labels CSV (plus, often, an images/ folder) is the CSV layout.
    if len(csvs) == 1 and (not has_dirs or _csv_has_column(path / csvs[0], filename_column)):
        return from_csv(
            path / csvs[0],
            filename_column=filename_column,
            label_column=label_column,
            labels=labels,
        )
    if not has_dirs:
        raise DataError(
            f"{path}: empty or unknown layout. Expected class subfolders (cat/, dog/), "
            "train/ val/ split folders, *_images.npy arrays, or one labels .csv."
        )
    return from_image_folder(path)
