"""Honest evaluation: a run scored on its held-out split or on external labelled data, beside
the majority-class baseline (and the classic one, for text) on the same examples, and compared
runs judged pair by pair; the numbers and their intervals come from
:mod:`headstart.core.statistics`. External evaluation data is checked, by content, for the
run's own training examples, and scored without them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from headstart.core.classic import combine, load_baseline
from headstart.core.labels import separator_note
from headstart.core.overlap import lazy_hashes, run_splits, seen_in_training, training_overlap
from headstart.core.runs import display_name as run_name
from headstart.core.splits import OPTIMISTIC, ExampleSet, example_noun
from headstart.core.statistics import (
    INTERVAL_METHODS,
    UNITS,
    classification_metrics,
    majority_metrics,
    paired_comparison,
)
from headstart.errors import ConfigError, DataError, RunError

# --------------------------------------------------------------------------- overlap with train


def _overlap(run, images: ExampleSet, valid, y, proba, majority: int, n_boot, hashes) -> dict:
    """How many scored images are training images (by content), and the score without them;
    ``hashes``: :func:`lazy_hashes` of ``images``."""
    out, dup = training_overlap(run, images, valid, hashes)
    if dup is not None and dup.any() and not dup.all():
        keep = ~dup
        m = classification_metrics(y[keep], proba[keep], run.class_names, n_boot=n_boot)
        out["without_overlap"] = {
            **_summary(m),
            "majority_accuracy": float(np.mean(y[keep] == majority)),
        }
    return out


# --------------------------------------------------------------------------- runs


def run_probabilities(
    run, images: ExampleSet, *, classic: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(probabilities, valid mask, unreadable) for ``images`` through ``run``'s model.

    A frozen-backbone run reuses the feature cache (same backbone, weights and preprocessing
    as at training time), so evaluating right after training costs no forward pass. A blended
    run mixes in its classic baseline's probabilities: ``classic`` (of every example, already
    computed by the caller), else computed here; a joint one adds its baseline part's logits.
    """
    from headstart.core.cache import MIRROR
    from headstart.core.extractors import extractor_for
    from headstart.core.model import loaded_from_run

    extractor = extractor_for(loaded_from_run(run), batch_size=32, cache=bool(run.config.cache))
    fs = extractor.extract(images)
    views = [fs, extractor.extract(images, view=MIRROR)] if run.model.tta else [fs]
    proba = np.zeros((len(images), len(run.class_names)), dtype=np.float32)
    if fs.valid.any():
        head = run.model.head.eval()
        with torch.no_grad():  # with test-time augmentation: logits averaged, as the model does
            logits = sum(
                head(torch.from_numpy(np.asarray(v.features[fs.valid], dtype=np.float32)))
                for v in views
            ) / len(views)
        proba[fs.valid] = run.task.activate(logits).numpy()
    run.model.backbone.cpu()
    if run.uses_classic and fs.valid.any():  # a blend with its classic baseline
        rows = np.flatnonzero(fs.valid)
        theirs = classic[rows] if classic is not None else None
        proba[rows] = combine(run, proba[rows], images.subset(rows), classic_proba=theirs)
    return proba, fs.valid, fs.bad


def align_classes(images: ExampleSet, run_classes: Sequence[str], where: str) -> ExampleSet:
    """Re-index an external data set's labels onto the run's classes (or labels), matching by
    name."""
    lookup = {name: i for i, name in enumerate(run_classes)}
    unknown = [c for c in images.class_names if c not in lookup]
    counts = images.class_counts()
    unknown = [c for c in unknown if counts[images.class_names.index(c)] > 0]
    if unknown:
        multi = np.ndim(images.labels) == 2
        kind = "label(s)" if multi else "class(es)"
        odd = separator_note(unknown, multi, example_noun(images))
        raise DataError(
            f"{where}: {kind} {', '.join(map(repr, unknown))} are not "
            f"{'labels' if multi else 'classes'} of this run "
            f"({', '.join(run_classes)}); the model cannot predict them. Remove those "
            f"{example_noun(images)}s or train a run that knows them."
            + (f" ({odd[0].upper()}{odd[1:]}.)" if odd else "")
        )
    mapping = np.array([lookup.get(c, -1) for c in images.class_names])
    out = images.subset(np.arange(len(images)))
    if np.ndim(images.labels) == 2:  # label sets: each column moves to its label's place
        labels = np.zeros((len(images), len(run_classes)), np.int64)
        present = mapping >= 0
        labels[:, mapping[present]] = images.labels[:, present]
        out.labels = labels
    else:
        out.labels = mapping[images.labels]
    out.class_names = tuple(run_classes)
    return out


