"""``headstart inspect``: a picture of the data a person can act on before any training.

One pass decodes every image (in a few threads; PIL releases the GIL while decoding), so
corrupt files are found now rather than an hour into training, and every decoded image is
hashed so exact duplicates -- within a split and, worse, *across* splits (leakage that inflates
validation accuracy) -- are listed. The figures every model must beat (the majority-class
baseline) and the imbalance that should change the training recipe are computed here too.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from headstart.core.datasource import DataSource
from headstart.core.inspection import (
    group_duplicates,
    imbalance_ratio,
    label_set_facts,
    label_set_rows,
    leakage_warning,
    plan_and_baseline,
    split_warnings,
)
from headstart.core.splits import too_few_to_split
from headstart.core.tasks import uncount
from headstart.modalities.image.data.decode import UnreadableImage, decode_image
from headstart.modalities.image.data.imageset import ImageSet, array_item_to_rgb
from headstart.progress import progress_bar

#: A class with fewer images than this gets a warning: too few to learn or to measure.
FEW_IMAGES = 5


@dataclass
class Inspection:
    """Everything ``inspect`` found; :meth:`to_dict` is the JSON written beside a run."""

    layout: str
    location: str
    class_names: list[str]
    counts: dict[str, list[int]]
    image_sizes: dict[str, object]
    modes: dict[str, int]
    imbalance_ratio: float
    majority_baseline: dict[str, object]
    unreadable: list[dict[str, str]] = field(default_factory=list)
    duplicates_within: dict[str, list[list[str]]] = field(default_factory=dict)
    duplicates_across: list[dict[str, object]] = field(default_factory=list)
    too_few_to_split: dict[str, int] = field(default_factory=dict)
    few_images: dict[str, int] = field(default_factory=dict)
    ignored_files: int = 0
    notes: list[str] = field(default_factory=list)
    planned_split: dict[str, list[int]] = field(default_factory=dict)
    split_method: dict[str, object] = field(default_factory=dict)
    #: per split, each image's content hash (:func:`image_hash`; None if unreadable). Kept out
    #: of :meth:`to_dict`; the run directory records the training images' in train_hashes.json.
    item_hashes: dict[str, list[str | None]] = field(default_factory=dict, repr=False)
    #: what holds each image, in messages: files, or copies (images in arrays)
    item_word: str = "files"
    #: several labels per example: :func:`~headstart.core.inspection.label_set_facts` of
    #: train, and the examples per split (``counts`` then count labels, not examples)
    label_sets: dict | None = None
    n_per_split: dict[str, int] = field(default_factory=dict)

    @property
    def n_images(self) -> dict[str, int]:
        return self.n_per_split or {s: int(sum(c)) for s, c in self.counts.items()}

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["item_hashes"]
        d["warnings"] = self.warnings()  # what the terminal's "worth a look" box says
        d["n_images"] = self.n_images
        return d

    def facts(self) -> list[tuple[str, str]]:
        """The rows particular to images, for the terminal and the report."""
        rows = []
        sizes = self.image_sizes
        if sizes:
            common = ", ".join(f"{h}x{w} ({n})" for h, w, n in sizes["most_common"][:3])
            rows.append(
                ("image sizes (HxW)", f"{sizes['distinct']} distinct; most common {common}")
            )
            rows.append(
                (
                    "",
                    f"min {sizes['min_hw'][0]}x{sizes['min_hw'][1]}, "
                    f"max {sizes['max_hw'][0]}x{sizes['max_hw'][1]}",
                )
            )
        rows.append(("modes", ", ".join(f"{m} ({n})" for m, n in self.modes.items()) or "-"))
        if self.label_sets:
            rows += label_set_rows(self.label_sets, "image")
        if self.ignored_files:
            rows.append(("ignored", f"{self.ignored_files} non-image file(s)"))
        return rows

    def warnings(self) -> list[str]:
        """The findings that should change what the user does next, in plain words."""
        first, last = split_warnings(self, "image", FEW_IMAGES)
        out = first
        if self.unreadable:
            out.append(f"{len(self.unreadable)} unreadable image(s) will be skipped")
        leak = leakage_warning(self.duplicates_across, "image", self.item_word)
        if leak:
            out.append(leak)
        n_dup = sum(len(g) - 1 for groups in self.duplicates_within.values() for g in groups)
        if n_dup:
            out.append(f"{n_dup} exact duplicate image(s) within splits")
        return out + last


def image_hash(img: np.ndarray) -> str:
    """Content hash of one decoded image: sha1 of its RGB pixels and shape (not its path)."""
    digest = hashlib.sha1(np.ascontiguousarray(img).tobytes())
    digest.update(str(img.shape).encode())
    return digest.hexdigest()


def _scan_all(s: ImageSet, desc: str, workers: int) -> Iterator[tuple]:
    """:func:`_scan_item` of every image of ``s``, in order, decoded in threads."""
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        progress_bar(total=len(s), desc=desc, unit="img") as bar,
    ):
        for item in pool.map(lambda i: _scan_item(s, i), range(len(s)), chunksize=32):
            bar.update()
            yield item


def hash_images(s: ImageSet, *, workers: int = 4) -> list[str | None]:
    """:func:`image_hash` of every image of ``s`` (None where unreadable), decoded in threads."""
    return [digest for _size, _mode, digest, _reason in _scan_all(s, "hashing", workers)]


def _scan_item(s: ImageSet, i: int) -> tuple[tuple[int, int] | None, str, str | None, str]:
    """(size (h, w) or None, mode, sha1 of pixels or None, error reason or '')."""
    if s.is_array:
        raw = s.array[int(s.index[i])]
        channels = 1 if raw.ndim == 2 else raw.shape[2]
        img = array_item_to_rgb(raw)
        mode = f"array {raw.dtype} {channels}ch"
    else:
        info: dict = {}
        try:
            img = decode_image(s.paths[i], info=info)
        except UnreadableImage as e:
            return None, "unreadable", None, e.reason
        mode = info.get("mode", "?")
    return img.shape[:2], mode, image_hash(img), ""


def scan_unreadable(
    images: ImageSet, *, workers: int = 4
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """(positions that decode, the unreadable ones as {path, id, reason}) of ``images``.

    Training on the fly decodes images every step, so it learns here, once, which files are
    broken: they are left out of every count and listed, as the feature cache does.
    """
    if images.is_array:
        return np.arange(len(images)), []
    bad: list[dict[str, str]] = []
    ok = np.ones(len(images), dtype=bool)
    scanned = _scan_all(images, f"checking {images.name}", workers)
    for i, (size, _mode, _digest, reason) in enumerate(scanned):
        if size is None:
            ok[i] = False
            bad.append({"path": images.describe(i), "id": images.ids[i], "reason": reason})
    return np.flatnonzero(ok), bad


def _size_summary(sizes: Counter) -> dict:
    """Image sizes (height, width): smallest, largest, median, the most common."""
    heights = [h for (h, _w) in sizes.elements()]
    widths = [w for (_h, w) in sizes.elements()]
    if not heights:
        return {}
    return {
        "min_hw": [int(min(heights)), int(min(widths))],
        "max_hw": [int(max(heights)), int(max(widths))],
        "median_hw": [int(np.median(heights)), int(np.median(widths))],
        "most_common": [[h, w, n] for (h, w), n in sizes.most_common(5)],
        "distinct": len(sizes),
    }


def inspect_source(
    source: DataSource,
    *,
    val_split: float = 0.2,
    test_split: float | None = None,
    seed: int = 0,
    workers: int = 4,
    desc: str = "inspecting",
) -> Inspection:
    """Decode and hash every image of every split of ``source`` and summarise what was found
    (``desc`` labels the progress line).

    The split a training run would use (``val_split``, ``test_split``, ``seed``) is planned too,
    so its per-class counts, or the reason it is impossible, are part of the report.
    """
    splits = source.splits()
    names = list(source.class_names)
    counts = {n: s.class_counts().tolist() for n, s in splits.items()}
    n_per_split = {n: len(s) for n, s in splits.items()}
    sizes: Counter = Counter()
    modes: Counter = Counter()
    unreadable: list[dict[str, str]] = []
    by_hash: dict[str, list[tuple[str, str]]] = defaultdict(list)
    unreadable_ids: set[str] = set()
    item_hashes: dict[str, list[str | None]] = {n: [None] * len(s) for n, s in splits.items()}
    total = sum(len(s) for s in splits.values())
    jobs = [(name, s, i) for name, s in splits.items() for i in range(len(s))]
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        progress_bar(total=total, desc=desc, unit="img") as bar,
    ):
        results = pool.map(lambda job: _scan_item(job[1], job[2]), jobs, chunksize=32)
        for (split, s, i), (size, mode, digest, reason) in zip(jobs, results):
            bar.update()
            if size is None:
                unreadable.append({"split": split, "path": s.describe(i), "reason": reason})
                unreadable_ids.add(s.ids[i])
                uncount(counts[split], s.labels[i])
                n_per_split[split] -= 1
                continue
            sizes[size] += 1
            modes[mode] += 1
            by_hash[digest].append((split, s.ids[i]))
            item_hashes[split][i] = digest
    within, across = group_duplicates(by_hash)
    train_counts = np.asarray(counts["train"])
    image_sizes = _size_summary(sizes)
    labels = source.train.labels
    small = too_few_to_split(labels, source.class_names) if source.val is None else {}
    few = {names[i]: int(c) for i, c in enumerate(train_counts) if 0 < c < FEW_IMAGES}
    planned_counts, split_method, baseline = plan_and_baseline(
        source, counts, unreadable_ids, val_split=val_split, test_split=test_split, seed=seed
    )
    return Inspection(
        planned_split=planned_counts,
        split_method=split_method,
        layout=source.layout,
        location=source.location,
        class_names=names,
        counts=counts,
        image_sizes=image_sizes,
        modes=dict(modes.most_common()),
        imbalance_ratio=imbalance_ratio(train_counts),
        majority_baseline=baseline,
        unreadable=unreadable,
        duplicates_within=within,
        duplicates_across=across,
        too_few_to_split={k: v for k, v in small.items()},
        few_images=few,
        ignored_files=len(source.ignored_files),
        notes=list(source.notes),
        item_hashes=item_hashes,
        item_word="files" if all(s.paths is not None for s in splits.values()) else "copies",
        label_sets=label_set_facts(labels, names, FEW_IMAGES) if labels.ndim == 2 else None,
        n_per_split=n_per_split if labels.ndim == 2 else {},
    )
