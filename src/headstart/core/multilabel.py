"""Multi-label classification's decisions and scores: thresholds chosen on validation, and
the metrics a multi-label model is judged by, each with a 95% interval.

- **Thresholds** (:func:`choose_thresholds`): one global threshold (the best micro-F1 over
  every label on validation) or each label's F1-optimal one (a rarer label, fewer than
  :data:`MIN_VAL_POSITIVES` positive validation examples, shares the global one), whichever
  scores better on validation examples it was not chosen on (5 folds): measured in
  BENCHMARKS.md.
- **Metrics** (:func:`multilabel_metrics`): micro-F1 (the headline: every (example, label)
  decision counts once), macro-F1 (each label counts once), mean average precision (macro
  over labels with positives; threshold-free), subset accuracy (the whole label set right) and
  Hamming loss (the share of wrong decisions), with percentile-bootstrap intervals over
  examples (1000 resamples, fixed seed); per-label precision, recall, F1, support and average
  precision; precision-recall curves for the report.
- **Baseline** (:func:`frequency_baseline`): the label-frequency predictor, multi-label's
  majority class: every example gets each label's training frequency as its probability,
  thresholded on validation like the model, so it predicts the common labels for everyone.
"""

from __future__ import annotations

import numpy as np

#: A label needs this many positive validation examples for a threshold of its own.
MIN_VAL_POSITIVES = 5
#: The thresholds a global threshold is chosen among (a label's own threshold falls between
#: its observed probabilities).
GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
#: The metrics with intervals, in the order shown; micro-F1 is the headline.
SCORES = ("micro_f1", "macro_f1", "mean_average_precision", "subset_accuracy", "hamming_loss")
NAMES = {
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
    "mean_average_precision": "mean average precision",
    "subset_accuracy": "subset accuracy",
    "hamming_loss": "Hamming loss",
}
#: How the intervals are drawn (shown under each table).
INTERVAL_METHOD = (
    "percentile bootstrap over examples, 1000 resamples (Wilson's where every resample "
    "scores alike)"
)


def _f1(tp, fp, fn, empty: float = 0.0):
    """F1 from counts; ``empty`` where there is nothing to count (no true and no predicted
    positive: 0 for a threshold's search, NaN where a label is left out of a mean)."""
    tp, fp, fn = (np.asarray(v, np.float64) for v in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.full_like(denom, empty), where=denom > 0)


def _macro(f1: np.ndarray, axis=None):
    """The mean of per-label F1 over the labels with something to count (macro-F1 leaves out
    a label with neither a true nor a predicted example, as mean average precision leaves
    out a label without positives)."""
    with np.errstate(all="ignore"):
        out = np.nanmean(f1, axis=axis) if np.size(f1) else 0.0
    return np.nan_to_num(out)


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising one label's F1 on validation: the midpoint between the
    chosen probability and the next lower one, so a slightly different example falls the same
    way (the highest F1; ties: the higher threshold)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order].astype(np.int64)
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    fn = ys.sum() - tp
    f1 = _f1(tp, fp, fn)
    last = np.r_[ps[1:] != ps[:-1], True]  # a threshold can only fall between distinct values
    f1 = np.where(last, f1, -1)
    k = int(np.argmax(f1))
    below = ps[k + 1] if k + 1 < len(ps) else 0.0
    return float((ps[k] + below) / 2), float(f1[k])


