"""Stratified, seeded, *recorded* splits.

When the data brings no validation split, a stratified one is carved from train with a seed
(``val_split`` of the images, Keras' ``validation_split`` meaning); a test set may be carved the
same way. The result records every item's id per split, so a run can be replayed on exactly the
same images even if files are added to the folder later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from headstart.choices import AUTO_TEST_FRACTION, AUTO_TEST_MIN_MULTI_LABEL, AUTO_TEST_MIN_PER_CLASS
from headstart.core.datasource import SPLIT_NAMES, DataSource
from headstart.core.labels import separator_note
from headstart.core.tasks import label_counts
from headstart.errors import ConfigError, DataError

#: One split's examples: an ``ImageSet`` or a ``TextSet`` (``labels``, ``class_names``, ``ids``,
#: ``subset``, ``class_counts``, ``concat``).
ExampleSet = Any

#: How a score measured on the validation split is labelled wherever it is shown: that split
#: chose the best epoch (and, under ``--strategy auto``, the strategy).
OPTIMISTIC = "validation, used for model selection: optimistic"


def example_noun(examples: ExampleSet) -> str:
    """What one example is called in messages: "image", "text"."""
    return getattr(examples, "noun", "image")


#: Where a data layout (``DataSource.layout``) keeps a split it brings ("{split}": val, test).
GIVEN_BY = {
    "image-folder": "its {split}/ folder",
    "text-folder": "its {split}/ folder",
    "csv": "its split column",
    "table": "its split column",
    "arrays": "its .npy arrays",
    "in-memory": "the {split} examples passed in",
}

#: Data layouts read from a table, where the column settings (label, filename) apply.
TABLE_LAYOUTS = ("csv", "table")


def split_words(method: dict, split: str) -> str:
    """How a run's ``split`` (val or test) came to be, in plain words, from its recorded
    ``method``: given by the data (and where), carved from train (and how much), or none."""
    how = method.get(split, "none")
    if how == "given":
        where = GIVEN_BY.get(method.get("layout", ""))
        return "given by the data" + (f": {where.format(split=split)}" if where else "")
    if how.startswith("stratified "):
        share = float(how.split()[1])
        return f"carved: {share:.0%} of train, stratified"
    return how


def score_label(split: str) -> str:
    """What a score on ``split`` (train / val / test) means, in the words every screen uses."""
    if split == "test":
        return "test split, not used for model selection"
    if split == "val":
        return OPTIMISTIC
    return f"{split} split"


def check_split_fractions(val_split: float, test_split: float | None) -> None:
    """The split fractions a run is given: validation in (0, 1), test (None: auto) in [0, 1),
    the two together under 1. Checked by the configuration, before any data is read."""
    if not 0.0 < val_split < 1.0:
        raise ConfigError(f"--val-split must be between 0 and 1 (exclusive); got {val_split}.")
    if test_split is None:
        return
    if not 0.0 <= test_split < 1.0 or val_split + test_split >= 1.0:
        raise ConfigError(
            f"--test-split must be in [0, 1) and --val-split + --test-split < 1; got "
            f"{test_split} (--val-split {val_split})."
        )


def auto_test_split(pool: ExampleSet) -> float:
    """The test fraction ``test_split=None`` means for ``pool``: see ``AUTO_TEST_FRACTION``."""
    if np.ndim(pool.labels) == 2:  # multi-label: rare labels are the rule, not the exception
        return AUTO_TEST_FRACTION if len(pool) >= AUTO_TEST_MIN_MULTI_LABEL else 0.0
    counts = pool.class_counts()
    present = counts[counts > 0]
    if len(present) and present.min() >= AUTO_TEST_MIN_PER_CLASS:
        return AUTO_TEST_FRACTION
    return 0.0


@dataclass
class Splits:
    """The train / val / (test) sets a run uses, plus how they were made."""

    train: ExampleSet
    val: ExampleSet
    test: ExampleSet | None = None
    method: dict = field(default_factory=dict)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    def items(self) -> dict[str, ExampleSet]:
        return {
            n: s for n, s in zip(SPLIT_NAMES, (self.train, self.val, self.test)) if s is not None
        }

    def record(self) -> dict:
        """JSON-ready: class names, how the split was made and the ids in each split."""
        return {
            "class_names": list(self.class_names),
            "method": self.method,
            **{name: list(s.ids) for name, s in self.items().items()},
        }


def too_few_to_split(labels: np.ndarray, class_names: tuple[str, ...]) -> dict[str, int]:
    """Classes with fewer than 2 images: they cannot appear in both train and validation."""
    counts = label_counts(labels, len(class_names))
    return {class_names[i]: int(c) for i, c in enumerate(counts) if 0 < c < 2}


def _stratified_carve(
    pool: ExampleSet, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Positions (keep, carved) of ``pool`` with ``fraction`` carved out, stratified by class
    (several labels per example: by iterative stratification)."""
    if np.ndim(pool.labels) == 2:
        return _multi_label_carve(pool, fraction, seed, what)
    noun = example_noun(pool)
    small = too_few_to_split(pool.labels, pool.class_names)
    if small:
        listed = ", ".join(f"{c!r} ({n} {noun})" for c, n in small.items())
        raise DataError(
            f"class(es) {listed} have too few {noun}s to split into train and {what}: add "
            f"{noun}s, remove the class, or provide a {what} split."
        )
    n = len(pool)
    present = int((pool.class_counts() > 0).sum())
    n_carve = int(round(fraction * n))
    note = None
    if n_carve < present:
        n_carve = present
        note = f"{what} split raised to {present} {noun}s so every class appears once"
    if n - n_carve < present:
        raise DataError(
            f"{n} {noun}s are too few to hold out {n_carve} for {what} and still train on "
            f"every one of {present} classes; lower the split fraction or add {noun}s."
        )
    from sklearn.model_selection import train_test_split  # 1 s of imports: only when used

    keep, carved = train_test_split(
        np.arange(n), test_size=n_carve, stratify=pool.labels, random_state=seed, shuffle=True
    )
    return _together(pool, keep, carved, note, what)


