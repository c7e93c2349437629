"""A trained model's held-out scores as the run records them: one inference pass per
held-out split, accuracy (or micro-F1) beside the majority class, the headline with its
interval, and where the time went."""

from __future__ import annotations

import numpy as np
import torch

from headstart.core.loop import accuracy_of, predict_scores
from headstart.core.model import TransferModel
from headstart.core.multilabel import held_out_scores
from headstart.core.preparation import Prepared, used_labels
from headstart.core.splits import score_label
from headstart.core.statistics import INTERVAL_METHODS, accuracy_interval
from headstart.core.tasks import MULTI, label_counts, task_of


def run_metrics(
    config, splits, history, prepared: Prepared, device, extract_seconds, plan, group
) -> dict:
    labels = used_labels(splits, prepared)
    train_counts = label_counts(labels["train"], len(splits.class_names))
    # one inference pass per held-out split gives its accuracy and the headline's interval;
    # with --tta, as the saved model predicts: each image averaged with its mirror image
    if isinstance(prepared.module, TransferModel):
        prepared.module.tta = config.tta
    held_out = {"val": prepared.val, "test": prepared.test}
    logits = {
        name: predict_scores(
            prepared.module,
            inputs,
            torch.device(device),
            mirrored=prepared.mirrored.get(name),
            group=group,
        )
        for name, inputs in held_out.items()
        if inputs is not None
    }
    metrics = {
        "train_class_counts": train_counts.tolist(),
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.epochs),
        "stopped_early": history.stopped_early,
        "n_examples": {n: len(v) for n, v in labels.items()},
        "n_unreadable": {n: len(s) - len(labels[n]) for n, s in splits.items().items()},
        # read but unusable (an empty text file: in no split) or unreadable when used (a
        # corrupt image: dropped from its split), each {"path", "reason"}
        "skipped_examples": [*splits.method.get("skipped", []), *prepared.unreadable],
        "strategy": {
            **config.strategy_spec().to_dict(),
            "trainable_modules": len(plan.trainable),
            "cut": prepared.record.get("cut") or prepared.record.get("reason"),
        },
        # samples left out of a step because their batch held one (a training BatchNorm
        # cannot normalise a single sample); batching avoids it unless unreadable files
        # shrink a batch to one
        "skipped_training_samples": history.skipped_samples,
        "timing": {
            "feature_extraction_seconds": round(extract_seconds, 3),
            "training_seconds": round(history.seconds, 3),
            "seconds_per_epoch": round(history.seconds / max(1, len(history.epochs)), 3),
        },
        "feature_cache": prepared.record,
    }
    if task_of(labels["train"]) is MULTI:
        scored = held_out_scores(
            metrics, labels, logits, splits.class_names, rule=config.thresholds
        )
    else:
        scored = _single_label_scores(metrics, labels, logits, splits.class_names)
    if history.out_of_time:
        metrics["out_of_time"] = True
    return metrics, scored, {name: lg for name, (_, lg) in logits.items()}


def _single_label_scores(metrics: dict, labels: dict, logits: dict, class_names) -> dict:
    """Each held-out split's (true, predicted) classes, their accuracies, the majority class's
    and the headline into ``metrics``."""
    scored = {
        name: (y, lg.argmax(1) if len(y) else np.zeros(0, np.int64))
        for name, (y, lg) in logits.items()
    }
    majority = int(np.argmax(label_counts(labels["train"], len(class_names))))
    metrics["val_accuracy"] = accuracy_of(*scored["val"])
    metrics["majority_class"] = class_names[majority]
    metrics["majority_baseline_val_accuracy"] = float(np.mean(labels["val"] == majority))
    if "test" in scored:
        metrics["test_accuracy"] = accuracy_of(*scored["test"])
        metrics["majority_baseline_test_accuracy"] = float(np.mean(labels["test"] == majority))
    headline = "test" if "test" in scored else "val"
    metrics["headline"] = {
        **scored_headline(headline, *scored[headline]),
        "optimistic": headline == "val",
        "label": score_label(headline),
    }
    return scored


def scored_headline(split: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """A headline score: the split, accuracy with its 95% interval and its method, the count."""
    return {
        "split": split,
        "accuracy": accuracy_of(y_true, y_pred),
        "accuracy_ci95": accuracy_interval(int(np.sum(y_true == y_pred)), len(y_true)),
        "interval_method": INTERVAL_METHODS["accuracy"],
        "n": int(len(y_true)),
    }
