"""Honest evaluation: scikit-learn's metrics, 95% intervals, baselines in the same table.

With a few hundred evaluation examples, two models 3 points apart are often
indistinguishable; every accuracy and macro F1 here therefore comes with a 95% interval and
the number of examples it rests on. Accuracy is a binomial proportion and gets an exact
interval (:func:`accuracy_interval`, the one source of every accuracy interval shown); macro
F1 and balanced accuracy have no closed form and get a percentile bootstrap, which says so when
it cannot vary (:func:`degenerate_note`). The majority-class baseline is always scored on the
same examples. Compared runs are judged *paired*, on the same examples: Newcombe's interval of
the accuracy difference (:func:`paired_difference_interval`) and McNemar's exact test, said in
a sentence. External evaluation data is checked, by content, for the run's own training
examples, and scored without them too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from sklearn import metrics as skm

from headstart.core.classic import combine, load_baseline
from headstart.core.labels import separator_note
from headstart.core.overlap import lazy_hashes, run_splits, seen_in_training, training_overlap
from headstart.core.runs import display_name as run_name
from headstart.core.splits import OPTIMISTIC, ExampleSet, example_noun
from headstart.errors import ConfigError, DataError, RunError

#: The scale of each number in evaluation.json (the screens show the same units).
UNITS = {
    "accuracy": "fraction of examples (images or texts) classified right, 0-1 (shown as %)",
    "accuracy_ci95": "95% Clopper-Pearson (exact binomial) interval of accuracy, fraction 0-1 "
    "(shown as %)",
    "balanced_accuracy": "mean per-class recall, fraction 0-1 (shown as %)",
    "balanced_accuracy_ci95": "95% percentile-bootstrap interval of balanced accuracy, "
    "fraction 0-1 (shown as %)",
    "macro_f1": "mean per-class F1, 0-1 (shown on the 0-1 scale)",
    "macro_f1_ci95": "95% percentile-bootstrap interval of macro F1, 0-1 (shown on the 0-1 "
    "scale); equal ends mean every resample gave the same value",
    "per_class": "precision, recall and F1 on the 0-1 scale; support is a count of examples",
    "accuracy_difference": "this run's accuracy minus the compared run's, on the same examples, "
    "fraction -1..1 (shown as percentage points)",
    "accuracy_difference_ci95": "95% Newcombe interval of the paired accuracy difference "
    "(method 10, Wilson score limits), fraction -1..1 (shown as percentage points)",
    "mcnemar_p": "two-sided p-value of McNemar's exact test, 0-1",
    "log_loss": "mean negative log-likelihood per example, nats",
    "macro_auc": "mean one-vs-rest ROC AUC, 0-1",
}


def _resampled_confusions(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, n_boot: int, seed: int
) -> np.ndarray:
    """(n_boot, C, C) confusion matrices of bootstrap resamples, in one ``bincount``."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    idx = rng.integers(0, n, size=(n_boot, n))
    cell = (np.arange(n_boot)[:, None] * n_classes + y_true[idx]) * n_classes + y_pred[idx]
    counts = np.bincount(cell.ravel(), minlength=n_boot * n_classes * n_classes)
    return counts.reshape(n_boot, n_classes, n_classes)


def _balanced_accuracy_from(cms: np.ndarray) -> np.ndarray:
    """Mean recall over the classes each resample holds (as scikit-learn's
    ``balanced_accuracy_score``: a class no example of the resample shows has no recall)."""
    tp = np.diagonal(cms, axis1=1, axis2=2).astype(float)
    support = cms.sum(axis=2)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    return recall.sum(axis=1) / np.maximum((support > 0).sum(axis=1), 1)