def _together(pool: ExampleSet, keep, carved, note: str | None, what: str):
    """Copies of one example kept on one side of the carve (where the modality hashes
    examples without decoding them: texts), the move added to the carve's note."""
    if "group-duplicates" in getattr(pool, "capabilities", ()):
        keep, carved, moved = _keep_duplicates_together(pool, keep, carved)
        if moved:
            # one note per carve (test, then validation), each naming its split
            together = (
                f"{moved} duplicate {example_noun(pool)}(s) moved so that copies stay on one "
                f"side of the {what} split"
            )
            note = f"{note}; {together}" if note else together
    return np.sort(keep), np.sort(carved), note


def _multi_label_carve(
    pool: ExampleSet, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Multi-label carve: iterative stratification (Sechidis, Tsoumakas and Vlahavas, ECML
    PKDD 2011, as second-order stratification in ``iterative-stratification``), which keeps
    each label's share, rare labels first, on both sides. A label of one example cannot be on
    both: the note names such labels; they are learnt from train or scored, not both."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    noun = example_noun(pool)
    n = len(pool)
    n_carve = int(round(fraction * n))
    if n_carve < 1 or n - n_carve < 1:
        raise DataError(
            f"{n} {noun}s are too few to hold out {fraction:g} of them for {what} and still "
            f"train on the rest; add {noun}s or provide a {what} split."
        )
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_carve, random_state=seed)
    keep, carved = next(splitter.split(np.zeros((n, 1)), pool.labels))
    note = None
    single = too_few_to_split(pool.labels, pool.class_names)
    if single:
        listed = ", ".join(map(repr, single))
        note = f"label(s) {listed} have one {noun}: on one side of the {what} split only"
    return _together(pool, keep, carved, note, what)


