"""What is predicted, as the core sees it: one class per example, or a set of labels.

A task is decided by the labels themselves, so nothing has to be threaded through the layers:
a 1-D vector of class indices is single-label classification (softmax, cross-entropy, the
argmax), a 2-D 0/1 indicator matrix (examples x labels) is multi-label classification (one
sigmoid per label, binary cross-entropy, thresholds chosen on validation).
:func:`task_of` answers for any label array; everything that differs between the two lives
in its task object, so the loop, the probe, the splits and the predictions ask it instead of
branching; :func:`combine` is how a run's members' outputs become one. Adding a task
(regression, say) is one more class here, and a module of its scores and decisions beside
:mod:`headstart.core.multilabel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headstart.choices import TASKS

SINGLE_LABEL, MULTI_LABEL = TASKS[1], TASKS[2]


@dataclass(frozen=True)
class SingleLabel:
    """One class per example: softmax over the classes, the largest probability decides."""

    name: str = SINGLE_LABEL
    #: what a history's "accuracy" column counts (the training history's panel)
    accuracy_label: str = "Accuracy"
    #: the score candidates are ranked by (``metrics[score_key]``: validation's), in words
    score_key: str = "val_accuracy"
    score_name: str = "accuracy"

    def loss_fn(self, weight=None, label_smoothing: float = 0.0):
        """The summed training loss of a batch (divided by the batch's weight by the loop)."""
        from torch import nn

        return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing, reduction="sum")

    def target(self, y):
        """A batch's labels as the loss takes them."""
        return y

    def loss_sum(self, logits: np.ndarray, y: np.ndarray) -> float:
        """Summed cross-entropy of ``logits`` against ``y`` (per example: one number each)."""
        import torch
        from torch import nn

        return float(
            nn.functional.cross_entropy(
                torch.from_numpy(np.asarray(logits, np.float32)),
                torch.from_numpy(np.asarray(y, np.int64)),
                reduction="sum",
            )
        )

    def correct(self, logits, y) -> int:
        """How many of a batch's examples (torch or numpy) the argmax gets right."""
        return int((logits.argmax(1) == y).sum())

    def units(self, y) -> int:
        """How many things :meth:`correct` counts in a batch: its examples."""
        return len(y)

    def selection_score(self, val_loss: float, val_accuracy: float) -> float:
        """Higher is better: what chooses the best epoch (validation accuracy)."""
        return val_accuracy

    def activate(self, logits):
        """Probabilities from a torch tensor of logits (inside a network or an exported
        graph): the softmax over classes."""
        import torch

        return torch.softmax(logits, dim=1)

    def decide(self, proba: np.ndarray, thresholds=None) -> np.ndarray:
        """Predicted classes from probabilities."""
        return np.asarray(proba).argmax(axis=1)


@dataclass(frozen=True)
class MultiLabel:
    """Any number of labels per example: an independent sigmoid per label, binary
    cross-entropy averaged over the labels (Keras' ``binary_crossentropy``), each label on
    where its probability reaches its threshold (:func:`headstart.core.multilabel.thresholds`,
    chosen on validation)."""

    name: str = MULTI_LABEL
    accuracy_label: str = "Label accuracy (at 0.5)"  # each (example, label) decision
    score_key: str = "val_micro_f1"
    score_name: str = "micro-F1"

    def loss_fn(self, weight=None, label_smoothing: float = 0.0):
        from torch import nn

        class SummedBCE(nn.Module):
            """Binary cross-entropy, averaged over labels and summed over the batch."""

            def forward(self, logits, y):
                y = y.float()
                if label_smoothing:
                    y = y * (1 - label_smoothing) + label_smoothing / 2
                per = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
                return per.mean(dim=1).sum()

        return SummedBCE()

    def target(self, y):
        return y.float()

    def loss_sum(self, logits: np.ndarray, y: np.ndarray) -> float:
        import torch
        from torch import nn

        per = nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(np.asarray(logits, np.float32)),
            torch.from_numpy(np.asarray(y, np.float32)),
            reduction="none",
        )
        return float(per.mean(dim=1).sum())

    def correct(self, logits, y) -> int:
        return int(((logits > 0) == (y > 0.5)).sum())

    def units(self, y) -> int:
        return int(np.prod(tuple(y.shape)))

    def selection_score(self, val_loss: float, val_accuracy: float) -> float:
        """The lowest validation loss chooses the epoch: the label accuracy at 0.5 hardly
        moves when labels are rare (most decisions are "absent")."""
        return -val_loss

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        z = np.clip(np.asarray(logits, np.float64), -60, 60)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def activate(self, logits):
        """One sigmoid per label (inside a network or an exported graph)."""
        import torch

        return torch.sigmoid(logits)

    def decide(self, proba: np.ndarray, thresholds=None) -> np.ndarray:
        """The 0/1 label matrix: each label where its probability reaches its threshold (0.5
        without thresholds)."""
        t = 0.5 if thresholds is None else np.asarray(thresholds, np.float64)[None, :]
        return (np.asarray(proba) >= t).astype(np.int64)


def combine(probas, weights):
    """A run's members' probabilities combined, the one place they are (an ensemble's heads,
    an encoder blended with the classic baseline; numpy arrays or torch tensors alike, in the
    export graphs too): their weighted average, a member of weight 0 left out. The average
    of probabilities is a probability for either task: of each class (single-label, rows
    still summing to one) or of each label (multi-label)."""
    total = None
    for w, p in zip(weights, probas):
        if w > 0:
            total = p * w if total is None else total + p * w
    return total


SINGLE = SingleLabel()
MULTI = MultiLabel()


def task_of(labels) -> SingleLabel | MultiLabel:
    """The task of a label array: 2-D (examples x labels, 0/1) is multi-label."""
    return MULTI if np.ndim(labels) == 2 else SINGLE


def named(name: str | None) -> SingleLabel | MultiLabel:
    """The task called ``name`` (a run's record; older runs record none: single-label)."""
    return MULTI if name == MULTI_LABEL else SINGLE


def label_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Examples per class (single-label) or per label (multi-label)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels.sum(axis=0).astype(np.int64)
    return np.bincount(labels.astype(np.int64), minlength=n_classes)


def uncount(counts: list[int], label) -> None:
    """Take one example of ``label`` (a class index, or a row of 0/1 labels) out of
    ``counts`` in place: an unreadable example found after counting."""
    label = np.asarray(label)
    for j in np.flatnonzero(label) if label.ndim else [int(label)]:
        counts[int(j)] -= 1


def label_text(label, names) -> str:
    """One example's label in words: its class, or its labels joined (``"cat; dog"``,
    ``"(none)"``)."""
    label = np.asarray(label)
    if label.ndim:
        on = [names[j] for j in np.flatnonzero(label)]
        return "; ".join(on) if on else "(none)"
    return names[int(label)]
