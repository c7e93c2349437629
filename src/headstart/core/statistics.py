"""The numbers with their uncertainty: scikit-learn's metrics with 95% intervals, the
majority-class baseline's, and paired comparisons of two models on the same examples.

Accuracy is a binomial proportion and gets an exact interval (:func:`accuracy_interval`, the
one source of every accuracy interval shown); macro F1 and balanced accuracy have no closed form
and get a percentile bootstrap, which says so when it cannot vary (:func:`degenerate_note`).
Two models are judged *paired*, on the same examples: Newcombe's interval of the accuracy
difference (:func:`paired_difference_interval`) and McNemar's exact test, said in a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as skm

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