def _global_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The one threshold of :data:`GRID` with the best micro-F1 over every label (0.5 for
    no examples)."""
    best_t, best_f1 = 0.5, -1.0
    for t in GRID if len(y) else ():
        f1 = float(_f1(*(c.sum() for c in _counts(y, proba >= t))))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t


def _per_label(y: np.ndarray, proba: np.ndarray, shared: float) -> np.ndarray:
    """Each label's F1-optimal threshold where it has :data:`MIN_VAL_POSITIVES` positive
    examples, else ``shared``."""
    thresholds = np.full(proba.shape[1], shared)
    for j in np.flatnonzero(y.sum(axis=0) >= MIN_VAL_POSITIVES):
        thresholds[j] = best_f1_threshold(y[:, j], proba[:, j])[0]
    return thresholds


def _cross_validated(y: np.ndarray, proba: np.ndarray, folds: int) -> dict[str, float]:
    """Each rule's micro-F1 on validation examples it did not choose its thresholds on:
    ``folds``-fold over the validation split, the decisions' counts pooled over folds."""
    from sklearn.model_selection import KFold

    counts = {rule: np.zeros(3) for rule in RULES}
    for fit, held in KFold(folds, shuffle=True, random_state=0).split(y):
        shared = _global_threshold(y[fit], proba[fit])
        chosen = {
            "global": np.full(y.shape[1], shared),
            "per-label": _per_label(y[fit], proba[fit], shared),
        }
        for rule, t in chosen.items():
            tp, fp, fn = _counts(y[held], proba[held] >= t[None, :])
            counts[rule] += (tp.sum(), fp.sum(), fn.sum())
    return {rule: float(_f1(*c)) for rule, c in counts.items()}


#: The threshold rules validation chooses between (:func:`choose_thresholds`).
RULES = ("global", "per-label")
#: Folds of the validation split that choose the rule.
RULE_FOLDS = 5


def choose_thresholds(
    y_val: np.ndarray, proba_val: np.ndarray, rule: str = "auto"
) -> tuple[np.ndarray, dict]:
    """Thresholds from validation, and how they were chosen: one global threshold (the best
    micro-F1 over every label) or each label's F1-optimal one (where it has at least
    :data:`MIN_VAL_POSITIVES` positive validation examples; the global one otherwise),
    whichever scores the higher micro-F1 on validation examples it was not chosen on
    (:data:`RULE_FOLDS`-fold over the validation split). A threshold per label fitted to a
    few hundred examples can be noise: measured on two data sets, the global rule was 2.4-2.7
    points of test micro-F1 better on both (BENCHMARKS.md), and the per-label one 6 points of
    macro-F1 better on one; the folds decide for each data set. ``rule`` ``"global"`` or
    ``"per-label"`` (``--thresholds``) takes that rule without asking the folds."""
    y_val, proba_val = np.asarray(y_val), np.asarray(proba_val, np.float64)
    k = proba_val.shape[1]
    shared = _global_threshold(y_val, proba_val)
    asked = rule
    enough = asked == "auto" and len(y_val) >= 2 * RULE_FOLDS
    scored = _cross_validated(y_val, proba_val, RULE_FOLDS) if enough else {}
    if asked == "auto":
        rule = "per-label" if scored.get("per-label", -1) > scored.get("global", -1) else "global"
    thresholds = _per_label(y_val, proba_val, shared) if rule == "per-label" else np.full(k, shared)
    own = (y_val.sum(axis=0) >= MIN_VAL_POSITIVES) if rule == "per-label" else np.zeros(k, bool)
    words = (
        f"each label's F1-optimal threshold on validation (labels with fewer than "
        f"{MIN_VAL_POSITIVES} positive validation examples share {shared:g})"
        if rule == "per-label"
        else f"one threshold for every label, {shared:g}, the best micro-F1 on validation"
    )
    cv = ", ".join(f"{r} {100 * v:.1f}%" for r, v in scored.items())
    record = {
        "rule": words
        + (f" (--thresholds {asked})" if asked != "auto" else "")
        + (
            f"; chosen over the other rule by {RULE_FOLDS}-fold micro-F1 on validation ({cv})"
            if scored
            else ""
        ),
        "chosen": rule,
        "cross_validated_micro_f1": scored,
        "global": shared,
        "own": int(own.sum()),
        "shared": int(k - own.sum()),
    }
    return thresholds, record


def resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n): how often each of ``n`` examples is drawn in each bootstrap resample (one
    seeded draw of ``n`` with replacement per row): every bootstrap of this module weighs
    examples by these counts, all resamples at once."""
    w = np.zeros((n_boot, n))
    if n:
        draws = np.random.default_rng(seed).integers(n, size=(n_boot, n))
        np.add.at(w, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1)
    return w


def f1_scores(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Micro-F1 of 0/1 predictions ``pred`` against ``y`` under each row of example weights
    ``w`` (a bootstrap resample's counts; a row of ones: the score itself)."""
    pos, pred = np.asarray(y) == 1, np.asarray(pred, bool)
    tp, fp, fn = w @ (pred & pos), w @ (pred & ~pos), w @ (~pred & pos)
    return _f1(tp.sum(1), fp.sum(1), fn.sum(1))


def _finite(v: float) -> float | None:
    """``v``, or None for NaN (JSON has no NaN: strict readers refuse it)."""
    return None if v != v else float(v)


def _counts(y: np.ndarray, pred: np.ndarray):
    tp = (pred & (y == 1)).sum(axis=0)
    fp = (pred & (y == 0)).sum(axis=0)
    fn = (~pred & (y == 1)).sum(axis=0)
    return tp, fp, fn


def _average_precision(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if y.any() else float("nan")


def _scores(y: np.ndarray, proba: np.ndarray, pred: np.ndarray) -> dict:
    tp, fp, fn = _counts(y, pred)
    present = y.sum(axis=0) > 0
    aps = [_average_precision(y[:, j], proba[:, j]) for j in np.flatnonzero(present)]
    return {
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "macro_f1": float(_macro(_f1(tp, fp, fn, np.nan))) if len(tp) else 0.0,
        "mean_average_precision": float(np.mean(aps)) if aps else float("nan"),
        "subset_accuracy": float(np.mean((pred == (y == 1)).all(axis=1))) if len(y) else 0.0,
        "hamming_loss": float(np.mean(pred != (y == 1))) if len(y) else 0.0,
    }


def weighted_average_precision(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision of one label under each row of example weights ``w`` (resamples x
    examples: a bootstrap resample's counts), as scikit-learn's ``average_precision_score``
    with ``sample_weight`` computes it (a step at each distinct score; tests hold the two
    equal), for all resamples at once. NaN where a resample holds no positive."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order].astype(np.float64)
    ws = np.asarray(w, np.float64)[:, order]
    tp = np.cumsum(ws * ys, axis=1)
    fp = np.cumsum(ws * (1 - ys), axis=1)
    last = np.r_[ps[1:] != ps[:-1], True]  # the end of each run of equal scores
    tp, fp = tp[:, last], fp[:, last]
    positives = tp[:, -1:]
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, positives, out=np.zeros_like(tp), where=positives > 0)
    steps = np.diff(np.concatenate([np.zeros((len(tp), 1)), recall], axis=1), axis=1)
    ap = (steps * precision).sum(axis=1)
    return np.where(positives[:, 0] > 0, ap, np.nan)


def _intervals(y, proba, pred, n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """95% percentile-bootstrap intervals of every score, all resamples at once (each a row of
    example counts)."""
    n, k = y.shape
    if not n:
        return {name: (0.0, 0.0) for name in SCORES}
    w = resample_counts(n, n_boot, seed)
    pos = y == 1
    tp, fp, fn = w @ (pred & pos), w @ (pred & ~pos), w @ (~pred & pos)
    values = {
        "micro_f1": _f1(tp.sum(1), fp.sum(1), fn.sum(1)),
        "macro_f1": _macro(_f1(tp, fp, fn, np.nan), axis=1),
        "subset_accuracy": w @ (pred == pos).all(axis=1) / n,
        "hamming_loss": w @ (pred != pos).sum(axis=1) / (n * k),
    }
    aps = [weighted_average_precision(y[:, j], proba[:, j], w) for j in range(k) if pos[:, j].any()]
    values["mean_average_precision"] = (
        np.nanmean(np.stack(aps, axis=1), axis=1) if aps else np.full(n_boot, np.nan)
    )
    out = {}
    for name in SCORES:
        v = np.asarray(values[name], np.float64)
        v = v[np.isfinite(v)]
        out[name] = (
            (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if len(v) else (0.0, 0.0)
        )
    # every resample scored alike (a perfect score, or none right): a bootstrap cannot say how
    # far off the score may be, so such an interval is the Wilson interval of the proportion
    # the score counts (F1: 2TP of 2TP + FP + FN decisions; subset accuracy: examples;
    # Hamming loss: decisions), never "100.0%-100.0%"
    tp, fp, fn = (int(a.sum()) for a in _counts(y, pred))
    counts = {
        "micro_f1": (2 * tp, 2 * tp + fp + fn),
        "macro_f1": (2 * tp, 2 * tp + fp + fn),
        "subset_accuracy": (int((pred == pos).all(axis=1).sum()), n),
        "hamming_loss": (int((pred != pos).sum()), n * k),
    }
    ap = values["mean_average_precision"]  # perfect: every positive ranked above every negative
    if np.isfinite(ap).any() and np.nanmin(ap) == np.nanmax(ap) == 1.0:
        counts["mean_average_precision"] = (int(pos.sum()), int(pos.sum()))
    for name, (hits, total) in counts.items():
        lo, hi = out[name]
        if lo == hi and total:
            out[name] = wilson_interval(hits, total)
    return out


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``k`` of ``n`` (scipy's binomtest)."""
    from scipy import stats

    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def multilabel_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    thresholds: np.ndarray,
    names,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    curves: bool = True,
) -> dict:
    """Every score of a multi-label prediction (see the module), JSON-ready."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y, np.int64)
    proba = np.asarray(proba, np.float64)
    pred = proba >= np.asarray(thresholds)[None, :]
    scores = _scores(y, proba, pred)
    ci = _intervals(y, proba, pred, n_boot, seed)
    tp, fp, fn = _counts(y, pred)
    per_label, pr = {}, {}
    for j, name in enumerate(names):
        support = int(y[:, j].sum())
        # (None: no predicted example, no true one: nothing to divide by)
        prec = float(tp[j] / (tp[j] + fp[j])) if tp[j] + fp[j] else None
        rec = float(tp[j] / support) if support else None
        per_label[name] = {
            "precision": prec,
            "recall": rec,
            # (None: neither a true nor a predicted example here, so no F1 to count)
            "f1": None if tp[j] + fp[j] + fn[j] == 0 else float(_f1(tp[j], fp[j], fn[j])),
            "support": support,
            "predicted": int(pred[:, j].sum()),
            "average_precision": _finite(_average_precision(y[:, j], proba[:, j])),
            "threshold": float(thresholds[j]),
        }
        if curves and support and support < len(y):
            p, r, _ = precision_recall_curve(y[:, j], proba[:, j])
            pr[name] = {"precision": np.round(p, 4).tolist(), "recall": np.round(r, 4).tolist()}
    return {
        "n": int(len(y)),
        **{name: _finite(v) for name, v in scores.items()},
        **{f"{name}_ci95": ci[name] for name in SCORES},
        "interval_method": INTERVAL_METHOD,
        "label_cardinality": float(y.sum(axis=1).mean()) if len(y) else 0.0,
        "predicted_cardinality": float(pred.sum(axis=1).mean()) if len(y) else 0.0,
        "per_label": per_label,
        "pr_curves": pr,
    }


def frequency_baseline(train_labels: np.ndarray, n: int) -> np.ndarray:
    """The label-frequency predictor's probabilities for ``n`` examples: each label's share
    of the training examples."""
    freq = np.asarray(train_labels, np.float64).mean(axis=0)
    return np.tile(freq, (n, 1))


def label_set_text(row: np.ndarray, names) -> str:
    """A label set in words: ``"cat; dog"``, or ``"(none)"``."""
    on = [names[j] for j in np.flatnonzero(row)]
    return "; ".join(on) if on else "(none)"


def summary(m: dict) -> dict:
    """The scores of :func:`multilabel_metrics` with their intervals, without the per-label
    table and curves."""
    keep = ("n", *SCORES, *(f"{s}_ci95" for s in SCORES), "interval_method")
    return {k: m[k] for k in (*keep, "label_cardinality", "predicted_cardinality") if k in m}


def held_out_scores(
    metrics: dict, labels: dict, logits: dict, class_names, n_boot: int = 1000, rule: str = "auto"
):
    """A multi-label run's held-out scores into ``metrics`` (``labels``: split -> the 0/1
    matrix of the examples used; ``logits``: held-out split -> (labels, logits)): thresholds
    chosen on validation, each split's scores with intervals beside the label-frequency
    predictor's, and the headline (micro-F1, test when there is one). Returns split -> (true,
    predicted) 0/1 matrices."""
    from headstart.core.splits import score_label
    from headstart.core.tasks import MULTI

    proba = {n: MULTI.probabilities(lg) for n, (_, lg) in logits.items()}
    thresholds, chosen = choose_thresholds(labels["val"], proba["val"], rule)
    base = {n: frequency_baseline(labels["train"], len(p)) for n, p in proba.items()}
    base_t, _ = choose_thresholds(labels["val"], base["val"])
    metrics["task"] = MULTI.name
    metrics["label_frequency_thresholds"] = {c: float(t) for c, t in zip(class_names, base_t)}
    metrics["thresholds"] = {
        **chosen,
        "values": {name: float(t) for name, t in zip(class_names, thresholds)},
    }
    scored, scores = {}, {}
    for name, (y, _) in logits.items():
        m = multilabel_metrics(y, proba[name], thresholds, class_names, n_boot=n_boot, curves=False)
        b = multilabel_metrics(y, base[name], base_t, class_names, n_boot=n_boot, curves=False)
        scores[name] = {"model": summary(m), "label_frequency": summary(b)}
        metrics[f"{name}_micro_f1"] = m["micro_f1"]
        metrics[f"frequency_baseline_{name}_micro_f1"] = b["micro_f1"]
        scored[name] = (y, MULTI.decide(proba[name], thresholds))
    metrics["multi_label"] = scores
    headline = "test" if "test" in scored else "val"
    h = scores[headline]["model"]
    metrics["headline"] = {
        "split": headline,
        "metric": "micro_f1",
        "micro_f1": h["micro_f1"],
        "micro_f1_ci95": h["micro_f1_ci95"],
        "interval_method": INTERVAL_METHOD,
        "n": h["n"],
        "optimistic": headline == "val",
        "label": score_label(headline),
    }
    return scored


def classic_beside(metrics: dict, scored: dict, sets: dict, n_boot: int = 1000):
    """The modality's classic baseline made one-vs-rest (text: TF-IDF + a logistic regression
    per label), fitted on the train examples the run used with its C and thresholds chosen on
    validation, scored beside the run on each held-out split (``metrics["classic_baseline"]``:
    its scores and the paired micro-F1 comparison on the headline split). Returns the fitted
    baseline (saved with the run), or None for a kind of data without one."""
    from headstart.core.classic import fit_baseline

    model = fit_baseline(sets["train"], sets["val"], len(sets["train"].class_names))
    if model is None or getattr(model, "thresholds", None) is None:
        return None
    names = list(sets["train"].class_names)
    record = {"name": model.name, "description": model.describe(), "fit": model.record}
    for name, (y, pred) in scored.items():
        theirs = model.predict_proba(sets[name])
        m = multilabel_metrics(y, theirs, model.thresholds, names, n_boot=n_boot, curves=False)
        record[name] = summary(m)
        if name == metrics["headline"]["split"]:
            record["paired"] = paired_micro_f1(
                y,
                pred,
                theirs >= model.thresholds[None, :],
                this_name="the model",
                other_name=model.name,
                noun=sets["train"].noun,
                n_boot=n_boot,
            )
    metrics["classic_baseline"] = record
    return model


def confident_wrong_sets(evaluation: dict, k: int = 9) -> list[dict]:
    """Examples whose predicted label set is not their true one, most confident first (the
    probability of the predicted set under the labels' independent sigmoids), in the form of
    :func:`headstart.core.evaluate.confident_mistakes`: id, true and predicted sets in words,
    that probability."""
    pred = evaluation["predictions"]
    names = list(evaluation["per_label"])
    proba = np.asarray(pred["proba"], np.float64)
    y = np.asarray(pred["y_true"])
    guess = proba >= np.asarray(pred["thresholds"])[None, :]
    p_set = np.prod(np.where(guess, proba, 1 - proba), axis=1)
    wrong = np.flatnonzero((guess != (y == 1)).any(axis=1))
    order = wrong[np.argsort(-p_set[wrong], kind="stable")][:k]
    return [
        {
            "id": pred["ids"][i],
            "true": label_set_text(y[i], names),
            "predicted": label_set_text(guess[i], names),
            "p": float(p_set[i]),
        }
        for i in order
    ]


def paired_micro_f1(
    y: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    *,
    this_name: str,
    other_name: str,
    noun: str = "example",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """The micro-F1 of ``first``'s 0/1 predictions minus ``second``'s on the same examples,
    with a 95% paired percentile-bootstrap interval (both scored on each resample), and a
    verdict in words: one is better only when the interval leaves out zero."""
    y, first, second = (np.asarray(a) == 1 for a in (y, first, second))
    n = len(y)
    diff, diffs = _paired_differences(y, first, second, n_boot, seed)
    lo, hi = (float(np.percentile(diffs, q)) for q in (2.5, 97.5)) if n else (0.0, 0.0)
    interval = f"95% interval {100 * lo:+.1f} to {100 * hi:+.1f}"
    identical = bool(n) and bool((first == second).all())
    if not n:
        verdict = f"No {noun} could be read by both {this_name} and {other_name}."
    elif identical:  # every resample agrees: no interval to draw, and none is shown
        lo = hi = None
        verdict = (
            f"Both made identical predictions on all {n:,} {noun}s ({this_name}, {other_name}): "
            f"no difference was measured, and {n:,} {noun}s cannot rule one out."
        )
    elif lo <= 0 <= hi:
        verdict = (
            f"The data cannot tell {this_name} and {other_name} apart on these {n:,} {noun}s: "
            f"micro-F1 difference {100 * diff:+.1f} points (first minus second; {interval})."
        )
    else:
        better, worse, low, high = (
            (this_name, other_name, lo, hi) if diff > 0 else (other_name, this_name, -hi, -lo)
        )
        verdict = (
            f"{better} is better than {worse} by {100 * abs(diff):.1f} points of micro-F1 "
            f"(95% interval {100 * low:.1f} to {100 * high:.1f}) on the same {n:,} {noun}s."
        )
    return {
        "this": this_name,
        "other": other_name,
        "n": n,
        "micro_f1_difference": diff,
        "micro_f1_difference_ci95": None if identical else (lo, hi),
        "distinguishable": bool(n and not identical and not lo <= 0 <= hi),
        "interval_method": "paired percentile bootstrap over examples (both scored on each "
        f"resample), {n_boot} resamples",
        "verdict": verdict,
    }


def paired_f1_noise(
    y: np.ndarray, new: np.ndarray, old: np.ndarray, n_boot: int = 500, seed: int = 0
) -> tuple[float, float]:
    """(micro-F1 of ``new`` minus ``old``'s 0/1 predictions on the same examples, the standard
    deviation of that difference over paired bootstrap resamples): the multi-label
    counterpart of :func:`headstart.core.evaluate.paired_noise`, what ``--strategy auto``
    asks a candidate to beat."""
    y, new, old = (np.asarray(a) == 1 for a in (y, new, old))
    if not len(y):
        return 0.0, 0.0
    diff, diffs = _paired_differences(y, new, old, n_boot, seed)
    return diff, float(np.std(diffs))


def _paired_differences(y, first, second, n_boot: int, seed: int) -> tuple[float, np.ndarray]:
    """(micro-F1 of ``first`` minus ``second`` on the same examples, that difference on each
    paired bootstrap resample: both scored on the same draws)."""
    w = resample_counts(len(y), n_boot, seed)
    ones = np.ones((1, len(y)))
    diff = float(f1_scores(ones, y, first)[0] - f1_scores(ones, y, second)[0])
    return diff, f1_scores(w, y, first) - f1_scores(w, y, second)
