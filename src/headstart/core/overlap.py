"""Which examples a run trained on, by content: the training examples' hashes recorded beside
a run (``train_hashes.json``), the exact splits it used, and the checks that find its training
examples among the examples it (or a compared run) is scored on: scores on examples a model
trained on are optimistic, and evaluation says so."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.core.splits import ExampleSet, example_noun
from headstart.errors import HeadstartError
from headstart.io import atomic_write_json

#: Written beside a run at training time: content hashes of its training images.
TRAIN_HASHES = "train_hashes.json"


def write_train_hashes(run_dir: str | Path, hashes: Sequence[str | None]) -> Path:
    """Record the training images' content hashes beside a run (``train_hashes.json``)."""
    out = Path(run_dir) / TRAIN_HASHES
    atomic_write_json(
        out,
        {
            "method": "sha1 of each decoded image's RGB pixels and shape (not its path)",
            "n_images": len(hashes),
            "hashes": sorted({h for h in hashes if h}),
        },
    )
    return out


def run_splits(run):
    """The exact splits ``run`` trained on, re-read from its recorded data and split."""
    from headstart.core.data import load_data

    return load_data(
        run.config.data,
        split_record=run.split,
        modality=run.modality,
        filename_column=run.config.filename_column,
        label_column=run.config.label_column,
        text_column=run.config.text_column,
        labels=run.config.label_format(),
    )


def train_hashes(run) -> tuple[set[str] | None, str]:
    """(content hashes of ``run``'s training images, where they came from), or (None, why not).

    Read from the run's ``train_hashes.json``; for a run without one, its recorded training
    split is re-read and hashed. An in-memory run without the file cannot be checked.
    """
    from headstart.core.data import content_hashes

    if run.path is not None and (Path(run.path) / TRAIN_HASHES).is_file():
        try:
            payload = json.loads((Path(run.path) / TRAIN_HASHES).read_text())
            return set(payload["hashes"]), TRAIN_HASHES
        except (OSError, ValueError, KeyError, TypeError):
            pass  # damaged: re-read the data below
    if run.config.data is None:
        return None, (
            "this run was trained on in-memory arrays and recorded no hashes of its training images"
        )
    try:
        splits = run_splits(run)
    except HeadstartError as e:
        return None, f"the run's training data could not be re-read ({e})"
    hashes = content_hashes(splits.train)
    return {h for h in hashes if h}, f"the run's training data, re-read from {run.config.data}"


def lazy_hashes(images: ExampleSet):
    """A function giving ``images``' content hashes, computed on its first call only."""
    import functools

    from headstart.core.data import content_hashes

    return functools.cache(lambda: content_hashes(images))


def in_training(known: set[str], hashes, scored: np.ndarray) -> np.ndarray:
    """Which of the ``scored`` examples (indices) are training examples, by content."""
    return np.array([hashes()[i] in known for i in scored], dtype=bool)


def training_overlap(run, images: ExampleSet, valid, hashes) -> tuple[dict, np.ndarray | None]:
    """(record, which scored examples are ``run``'s training examples by content) for
    ``images`` read as ``valid``; ``hashes``: :func:`lazy_hashes` of ``images``. The record
    says how many (``n_overlap``, their first ids) with ``without_overlap`` left for the caller
    to score (None: no scored example, or every one, is a training example); the mask is None
    when the run's training examples cannot be known (``checked`` False, and why)."""
    known, source = train_hashes(run)
    if known is None:
        return {"checked": False, "reason": source}, None
    scored = np.flatnonzero(valid)
    dup = in_training(known, hashes, scored)
    return {
        "checked": True,
        "hashes_from": source,
        "n_images": int(len(scored)),
        "n_overlap": int(dup.sum()),
        "ids": [images.ids[i] for i in scored[dup][:50]],
        "without_overlap": None,  # set when some, not all, scored images are training images
    }, dup


def same_split(run, other) -> bool:
    """Whether two runs trained on the same examples (their recorded train splits agree)."""
    mine, theirs = (r.split or {} for r in (run, other))
    return bool(mine.get("train")) and mine.get("train") == theirs.get("train")


def seen_in_training(other, images: ExampleSet, keep, entry: dict, hashes, run=None) -> None:
    """A compared run trained on another split may have trained on the very examples it is
    scored on here (found by a first-time user: a run of another seed scored 100% on images
    it had trained on). Counts them by content in ``entry["other_train_overlap"]`` and says
    so in its verdict; ``hashes``: :func:`lazy_hashes` of ``images``. When ``run`` (the run
    it is compared with) trained on the same split, such examples are duplicates across that
    split, training examples of both: the verdict says both scores are optimistic."""
    known, _ = train_hashes(other)
    if not known:
        entry["other_train_overlap"] = None  # could not be checked
        return
    scored = np.flatnonzero(keep)
    seen = int(in_training(known, hashes, scored).sum())
    entry["other_train_overlap"] = seen
    if seen and run is not None and same_split(run, other):
        noun = example_noun(images)
        entry["verdict"] += (
            f" Both runs trained on the same split, and {seen:,} of these {len(scored):,} "
            f"{noun}s have the same content as training {noun}s of both (duplicates across "
            "the split): both scores here are optimistic alike."
        )
    elif seen:
        noun = example_noun(images)
        entry["verdict"] += (
            f" Caution: {seen:,} of these {len(scored):,} {noun}s are training {noun}s of "
            f"{entry['other']} (same content), so its score here is optimistic; compare runs "
            "trained on the same split (headstart train --config RUN/config.json replays a "
            "run's split)."
        )