def _macro_f1_from(cms: np.ndarray) -> np.ndarray:
    """Macro F1 over the classes each resample has (true or predicted), as :func:`_macro_f1`:
    a class of the run that the evaluation images never show nor the model predicts is no
    class of this evaluation, and averaging in its undefined F1 as 0 would understate."""
    tp = np.diagonal(cms, axis1=1, axis2=2).astype(float)
    denom = cms.sum(axis=1) + cms.sum(axis=2)  # (tp + fn) + (tp + fp)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1.sum(axis=1) / np.maximum((denom > 0).sum(axis=1), 1)


#: How each interval is computed, in the words every screen uses to name its method once.
INTERVAL_METHODS = {
    "accuracy": "Clopper-Pearson (exact binomial)",
    "bootstrap": "percentile bootstrap over the examples",
    "accuracy_difference": "Newcombe's interval for paired proportions (Wilson score limits)",
}


def accuracy_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The interval of an accuracy of ``k`` right out of ``n``: every accuracy interval
    headstart shows comes from here (the headline, evaluate, compare, the report).

    Clopper-Pearson's exact binomial interval (Clopper and Pearson 1934, "The use of
    confidence or fiducial limits illustrated in the case of the binomial", Biometrika 26),
    computed by ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``. Chosen over
    Wilson's score interval because its coverage is at least the stated 95% for every true
    accuracy and every ``n``, while Wilson's, better on average, dips below it for some
    accuracies, most near 0 and 1 (Brown, Cai and DasGupta 2001, "Interval estimation for a
    binomial proportion", Statistical Science 16): small test sets of good models are exactly
    there, and a beginner should not be told more certainty than the data holds. It never
    collapses: 17 right of 17 gives about 80.5%-100%, where a percentile bootstrap said
    100%-100%. ``n == 0`` gives (nan, nan).
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return (float(ci.low), float(ci.high))


def paired_difference_interval(
    both: int, only_first: int, only_second: int, neither: int, level: float = 0.95
) -> tuple[float, float]:
    """Interval of the difference of two accuracies measured on the *same* examples: the first
    model's minus the second's, from the paired 2x2 table (both right, only the first right,
    only the second right, neither).

    Newcombe's method 10 (Newcombe 1998, "Improved confidence intervals for the difference
    between binomial proportions based on paired data", Statistics in Medicine 17:2635-2650;
    its "square-and-add" interval in Fagerland, Lydersen and Laake 2017, "Statistical Analysis
    of Contingency Tables", ch. 8, whose worked example the tests reproduce): each accuracy
    gets its Wilson score interval (scipy's ``proportion_ci(method="wilson")``), and the two
    are combined by "square and add" with the correlation of the pairs, whose numerator
    ``AD - BC`` is lowered by ``n/2`` when positive (zero when it would cross zero). Unlike a
    percentile bootstrap of the paired differences, it does not collapse to zero width when
    the two models are right on the same examples: 17 of 17 right for both gives about
    -18.4 to +18.4 points, not +0.0 to +0.0.
    """
    a, b, c, d = (int(v) for v in (both, only_first, only_second, neither))
    n = a + b + c + d
    if n == 0:
        return (float("nan"), float("nan"))

    def wilson(k: int) -> tuple[float, float]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        return float(ci.low), float(ci.high)

    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b), wilson(a + c)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    ad_bc = a * d - b * c
    if margins == 0 or 0 <= ad_bc <= n / 2:
        phi = 0.0
    else:
        phi = (ad_bc - n / 2 if ad_bc > 0 else ad_bc) / np.sqrt(float(margins))
    diff = p1 - p2
    below = np.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    above = np.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (float(max(-1.0, diff - below)), float(min(1.0, diff + above)))


def is_degenerate(ci) -> bool:
    """True for an interval whose two ends are equal (a bootstrap whose resamples all agree):
    such an interval is never printed as "x-x"; :func:`degenerate_note` says why instead."""
    return ci is not None and len(ci) == 2 and ci[0] == ci[1] and ci[0] == ci[0]


