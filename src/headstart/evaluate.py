"""Honest evaluation: scikit-learn's metrics, bootstrap intervals, baselines in the same table.

With a few hundred evaluation images, two models 3 points apart are often indistinguishable;
every accuracy and macro F1 here therefore comes with a 95% bootstrap interval and the number
of images it rests on. The majority-class baseline is always scored on the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn import metrics as skm

from headstart.data.imageset import ImageSet
from headstart.errors import DataError, RunError


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


def _accuracy_from(cms: np.ndarray) -> np.ndarray:
    return np.trace(cms, axis1=1, axis2=2) / cms.sum(axis=(1, 2))


def _macro_f1_from(cms: np.ndarray) -> np.ndarray:
    """Macro F1 over all classes, zero where undefined (scikit-learn's zero_division=0)."""
    tp = np.diagonal(cms, axis1=1, axis2=2).astype(float)
    denom = cms.sum(axis=1) + cms.sum(axis=2)  # (tp + fn) + (tp + fp)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1.mean(axis=1)


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of accuracy and macro F1 over resampled images.

    Each resample's metrics are read off its confusion matrix, all resamples at once, so
    1,000 resamples cost milliseconds (the point estimates come from scikit-learn).
    """
    if len(y_true) == 0:
        nan = (float("nan"), float("nan"))
        return {"accuracy": nan, "macro_f1": nan}
    cms = _resampled_confusions(np.asarray(y_true), np.asarray(y_pred), n_classes, n_boot, seed)
    alpha = (1 - level) / 2
    out = {}
    for name, values in (("accuracy", _accuracy_from(cms)), ("macro_f1", _macro_f1_from(cms))):
        out[name] = (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))
    return out


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int]) -> float:
    return float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


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
    f1 = _macro_f1(y_true, y_pred, labels)
    ci = bootstrap_intervals(y_true, y_pred, len(class_names), n_boot=n_boot, seed=seed)
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
        "accuracy_ci95": ci["accuracy"],
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred))
        if len(present) > 1
        else acc,
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


def majority_metrics(
    y_true: np.ndarray, majority: int, n_classes: int, *, n_boot: int = 1000, seed: int = 0
) -> dict:
    """The baseline every model must beat: always predict the training set's largest class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.full_like(y_true, majority)
    labels = list(range(n_classes))
    ci = bootstrap_intervals(y_true, y_pred, n_classes, n_boot=n_boot, seed=seed)
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == majority)),
        "accuracy_ci95": ci["accuracy"],
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": _macro_f1(y_true, y_pred, labels),
        "macro_f1_ci95": ci["macro_f1"],
    }


# --------------------------------------------------------------------------- runs