def check_tasks(run, images: ExampleSet, compare: Sequence = ()) -> None:
    """Refuse, before any example is read through a network, evaluation data of another task
    than the run's (one class against several labels per example) and compared runs that
    predict other classes or labels, or another task."""
    noun = example_noun(images)
    multi = run.thresholds is not None
    if multi != (np.ndim(images.labels) == 2):
        raise DataError(
            f"this run predicts {'several labels' if multi else 'one class'} per {noun}, and "
            f"the evaluation data has {'one class' if multi else 'several labels'} per {noun}; "
            + (
                "give it data labelled with label sets (--task multi-label reads one label per "
                "cell as a set of one)."
                if multi
                else "evaluate a multi-label run on it."
            )
        )
    for other in compare:
        if (other.thresholds is not None) != multi:
            raise DataError(
                f"{other.path}: predicts {'one class' if multi else 'several labels'} per "
                f"{noun} and this run {'several labels' if multi else 'one class'}: a "
                "single-label and a multi-label run cannot be compared pair by pair."
            )
        if sorted(other.class_names) != sorted(run.class_names):
            kind = "labels" if multi else "classes"
            raise DataError(
                f"{other.path}: its {kind} ({', '.join(other.class_names)}) differ from this "
                f"run's ({', '.join(run.class_names)}); compared runs must predict the same "
                f"{kind}."
            )


def evaluation_images(run, data: str | Path | None = None) -> tuple[ExampleSet, str]:
    """The run's own test split (else validation), or an external labelled data set."""
    images, described, _ = select_evaluation_images(run, data)
    return images, described


def data_columns(run, columns: dict | None = None) -> dict:
    """How to read other data: the run's table columns (``filename_column``,
    ``label_column``, ``text_column``) and label format, but where ``columns`` says otherwise
    (:meth:`~headstart.core.config.TrainConfig.reading`)."""
    given = {k: v for k, v in (columns or {}).items() if v is not None}
    config = run.config.reading(given, run.thresholds is not None)
    names = ("filename_column", "label_column", "text_column")
    return {**{n: getattr(config, n) for n in names}, "labels": config.label_format()}


def select_evaluation_images(
    run, data: str | Path | None = None, columns: dict | None = None
) -> tuple[ExampleSet, str, dict]:
    """(images, what they are in words, which splits of which data were used and their counts).

    External data is used whole where its splits can be joined (image files; one array); the
    separate arrays of an arrays/ folder cannot be, so its last split (test, else val) is
    used and the others are listed as not used.
    """
    from headstart.core.data import load_source

    if data is not None:
        sets = load_source(data, modality=run.modality, **data_columns(run, columns)).splits()
        first = next(iter(sets.values()))
        joinable = all(getattr(s, "array", None) is None for s in sets.values()) or all(
            s.array is first.array for s in sets.values()
        )
        used = list(sets) if joinable else list(sets)[-1:]
        label = {n: (s.origin if not joinable else n) for n, s in sets.items()}
        merged = (  # named for progress lines ("features eval"), not after a split of its own
            sets[used[0]].subset(np.arange(len(sets[used[0]])), name="eval")
            if len(used) == 1
            else type(first).concat([sets[n] for n in used], "eval")
        )
        counts = {label[n]: len(sets[n]) for n in used}
        if len(sets) == 1:
            described = str(data)
        elif len(used) == 1:
            described = f"{data}: {label[used[0]]}"
        else:
            described = f"{data}: " + " + ".join(f"{k} ({v:,})" for k, v in counts.items())
        detail = {
            "location": str(data),
            "used": counts,
            "not_used": {label[n]: len(s) for n, s in sets.items() if n not in used},
        }
        return align_classes(merged, run.class_names, str(data)), described, detail
    if run.config.data is None:
        raise RunError(
            "this run was trained on in-memory arrays; pass the labelled DATA to evaluate on."
        )
    splits = run_splits(run)
    images, described = (
        (splits.test, "test split") if splits.test is not None else (splits.val, OPTIMISTIC)
    )
    detail = {"location": str(run.config.data), "used": {images.name: len(images)}, "not_used": {}}
    return images, described, detail