def degenerate_note(metric: str, value: float, n: int, noun: str = "example") -> str:
    """Why the bootstrap interval of ``metric`` (at ``value`` on ``n`` examples) has no width,
    in a sentence: its resamples cannot vary, which is no certainty."""
    if value == 1:
        why = f"every {noun} is right, so every resample scores {value:.3f}"
    elif value == 0:
        why = f"no {noun} is right, so every resample scores {value:.3f}"
    else:
        why = f"the resamples all score {value:.3f}"
    return (
        f"{metric} interval degenerate: {why}, and the bootstrap cannot show how uncertain "
        f"{n:,} {noun}s leave it"
    )


def intervals_sentence(
    noun: str = "example", n_boot: int = 1000, *, paired: bool = False, f1: bool = True
) -> str:
    """The one sentence that names how the intervals on a page are computed."""
    parts = [f"accuracy by the {INTERVAL_METHODS['accuracy']} method"]
    if f1:
        parts.append(f"macro F1 by a percentile bootstrap over the {noun}s ({n_boot:,} resamples)")
    if paired:
        parts.append(f"paired accuracy differences by {INTERVAL_METHODS['accuracy_difference']}")
    listed = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return f"Intervals are 95%: {listed}."


def intervals_footnote(n_boot: int = 1000, *, f1: bool = True) -> str:
    """The same, short enough for a line under a terminal table."""
    text = f"95% intervals: accuracy {INTERVAL_METHODS['accuracy']}"
    if f1:
        text += f"; F1 percentile bootstrap ({n_boot:,} resamples)"
    return text


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of macro F1 and balanced accuracy over resampled
    examples: neither has a closed-form interval (accuracy has, :func:`accuracy_interval`).

    Each resample's metrics are read off its confusion matrix, all resamples at once, so
    1,000 resamples cost milliseconds (the point estimates come from scikit-learn). When
    every example is right (or every one wrong) every resample scores the same, and the
    interval has no width: :func:`is_degenerate`, which the screens say in words.
    """
    if len(y_true) == 0:
        nan = (float("nan"), float("nan"))
        return {"macro_f1": nan, "balanced_accuracy": nan}
    cms = _resampled_confusions(np.asarray(y_true), np.asarray(y_pred), n_classes, n_boot, seed)
    alpha = (1 - level) / 2
    out = {}
    for name, values in (
        ("macro_f1", _macro_f1_from(cms)),
        ("balanced_accuracy", _balanced_accuracy_from(cms)),
    ):
        out[name] = (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))
    return out


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 over the classes present in ``y_true`` or ``y_pred`` (see _macro_f1_from)."""
    labels = np.union1d(y_true, y_pred)
    return float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def _quiet(fn):
    """scikit-learn warns (with its own file paths) when the evaluation images lack a class
    the model knows; the metrics here handle that case on purpose, so the warning is noise."""
    import functools
    import warnings

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args, **kwargs)

    return wrapper