def run_probabilities(
    run, images: ImageSet, *, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(probabilities, valid mask, unreadable) for ``images`` through ``run``'s model.

    A frozen-backbone run reuses the feature cache (same backbone, weights and preprocessing
    as at training time), so evaluating right after training costs no forward pass.
    """
    from headstart.backbones.model import LoadedBackbone
    from headstart.backbones.weights import WeightSource
    from headstart.features import FeatureExtractor

    w = run.weights or {}
    loaded = LoadedBackbone(
        run.backbone_name,
        run.backbone_name,
        run.model.backbone,
        run.preprocessing,
        WeightSource(w.get("kind", "run"), w.get("detail", ""), w.get("fingerprint", "run")),
    )
    extractor = FeatureExtractor(
        loaded, batch_size=32, progress=progress, cache=bool(run.config.cache)
    )
    fs = extractor.extract(images)
    proba = np.zeros((len(images), len(run.class_names)), dtype=np.float32)
    if fs.valid.any():
        with torch.no_grad():
            logits = run.model.head.eval()(torch.from_numpy(np.asarray(fs.features[fs.valid])))
        proba[fs.valid] = torch.softmax(logits, dim=1).numpy()
    run.model.backbone.cpu()
    return proba, fs.valid, fs.bad


def align_classes(images: ImageSet, run_classes: Sequence[str], where: str) -> ImageSet:
    """Re-index an external data set's labels onto the run's classes, matching by name."""
    lookup = {name: i for i, name in enumerate(run_classes)}
    unknown = [c for c in images.class_names if c not in lookup]
    counts = images.class_counts()
    unknown = [c for c in unknown if counts[images.class_names.index(c)] > 0]
    if unknown:
        raise DataError(
            f"{where}: class(es) {', '.join(map(repr, unknown))} are not classes of this run "
            f"({', '.join(run_classes)}); the model cannot predict them. Remove those images or "
            "train a run that knows them."
        )
    mapping = np.array([lookup.get(c, -1) for c in images.class_names])
    out = images.subset(np.arange(len(images)))
    out.labels = mapping[images.labels]
    out.class_names = tuple(run_classes)
    return out


def evaluation_images(run, data: str | Path | None = None) -> tuple[ImageSet, str]:
    """The run's own test split (else validation), or an external labelled data set."""
    from headstart.data import load_data, load_source

    if data is not None:
        src = load_source(data)
        sets = list(src.splits().values())
        merged = sets[0] if len(sets) == 1 else _merge(sets)
        return align_classes(merged, run.class_names, str(data)), f"{data} (all splits)"
    if run.config.data is None:
        raise RunError(
            "this run was trained on in-memory arrays; pass the labelled DATA to evaluate on."
        )
    splits = load_data(
        run.config.data,
        split_record=run.split,
        filename_column=run.config.filename_column,
        label_column=run.config.label_column,
    )
    if splits.test is not None:
        return splits.test, "test split"
    return splits.val, "validation split"


def _merge(sets: list[ImageSet]) -> ImageSet:
    from headstart.data.imageset import concat

    if all(s.paths is not None for s in sets) or all(s.array is sets[0].array for s in sets):
        return concat(sets, "eval")
    return sets[-1]


def evaluate_run(
    run,
    data: str | Path | ImageSet | None = None,
    *,
    compare: Sequence = (),
    n_boot: int = 1000,
    progress: bool = False,
    described: str = "",
) -> dict:
    """Metrics of ``run`` and every run in ``compare`` on the same images, plus the baseline.

    ``data`` is an external labelled data set (any layout), ready images, or None for the
    run's own test split (else its validation split).
    """
    if isinstance(data, ImageSet):
        images, described = data, described or f"{data.name} split"
    else:
        images, described = evaluation_images(run, data)
    if len(images) == 0:
        raise DataError(f"no images to evaluate on in the {described}.")
    proba, valid, bad = run_probabilities(run, images, progress=progress)
    y = images.labels[valid]
    result = classification_metrics(y, proba[valid], run.class_names, n_boot=n_boot)
    majority = int(np.argmax(np.bincount(_train_labels(run), minlength=len(run.class_names))))
    rows = [
        {"name": _run_name(run), "kind": "this run", **_summary(result)},
        {
            "name": f"majority class ('{run.class_names[majority]}')",
            "kind": "baseline",
            **majority_metrics(y, majority, len(run.class_names), n_boot=n_boot),
        },
    ]
    for other in compare:
        if tuple(other.class_names) != tuple(run.class_names):
            raise DataError(
                f"{other.path}: classes ({', '.join(other.class_names)}) differ from this run's; "
                "compared runs must predict the same classes."
            )
        op, ov, _ = run_probabilities(other, images, progress=progress)
        keep = valid & ov
        om = classification_metrics(images.labels[keep], op[keep], run.class_names, n_boot=n_boot)
        rows.append({"name": _run_name(other), "kind": "compared run", **_summary(om)})
    # keep predictions so plots and the report can show confident mistakes
    result.update(
        {
            "evaluated_on": described,
            "unreadable": bad,
            "table": rows,
            "predictions": {
                "ids": [images.ids[i] for i in np.flatnonzero(valid)],
                "y_true": y.tolist(),
                "proba": np.round(proba[valid], 5).tolist(),
            },
        }
    )
    return result


def _summary(m: dict) -> dict:
    keys = (
        "n",
        "accuracy",
        "accuracy_ci95",
        "balanced_accuracy",
        "macro_f1",
        "macro_f1_ci95",
        "log_loss",
        "macro_auc",
    )
    return {k: m[k] for k in keys if k in m}


def _run_name(run) -> str:
    name = Path(run.path).name if run.path else "run"
    return f"{name} ({run.backbone_name}, {run.strategy.label()})"


def _train_labels(run) -> np.ndarray:
    counts = run.metrics.get("train_class_counts")
    if counts:
        return np.repeat(np.arange(len(counts)), counts)
    return np.zeros(1, dtype=np.int64)
