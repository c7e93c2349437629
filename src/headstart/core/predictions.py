"""Predictions as every modality reports them: one row per input (its label and class
probabilities, or the reason it has none), and the CSV ``headstart predict`` writes."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    """One input's prediction, or the reason it has none."""

    input: str
    label: str | None
    probabilities: np.ndarray | None
    error: str | None = None


def predictions_csv(predictions: list[Prediction], class_names: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["input", "predicted", "confidence", *[f"p_{c}" for c in class_names], "error"])
    for r in predictions:
        if r.probabilities is None:
            w.writerow([r.input, "", "", *[""] * len(class_names), r.error])
        else:
            w.writerow(
                [
                    r.input,
                    r.label,
                    f"{r.probabilities.max():.4f}",
                    *[f"{v:.6f}" for v in r.probabilities],
                    "",
                ]
            )
    return buf.getvalue()