def _keep_duplicates_together(
    pool: ExampleSet, keep: np.ndarray, carved: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Move copies of one example (same content hash) to the side most of them landed on
    (the kept side on a tie), so a carved split never scores a model on what it trained on
    (copies of an example share its labels: a class is never emptied by a move; with several
    labels per example, the label shares iterative stratification balanced may shift a little).
    Only for examples hashed without decoding (texts). Returns (keep, carved, moved)."""
    from headstart.core.modality import modality_of

    hashes = modality_of(pool).content_hashes(pool)  # (texts: no bar)
    side = np.zeros(len(pool), dtype=bool)  # True: carved
    side[carved] = True
    groups: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        if h is not None:
            groups.setdefault(h, []).append(i)
    moved = 0
    for members in groups.values():
        sides = side[members]
        if len(members) < 2 or sides.all() or not sides.any():
            continue
        to_carved = bool(sides.sum() * 2 > len(members))
        leaving = [i for i in members if side[i] != to_carved]
        after = side.copy()
        after[leaving] = to_carved
        if _empties_a_side(pool.labels, side, after, leaving, to_carved):
            continue  # leave these copies apart
        moved += len(leaving)
        side = after
    return np.flatnonzero(~side), np.flatnonzero(side), moved


def _empties_a_side(labels: np.ndarray, side, after, leaving, to_carved: bool) -> bool:
    """Whether moving ``leaving`` (``side`` -> ``after``; True: carved) would empty a class
    on one side, or with several labels per example leave a side without a label it had, or
    without any example."""
    if labels.ndim == 1:
        return any(not (after[labels == labels[i]] != to_carved).any() for i in leaving)
    if after.all() or not after.any():
        return True
    for before_side, after_side in ((~side, ~after), (side, after)):
        had = labels[before_side].any(axis=0)
        if (had & ~labels[after_side].any(axis=0)).any():
            return True
    return False


def carve_note(fraction: float, n_used: int, noun: str, left_out: int = 0) -> str:
    """The note of a test split carved by the automatic rule, counting the examples it scores
    (``left_out``: unreadable ones that fell in it, found when decoded)."""
    left = (
        f", after leaving out {left_out} unreadable {noun}(s) that fell in it" if left_out else ""
    )
    return (
        f"carved a stratified {fraction:.0%} test split from train ({n_used} "
        f"{noun if n_used == 1 else noun + 's'}{left}) to "
        "report an unbiased score; --test-split 0 keeps none"
    )


def split_notes(
    method: dict, listed: dict[str, int], used: dict[str, int], noun: str = "image"
) -> list[str]:
    """The notes of a split ``method`` with every count of the examples actually used:
    ``listed`` holds, per split, how many examples it lists, ``used`` how many of them
    decode. Splits are carved from the listed files, before any is decoded, so an unreadable
    file can fall into a carved split; the note says so there, and counts without it."""
    notes = list(method.get("notes", []))
    carved = method.get("auto_test")
    for name, n_used in used.items():
        left_out = listed.get(name, n_used) - n_used
        if left_out <= 0:
            continue
        if carved and name == "test":
            old = carve_note(carved["fraction"], carved["n"], noun)
            new = carve_note(carved["fraction"], n_used, noun, left_out)
            notes = [new if note == old else note for note in notes]
        elif str(method.get(name, "")).startswith("stratified"):
            notes.append(
                f"{left_out} unreadable {noun}(s) fell in the carved {name} split and are left "
                f"out: it holds {n_used} {noun}s"
            )
    return notes


def left_out_text(n_unreadable: dict[str, int], method: dict) -> str:
    """Where a run's unreadable examples were left out, as "1 of the carved test split", from
    its per-split counts (its metrics' ``n_unreadable``) and split method; "" when none."""
    return ", ".join(
        f"{k} of the {'carved ' if str(method.get(name, '')).startswith('stratified') else ''}"
        f"{name} split"
        for name, k in n_unreadable.items()
        if k
    )


def make_splits(
    source: DataSource, *, val_split: float = 0.2, test_split: float | None = None, seed: int = 0
) -> Splits:
    """Use the source's own splits where given; carve the missing ones stratified from train.

    ``test_split=None`` carves a test set by the rule of :func:`auto_test_split` when the data
    has none; ``0`` carves none (the validation split is then the only score, and optimistic).
    """
    noun = example_noun(source.train)
    method: dict = {"seed": seed, "val": "given", "test": "none", "notes": []}
    method["layout"] = source.layout  # where a given split came from (split_words)
    odd = separator_note(source.class_names, np.ndim(source.train.labels) == 2, noun)
    if odd:
        method["notes"].append(odd)
    labels = source.train.labels
    if np.ndim(labels) == 2 and len(labels) and (labels.sum(axis=1) == 1).all():
        method["notes"].append(
            f"every {noun} has exactly one label: one class per {noun} written one-hot (a 0/1 "
            "matrix or 0/1 columns)? Give one class each instead (labels.argmax(axis=1), or a "
            "label column) to train a classifier of one class; as given, each label is learnt "
            "on its own"
        )
    if source.skipped:
        method["skipped"] = list(source.skipped)  # in no split: listed with the run
    auto = test_split is None
    if auto:
        test_split = auto_test_split(source.train) if source.test is None else 0.0
        method["test_rule"] = (
            f"auto: {AUTO_TEST_FRACTION:g} of train when every class has at least "
            f"{AUTO_TEST_MIN_PER_CLASS} {noun}s"
            if np.ndim(source.train.labels) == 1
            else f"auto: {AUTO_TEST_FRACTION:g} of train when there are at least "
            f"{AUTO_TEST_MIN_MULTI_LABEL} {noun}s (several labels per {noun})"
        )
    check_split_fractions(val_split, test_split)
    pool = source.train
    n_pool = len(pool)
    test = source.test
    if test is not None:
        method["test"] = "given"
        if test_split > 0:
            method["notes"].append("test_split ignored: the data brings its own test set")
    elif test_split > 0:
        keep, carved, note = _stratified_carve(pool, test_split, seed, "test")
        test, pool = pool.subset(carved, "test"), pool.subset(keep, "train")
        method["test"] = f"stratified {test_split:g} of train"
        if note:
            method["notes"].append(note)
        if auto:
            method["auto_test"] = {"fraction": test_split, "n": len(test)}
            method["notes"].append(carve_note(test_split, len(test), noun))
    elif auto and source.test is None:
        method["notes"].append(
            (
                f"no test split: a class has fewer than {AUTO_TEST_MIN_PER_CLASS} {noun}s"
                if np.ndim(source.train.labels) == 1
                else f"no test split: fewer than {AUTO_TEST_MIN_MULTI_LABEL} {noun}s"
            )
            + ", so the score is measured on validation, which chose the model (optimistic)"
        )
    val = source.val
    if val is None:
        fraction = val_split * n_pool / len(pool)
        keep, carved, note = _stratified_carve(pool, min(fraction, 0.95), seed + 1, "validation")
        val, pool = pool.subset(carved, "val"), pool.subset(keep, "train")
        method["val"] = f"stratified {val_split:g} of train"
        if note:
            method["notes"].append(note)
    return Splits(
        train=pool.subset(np.arange(len(pool)), "train"), val=val, test=test, method=method
    )


def splits_from_record(source: DataSource, record: dict) -> Splits:
    """Rebuild the exact split a run used; missing items are a clear error, not a silent change."""
    noun = example_noun(source.train)
    if list(record.get("class_names", [])) != list(source.class_names):
        raise DataError(
            "the recorded split's classes "
            f"({', '.join(record.get('class_names', []))}) differ from the data's "
            f"({', '.join(source.class_names)}); is this the same data set?"
        )
    where: dict[str, tuple[ExampleSet, int]] = {}
    for s in source.splits().values():
        for pos, item_id in enumerate(s.ids):
            where[item_id] = (s, pos)
    renamed = False
    if not any(i in where for name in SPLIT_NAMES for i in record.get(name) or ()):
        # recorded under the names of an older version: the rows keep the ids recorded
        renamed = True
        where = {old: where[new] for old, new in source.former_ids.items() if new in where}
    sets: dict[str, ExampleSet] = {}
    for name in SPLIT_NAMES:
        ids = record.get(name)
        if ids is None:
            continue
        missing = [i for i in ids if i not in where]
        if missing:
            raise DataError(
                f"{len(missing)} {noun}(s) of the recorded {name} split are no longer in the "
                f"data (first: {missing[0]}); the run cannot be reproduced on this data."
            )
        parts: list[ExampleSet] = []
        group: list[int] = []
        current = None
        for item_id in ids:  # keep recorded order; group consecutive items of one source set
            s, pos = where[item_id]
            if s is not current and group:
                parts.append(current.subset(group, name))
                group = []
            current = s
            group.append(pos)
        if group:
            parts.append(current.subset(group, name))
        sets[name] = parts[0] if len(parts) == 1 else type(parts[0]).concat(parts, name)
        if renamed:
            sets[name].ids = list(ids)  # as every file of that run names them
    if "train" not in sets or "val" not in sets:
        raise DataError("the split record lacks a train or val list; it is not a headstart split.")
    return Splits(
        train=sets["train"],
        val=sets["val"],
        test=sets.get("test"),
        method=dict(record.get("method", {}), replayed=True, skipped=list(source.skipped)),
    )