def evaluate_run(
    run,
    data: str | Path | ExampleSet | None = None,
    *,
    compare: Sequence = (),
    n_boot: int = 1000,
    described: str = "",
    columns: dict | None = None,
) -> dict:
    """Metrics of ``run`` and every run in ``compare`` on the same images, plus the baseline.

    ``data`` is an external labelled data set (any layout), ready images, or None for the
    run's own test split (else its validation split). Each compared run is also judged
    against this run pair by pair on the images both could read (``paired``, see
    :func:`paired_comparison`). External data is checked for the run's training images by
    content (``overlap``) and, where some are found, scored without them as well. ``columns``
    names the table columns of external data where they differ from the run's own
    (``{"text_column": "review"}``).
    """
    if int(n_boot) < 1:
        raise ConfigError(f"bootstrap resamples must be at least 1; got {n_boot}.")
    ready = hasattr(data, "labels") and hasattr(data, "ids")  # examples (images or texts)
    images, described, detail = _examples(run, data, ready, described, columns)
    noun = example_noun(images)
    if len(images) == 0:
        raise DataError(f"no {noun}s to evaluate on in the {described}.")
    check_tasks(run, images, compare)
    if run.thresholds is not None:  # several labels per example
        result = _evaluate_label_sets(run, images, compare, n_boot, data)
        result.update({"evaluated_on": described, "evaluation_data": detail, "units": UNITS})
        return result
    baseline = load_baseline(run)  # its probabilities serve the blend and its own row
    classic_proba = baseline.predict_proba(images) if baseline is not None else None
    proba, valid, bad = run_probabilities(run, images, classic=classic_proba)
    y = images.labels[valid]
    result = classification_metrics(y, proba[valid], run.class_names, n_boot=n_boot)
    majority = int(np.argmax(np.bincount(_train_labels(run), minlength=len(run.class_names))))
    paired = []
    hashes = lazy_hashes(images)  # decoded and hashed once, only if a check needs it
    rows = [
        {"name": run_name(run), "kind": "this run", **_summary(result)},
        {
            "name": f"majority class ('{run.class_names[majority]}')",
            "kind": "baseline",
            **majority_metrics(y, majority, len(run.class_names), n_boot=n_boot),
        },
    ]
    classic = (
        _classic_baseline(run, baseline, classic_proba[valid], y, proba[valid], noun, n_boot)
        if baseline is not None
        else None
    )
    rows += [classic.pop("row")] if classic is not None else []
    for other in compare:
        row, entry = _compared(run, other, images, valid, proba, noun, n_boot, hashes)
        rows.append(row)
        paired.append(entry)
    if data is not None and not ready:
        result["overlap"] = _overlap(run, images, valid, y, proba[valid], majority, n_boot, hashes)
    # keep predictions so plots and the report can show confident mistakes
    result.update(
        {
            "evaluated_on": described,
            "evaluation_data": detail,
            "noun": noun,
            "units": UNITS,
            "intervals": _intervals(n_boot),
            # listed but unreadable: left out of every count and score above
            "unreadable": bad,
            "table": rows,
            "paired": paired,
            **({"classic_baseline": classic} if classic is not None else {}),
            "predictions": {
                "ids": [images.ids[i] for i in np.flatnonzero(valid)],
                "y_true": y.tolist(),
                "proba": np.round(proba[valid], 5).tolist(),
            },
        }
    )
    return result


def _examples(run, data, ready: bool, described: str, columns: dict | None):
    """What is evaluated: ready examples as given, else the external data or the run's own
    split (:func:`select_evaluation_images`). Returns (examples, described, detail)."""
    if not ready:
        return select_evaluation_images(run, data, columns)
    detail = {"location": None, "used": {data.name: len(data)}, "not_used": {}}
    return data, described or f"{data.name} split", detail