@_quiet
def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Accuracy, balanced accuracy, per-class P/R/F1, confusion, ROC/AUC, log loss, intervals."""
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    labels = list(range(len(class_names)))
    y_pred = proba.argmax(axis=1)
    p, r, f, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    acc = float(skm.accuracy_score(y_true, y_pred))
    f1 = _macro_f1(y_true, y_pred)
    ci = bootstrap_intervals(y_true, y_pred, len(class_names), n_boot=n_boot, seed=seed)
    right = int(np.sum(y_true == y_pred))
    present = sorted(set(y_true.tolist()))
    roc: dict[str, dict] = {}
    for k in present:
        positives = y_true == k
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = skm.roc_curve(positives, proba[:, k])
        roc[class_names[k]] = {
            "auc": float(skm.auc(fpr, tpr)),
            "fpr": np.round(fpr, 5).tolist(),
            "tpr": np.round(tpr, 5).tolist(),
        }
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return {
        "n": int(len(y_true)),
        "accuracy": acc,
        "accuracy_ci95": accuracy_interval(right, len(y_true)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred))
        if len(present) > 1
        else acc,
        "balanced_accuracy_ci95": ci["balanced_accuracy"],
        "macro_precision": float(np.mean(p)),
        "macro_recall": float(np.mean(r)),
        "macro_f1": f1,
        "macro_f1_ci95": ci["macro_f1"],
        "log_loss": float(skm.log_loss(y_true, clipped, labels=labels)),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "roc": roc,
        "macro_auc": float(np.mean([v["auc"] for v in roc.values()])) if roc else float("nan"),
    }


@_quiet
def majority_metrics(
    y_true: np.ndarray, majority: int, n_classes: int, *, n_boot: int = 1000, seed: int = 0
) -> dict:
    """The baseline every model must beat: always predict the training set's largest class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.full_like(y_true, majority)
    ci = bootstrap_intervals(y_true, y_pred, n_classes, n_boot=n_boot, seed=seed)
    right = int(np.sum(y_true == majority))
    return {
        "n": int(len(y_true)),
        "accuracy": right / len(y_true) if len(y_true) else float("nan"),
        "accuracy_ci95": accuracy_interval(right, len(y_true)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "balanced_accuracy_ci95": ci["balanced_accuracy"],
        "macro_f1": _macro_f1(y_true, y_pred),
        "macro_f1_ci95": ci["macro_f1"],
    }


def paired_noise(y: np.ndarray, new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    """(accuracy difference new - old, its standard error) on the same images."""
    a, b = new == y, old == y
    n = max(1, len(y))
    only_new, only_old = float(np.sum(a & ~b)), float(np.sum(~a & b))
    diff = (only_new - only_old) / n
    var = (only_new + only_old - (only_new - only_old) ** 2 / n) / n**2
    return diff, math.sqrt(max(var, 0.0))


def paired_comparison(
    y_true: np.ndarray,
    pred_this: np.ndarray,
    pred_other: np.ndarray,
    *,
    this_name: str = "this run",
    other_name: str = "the compared run",
    noun: str = "example",
    level: float = 0.95,
) -> dict:
    """Two models' predictions on the *same* examples, compared pair by pair.

    The accuracy difference (this minus other) gets Newcombe's paired interval
    (:func:`paired_difference_interval`), and McNemar's exact test (a two-sided binomial test
    on the examples exactly one model gets right; p = 1 when there are none) says whether the
    models differ. ``verdict`` says it in words, naming ``noun`` (image, text); when the two
    models made the same prediction on every example it says that plainly.
    """
    y = np.asarray(y_true)
    pred_this, pred_other = np.asarray(pred_this), np.asarray(pred_other)
    right_this = pred_this == y
    right_other = pred_other == y
    n = len(y)
    a = int(np.sum(right_this & right_other))
    b = int(np.sum(right_this & ~right_other))
    c = int(np.sum(~right_this & right_other))
    p = float(stats.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    diff = (b - c) / n if n else float("nan")
    lo, hi = paired_difference_interval(a, b, c, n - a - b - c, level)
    distinguishable = n > 0 and not (lo <= 0 <= hi) and p < 0.05
    identical = bool(n > 0 and np.array_equal(pred_this, pred_other))
    return {
        "this": this_name,
        "other": other_name,
        "n": int(n),
        "accuracy_this": float(np.mean(right_this)) if n else float("nan"),
        "accuracy_other": float(np.mean(right_other)) if n else float("nan"),
        "this_right_other_wrong": b,
        "other_right_this_wrong": c,
        "identical_predictions": identical,
        "accuracy_difference": diff,
        "accuracy_difference_ci95": (lo, hi),
        "interval_method": INTERVAL_METHODS["accuracy_difference"],
        "mcnemar_p": p,
        "distinguishable": bool(distinguishable),
        "verdict": _verdict(
            this_name, other_name, n, diff, (lo, hi), p, distinguishable, noun, identical
        ),
    }


def difference_text(vs: dict | None) -> str:
    """``+3.2 (-1.0 to +7.4)``: a paired accuracy difference (:func:`paired_comparison`) and
    its 95% interval in percentage points; `` ~`` where McNemar's test cannot tell the two
    models apart; ``-`` for none."""
    if not vs:
        return "-"

    def points(v: float) -> str:
        text = f"{100 * v:+.1f}"
        return "0.0" if text in ("+0.0", "-0.0") else text

    lo, hi = vs["accuracy_difference_ci95"]
    return f"{points(vs['accuracy_difference'])} ({points(lo)} to {points(hi)})" + (
        "" if vs["distinguishable"] else " ~"
    )


def _verdict(
    a: str,
    b: str,
    n: int,
    diff: float,
    ci,
    p: float,
    distinguishable: bool,
    noun: str = "example",
    identical: bool = False,
) -> str:
    if n == 0:
        return f"No {noun} could be read by both {a} and {b}: nothing to compare."
    interval = f"95% interval {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}"
    if identical:
        return (
            f"Both made identical predictions on all {n:,} {noun}s ({a}, {b}): "
            "no difference was "
            f"measured, and {n:,} {noun}s cannot rule one out (accuracy difference {interval} "
            "percentage points)."
        )
    if not distinguishable:
        return (
            f"The data cannot tell {a} and {b} apart on these {n:,} {noun}s: accuracy "
            f"difference {100 * diff:+.1f} percentage points (first minus second; {interval}), "
            f"McNemar p = {p:.2g}."
        )
    better, worse, lo, hi = (a, b, ci[0], ci[1]) if diff > 0 else (b, a, -ci[1], -ci[0])
    return (
        f"{better} is better than {worse} by {100 * abs(diff):.1f} percentage points of "
        f"accuracy (95% interval {100 * lo:.1f} to {100 * hi:.1f}) on the same {n:,} {noun}s; "
        f"McNemar p = {p:.2g}."
    )


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
    if ready:
        images, described = data, described or f"{data.name} split"
        detail = {"location": None, "used": {data.name: len(data)}, "not_used": {}}
    else:
        images, described, detail = select_evaluation_images(run, data, columns)
    noun = example_noun(images)
    if len(images) == 0:
        raise DataError(f"no {noun}s to evaluate on in the {described}.")
    check_tasks(run, images, compare)
    if run.thresholds is not None:  # several labels per example
        from headstart.core.evaluate_multilabel import evaluate_multilabel

        proba, valid, bad = run_probabilities(run, images)
        result = evaluate_multilabel(
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
    if classic is not None:
        rows.append(classic.pop("row"))
    for other in compare:
        if tuple(other.class_names) != tuple(run.class_names):
            raise DataError(
                f"{other.path}: classes ({', '.join(other.class_names)}) differ from this run's; "
                "compared runs must predict the same classes."
            )
        op, ov, _ = run_probabilities(other, images)
        keep = valid & ov
        om = classification_metrics(images.labels[keep], op[keep], run.class_names, n_boot=n_boot)
        rows.append(
            {
                "name": run_name(other),
                "kind": "compared run",
                "run_dir": str(other.path) if other.path else None,
                **_summary(om),
            }
        )
        entry = paired_comparison(
            images.labels[keep],
            proba[keep].argmax(axis=1),
            op[keep].argmax(axis=1),
            this_name=run_name(run),
            other_name=run_name(other),
            noun=noun,
        )
        seen_in_training(other, images, keep, entry, hashes, run=run)
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
            "intervals": {
                "level": 0.95,
                "accuracy": INTERVAL_METHODS["accuracy"],
                "macro_f1": INTERVAL_METHODS["bootstrap"],
                "balanced_accuracy": INTERVAL_METHODS["bootstrap"],
                "bootstrap_resamples": n_boot,
                "accuracy_difference": INTERVAL_METHODS["accuracy_difference"],
            },
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
