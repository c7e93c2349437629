"""What every modality's inspection shares: the split a training run would carve, the
majority-class baseline scored where a model is scored, and duplicates grouped by content
within and across splits (leakage)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from headstart.core.datasource import DataSource
from headstart.core.splits import example_noun, make_splits, split_notes
from headstart.core.tasks import label_counts
from headstart.errors import HeadstartError


def leakage_warning(
    duplicates_across: list[dict], noun: str = "image", items: str = "files"
) -> str:
    """The sentence for examples found in more than one split (``duplicates_across``, as in
    inspection.json), naming the scores they inflate; "" when there are none. ``noun``: one
    example ("image", "text"); ``items``: what holds each copy (an inspection's
    ``item_word``: files, rows of a table, or copies for examples in memory)."""
    if not duplicates_across:
        return ""
    n_items = sum(len(d["ids"]) for d in duplicates_across)
    inflated = sorted({s for d in duplicates_across for s in d["splits"]} - {"train"})
    return (
        f"{len(duplicates_across)} {noun}(s) appear in more than one split ({n_items} {items}): "
        f"scores on {' and '.join(inflated)} will be optimistic"
    )


def recorded_leakage(inspection: dict) -> str:
    """:func:`leakage_warning` of an inspection as recorded in a run's inspection.json (one
    written before it said its modality and ``item_word`` is an image inspection's)."""
    noun = inspection.get("modality", "image")
    items = inspection.get("item_word") or ("files" if noun == "image" else "copies")
    return leakage_warning(inspection.get("duplicates_across") or [], noun, items)


def group_duplicates(
    by_hash: dict[str, list[tuple[str, str]]],
) -> tuple[dict[str, list[list[str]]], list[dict[str, object]]]:
    """(duplicates within each split, duplicates across splits) from content hash -> [(split,
    id)]."""
    within: dict[str, list[list[str]]] = defaultdict(list)
    across: list[dict[str, object]] = []
    for members in by_hash.values():
        if len(members) < 2:
            continue
        split_set = sorted({sp for sp, _ in members})
        if len(split_set) > 1:
            across.append({"splits": split_set, "ids": [f"{sp}:{i}" for sp, i in members]})
        for sp in split_set:
            ids = [i for s2, i in members if s2 == sp]
            if len(ids) > 1:
                within[sp].append(ids)
    return dict(within), across


def plan_and_baseline(
    source: DataSource,
    counts: dict[str, list[int]],
    skipped_ids: set[str],
    *,
    val_split: float,
    test_split: float | None,
    seed: int,
) -> tuple[dict[str, list[int]], dict, dict]:
    """(planned per-class counts per split, how the split is made or why it cannot be, the
    majority-class baseline). Planned counts leave out ``skipped_ids`` (unreadable examples),
    as training will; the baseline is train's largest class scored on validation."""
    names = list(source.class_names)
    try:
        planned = make_splits(source, val_split=val_split, test_split=test_split, seed=seed)
        used = {  # the positions training would read: unreadable examples left out
            n: [k for k, i in enumerate(s.ids) if i not in skipped_ids]
            for n, s in planned.items().items()
        }
        planned_counts = {
            n: label_counts(s.labels[used[n]], len(names)).tolist()
            for n, s in planned.items().items()
        }
        split_method = dict(planned.method)
        # (several labels per example: the counts above count labels, so examples are apart)
        split_method["planned_examples"] = {n: len(u) for n, u in used.items()}
        split_method["notes"] = split_notes(
            planned.method,
            {n: len(s) for n, s in planned.items().items()},
            split_method["planned_examples"],
            example_noun(source.train),
        )
    except HeadstartError as e:
        planned_counts, split_method = {}, {"error": str(e)}
    train_counts = np.asarray(counts["train"])
    if np.ndim(source.train.labels) == 2:
        return planned_counts, split_method, _frequency_baseline(source, planned, split_method)
    majority = int(np.argmax(planned_counts.get("train", counts["train"])))
    if "val" in counts:
        eval_split, eval_counts = "val", np.asarray(counts["val"])
    elif "val" in planned_counts:
        eval_split, eval_counts = "val (planned)", np.asarray(planned_counts["val"])
    else:
        eval_split, eval_counts = "train", train_counts
    baseline = {
        "class": names[majority],
        "accuracy": float(eval_counts[majority] / max(1, eval_counts.sum())),
        "evaluated_on": eval_split,
    }
    return planned_counts, split_method, baseline