def _intervals(n_boot: int) -> dict:
    """How each interval of the evaluation was computed."""
    return {
        "level": 0.95,
        "accuracy": INTERVAL_METHODS["accuracy"],
        "macro_f1": INTERVAL_METHODS["bootstrap"],
        "balanced_accuracy": INTERVAL_METHODS["bootstrap"],
        "bootstrap_resamples": n_boot,
        "accuracy_difference": INTERVAL_METHODS["accuracy_difference"],
    }


def _evaluate_label_sets(run, images, compare, n_boot: int, data) -> dict:
    """A multi-label run: :func:`~headstart.core.evaluate_multilabel.evaluate_multilabel`."""
    from headstart.core.evaluate_multilabel import evaluate_multilabel

    proba, valid, bad = run_probabilities(run, images)
    return evaluate_multilabel(
        run,
        images,
        proba,
        valid,
        bad,
        compare=compare,
        n_boot=n_boot,
        data=data,
        run_probabilities=run_probabilities,
    )


def _compared(run, other, images, valid, proba, noun: str, n_boot: int, hashes):
    """A compared run's row (on the examples both runs could read) and its paired
    comparison with ``run``, which says whether it trained on any of them."""
    if tuple(other.class_names) != tuple(run.class_names):
        raise DataError(
            f"{other.path}: classes ({', '.join(other.class_names)}) differ from this run's; "
            "compared runs must predict the same classes."
        )
    op, ov, _ = run_probabilities(other, images)
    keep = valid & ov
    om = classification_metrics(images.labels[keep], op[keep], run.class_names, n_boot=n_boot)
    row = {
        "name": run_name(other),
        "kind": "compared run",
        "run_dir": str(other.path) if other.path else None,
        **_summary(om),
    }
    entry = paired_comparison(
        images.labels[keep],
        proba[keep].argmax(axis=1),
        op[keep].argmax(axis=1),
        this_name=run_name(run),
        other_name=run_name(other),
        noun=noun,
    )
    seen_in_training(other, images, keep, entry, hashes, run=run)
    return row, entry


def _classic_baseline(run, model, pred, y, proba, noun: str, n_boot: int) -> dict:
    """The run's classic baseline ``model`` (text: TF-IDF + logistic regression, fitted on its
    train split) scored by its probabilities ``pred`` on the same examples as the run's
    ``proba``, paired with the run's predictions. ``row`` is its line of the evaluation
    table."""
    m = classification_metrics(y, pred, run.class_names, n_boot=n_boot)
    return {
        "name": model.name,
        "description": model.describe(),
        "row": {
            "name": f"{model.name} (classic baseline)",
            "kind": "classic baseline",
            **_summary(m),
        },
        "paired": paired_comparison(
            y,
            proba.argmax(axis=1),
            pred.argmax(axis=1),
            this_name=run_name(run),
            other_name=model.name,
            noun=noun,
        ),
    }


def _summary(m: dict) -> dict:
    keys = (
        "n",
        "accuracy",
        "accuracy_ci95",
        "balanced_accuracy",
        "balanced_accuracy_ci95",
        "macro_f1",
        "macro_f1_ci95",
        "log_loss",
        "macro_auc",
    )
    return {k: m[k] for k in keys if k in m}


def _train_labels(run) -> np.ndarray:
    counts = run.metrics.get("train_class_counts")
    if counts:
        return np.repeat(np.arange(len(counts)), counts)
    return np.zeros(1, dtype=np.int64)


def confident_mistakes(evaluation: dict, k: int = 9) -> list[dict]:
    """Wrong predictions, most confident first (fastai's top losses)."""
    pred = evaluation.get("predictions") or {}
    if not pred:
        return []
    proba = np.asarray(pred["proba"])
    y = np.asarray(pred["y_true"])
    if y.ndim == 2:  # several labels per example: wrong label sets
        from headstart.core.multilabel import confident_wrong_sets

        return confident_wrong_sets(evaluation, k)
    names = list(evaluation["per_class"])
    guess = proba.argmax(1)
    wrong = np.flatnonzero(guess != y)
    order = wrong[np.argsort(-proba[wrong, guess[wrong]])][:k]
    return [
        {
            "id": pred["ids"][i],
            "true": names[y[i]],
            "predicted": names[guess[i]],
            "p": float(proba[i, guess[i]]),
        }
        for i in order
    ]
