"""Evaluating a multi-label run (:func:`headstart.core.evaluate.evaluate_run` hands over once
it has the run's probabilities): every score of :mod:`headstart.core.multilabel` with its
interval, beside the label-frequency predictor, the classic baseline made one-vs-rest (text:
TF-IDF with a logistic regression per label) and any compared run, each compared with this run
on the same examples by a paired bootstrap of the micro-F1 difference."""

from __future__ import annotations

import numpy as np

from headstart.core.multilabel import (
    INTERVAL_METHOD,
    SCORES,
    frequency_baseline,
    multilabel_metrics,
    paired_micro_f1,
    summary,
)
from headstart.core.overlap import lazy_hashes, seen_in_training, training_overlap
from headstart.core.runs import display_name as run_name
from headstart.core.splits import example_noun
from headstart.progress import enabled


def _train_labels(run, n_labels: int) -> np.ndarray:
    """A 0/1 matrix with the run's training label frequencies (what the label-frequency
    predictor needs): from the recorded per-label counts and examples."""
    counts = np.asarray(run.metrics.get("train_class_counts") or np.zeros(n_labels), np.float64)
    n = int((run.metrics.get("n_examples") or {}).get("train") or 1)
    return (counts / max(n, 1))[None, :]


def evaluate_multilabel(
    run,
    images,
    proba: np.ndarray,
    valid: np.ndarray,
    bad: list,
    *,
    compare,
    n_boot: int,
    data,
    run_probabilities,
):
    """The evaluation of a multi-label ``run`` on ``images`` (see the module):
    ``run_probabilities`` computes a compared run's (evaluate's own)."""
    names = list(run.class_names)
    noun = example_noun(images)
    y = np.asarray(images.labels)[valid]  # (a 0/1 matrix: evaluate checked the task first)
    mine, thresholds = proba[valid], run.thresholds
    result = multilabel_metrics(y, mine, thresholds, names, n_boot=n_boot)
    rows = [
        {"name": run_name(run), "kind": "this run", **summary(result)},
        _frequency_row(run, y, n_boot),
    ]
    classic = _classic(run, images, valid, y, mine >= thresholds[None, :], noun, n_boot)
    if classic is not None:
        rows.append(classic.pop("row"))
    paired, hashes = [], lazy_hashes(images)  # (hashed only if a check needs them)
    with enabled(False):  # compared runs and overlap checks without bars, as before
        for other in compare:
            row, entry, keep = _compared(
                run, other, images, proba, valid, n_boot, run_probabilities
            )
            seen_in_training(other, images, keep, entry, hashes, run=run)
            rows.append(row)
            paired.append(entry)
        if data is not None:
            result["overlap"] = _overlap(run, images, valid, y, mine, thresholds, n_boot, hashes)
    result.update(
        {
            "task": "multi-label",
            "noun": noun,
            "intervals": {
                "level": 0.95,
                **{s: INTERVAL_METHOD for s in SCORES},
                "bootstrap_resamples": n_boot,
            },
            "unreadable": bad,
            "table": rows,
            "paired": paired,
            **({"classic_baseline": classic} if classic is not None else {}),
            "predictions": {
                "ids": [images.ids[i] for i in np.flatnonzero(valid)],
                "y_true": y.tolist(),
                "proba": np.round(mine, 5).tolist(),
                "thresholds": thresholds.tolist(),
            },
        }
    )
    return result


def _frequency_row(run, y: np.ndarray, n_boot: int) -> dict:
    """The label-frequency predictor's row: the run's training label shares as probabilities,
    with the thresholds chosen for them on the run's validation split at training time."""
    names = list(run.class_names)
    base = frequency_baseline(_train_labels(run, len(names)), len(y))
    chosen = run.metrics["label_frequency_thresholds"]
    base_t = np.asarray([chosen[c] for c in names])
    m = multilabel_metrics(y, base, base_t, names, n_boot=n_boot, curves=False)
    on = [c for c, t, p in zip(names, base_t, base[0]) if p >= t]
    return {
        "name": f"label frequency (always {'; '.join(on) or 'no label'})",
        "kind": "baseline",
        **summary(m),
    }


def _compared(run, other, images, proba, valid, n_boot: int, run_probabilities):
    """(table row, paired comparison, the examples both could read) of a compared run."""
    names = list(run.class_names)  # (the same labels, checked before: maybe in another order)
    order = [list(other.class_names).index(c) for c in names]
    op, ov, _ = run_probabilities(other, images)
    op, their_t = op[:, order], other.thresholds[order]
    keep = valid & ov
    y = np.asarray(images.labels)[keep]
    om = multilabel_metrics(y, op[keep], their_t, names, n_boot=n_boot)
    row = {
        "name": run_name(other),
        "kind": "compared run",
        "run_dir": str(other.path) if other.path else None,
        **summary(om),
    }
    entry = paired_micro_f1(
        y,
        proba[keep] >= run.thresholds[None, :],
        op[keep] >= their_t[None, :],
        this_name=run_name(run),
        other_name=run_name(other),
        noun=example_noun(images),
        n_boot=n_boot,
    )
    return row, entry, keep


def _classic(run, images, valid, y, pred, noun: str, n_boot: int) -> dict | None:
    """The modality's classic baseline made one-vs-rest (text: TF-IDF + a logistic regression
    per label), fitted on the run's train split and thresholded on its validation split like
    the run, scored on the same examples and paired with the run."""
    from headstart.core.classic import load_multilabel_baseline

    fitted = load_multilabel_baseline(run)
    if fitted is None:
        return None
    model, thresholds = fitted
    theirs = model.predict_proba(images)[valid]
    m = multilabel_metrics(y, theirs, thresholds, list(run.class_names), n_boot=n_boot)
    return {
        "name": model.name,
        "description": model.describe(),
        "row": {
            "name": f"{model.name} (classic baseline)",
            "kind": "classic baseline",
            **summary(m),
        },
        "paired": paired_micro_f1(
            y,
            pred,
            theirs >= thresholds[None, :],
            this_name=run_name(run),
            other_name=model.name,
            noun=noun,
            n_boot=n_boot,
        ),
    }


def _overlap(run, images, valid, y, proba, thresholds, n_boot: int, hashes) -> dict:
    """How many scored examples are training examples (by content), and the scores without
    them (``hashes``: :func:`lazy_hashes` of ``images``, shared with the compared runs')."""
    out, dup = training_overlap(run, images, valid, hashes)
    if dup is not None and dup.any() and not dup.all():
        keep = ~dup
        m = multilabel_metrics(
            y[keep], proba[keep], thresholds, list(run.class_names), n_boot=n_boot, curves=False
        )
        out["without_overlap"] = summary(m)
    return out