def _frequency_baseline(source: DataSource, planned, split_method: dict) -> dict:
    """Multi-label's majority class: the label-frequency predictor (each label's training
    share as its probability, thresholds chosen on validation), its micro-F1 on validation
    (the planned one when the data brings none; train when no split can be made)."""
    from headstart.core.multilabel import choose_thresholds, frequency_baseline, multilabel_metrics

    if split_method.get("error"):
        train, held, where = source.train.labels, source.train.labels, "train"
    else:
        train, held = planned.train.labels, planned.val.labels
        where = "val" if source.val is not None else "val (planned)"
    proba = frequency_baseline(train, len(held))
    thresholds, _ = choose_thresholds(held, proba)
    m = multilabel_metrics(held, proba, thresholds, source.class_names, n_boot=0, curves=False)
    on = [c for c, t, p in zip(source.class_names, thresholds, proba[0]) if p >= t]
    return {
        "kind": "label-frequency",
        "labels": on,
        "micro_f1": m["micro_f1"],
        "evaluated_on": where,
    }


def label_set_facts(labels: np.ndarray, names, few: int) -> dict:
    """What a multi-label data set's labels look like (``labels``: train's 0/1 matrix):
    labels per example (cardinality), distinct label sets, examples with no label, the pairs
    of labels seen together most often, and labels too rare to learn (fewer than ``few``
    training examples)."""
    labels = np.asarray(labels, np.int64)
    counts = labels.sum(axis=0)
    together = labels.T @ labels
    pairs = [
        (names[a], names[b], int(together[a, b]))
        for a in range(len(names))
        for b in range(a + 1, len(names))
        if together[a, b]
    ]
    pairs.sort(key=lambda t: -t[2])
    return {
        "cardinality": float(labels.sum(axis=1).mean()) if len(labels) else 0.0,
        "distinct_sets": len({row.tobytes() for row in labels}),
        "no_label": int((labels.sum(axis=1) == 0).sum()),
        "co_occurrence": [{"labels": [a, b], "count": n} for a, b, n in pairs[:5]],
        "rare": {names[j]: int(c) for j, c in enumerate(counts) if c < few},
    }


def label_set_rows(facts: dict, noun: str) -> list[tuple[str, str]]:
    """(label, value) rows of :func:`label_set_facts` for a summary table."""
    pairs = ", ".join(f"{'+'.join(p['labels'])} ({p['count']})" for p in facts["co_occurrence"])
    rows = [
        ("labels per " + noun, f"{facts['cardinality']:.2f} on average (train)"),
        ("label sets", f"{facts['distinct_sets']} distinct; {facts['no_label']} {noun}s with none"),
    ]
    if pairs:
        rows.append(("seen together", pairs))
    return rows


def imbalance_ratio(train_counts) -> float:
    nonzero = np.asarray(train_counts)[np.asarray(train_counts) > 0]
    return float(nonzero.max() / nonzero.min()) if len(nonzero) else 1.0


def split_warnings(insp, noun: str, few: int) -> tuple[list[str], list[str]]:
    """(first, last) warnings every modality's inspection gives: a split that cannot be made;
    then classes too small to split, classes with fewer than ``few`` training examples, and
    imbalance. The modality's own findings go between them."""
    first = (
        [f"cannot split: {insp.split_method['error']}"] if insp.split_method.get("error") else []
    )
    last = []
    if insp.too_few_to_split:
        last.append(
            f"too few {noun}s to split: "
            + ", ".join(f"{c} ({n})" for c, n in insp.too_few_to_split.items())
        )
    rare = (getattr(insp, "label_sets", None) or {}).get("rare")
    if rare:
        last.append(
            f"labels too rare to learn well (fewer than {few} training {noun}s): "
            + ", ".join(f"{c} ({n})" for c, n in rare.items())
        )
    elif insp.few_images:
        last.append(
            f"classes with fewer than {few} training {noun}s: "
            + ", ".join(f"{c} ({n})" for c, n in insp.few_images.items())
        )
    if insp.imbalance_ratio >= 3 and not getattr(insp, "label_sets", None):
        last.append(
            f"classes are imbalanced ({insp.imbalance_ratio:.1f}x between the largest and "
            "smallest): consider --class-weights auto and read balanced accuracy"
        )
    return first, last
