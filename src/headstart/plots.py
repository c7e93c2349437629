"""Figures a person reads at a glance: titles, axis labels, class names, one idea per figure.

Every function writes one PNG (atomically) and returns its path. matplotlib runs headless.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from headstart.io import atomic_path  # noqa: E402

_BLUE, _ORANGE, _GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(history, path: str | Path, title: str = "Training history") -> Path:
    """The lesson's plot_history: accuracy and loss, train vs validation, best epoch marked."""
    epochs = history.column("epoch")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        ax.plot(epochs, history.column(metric), "o-", color=_BLUE, ms=3, label=f"train {metric}")
        ax.plot(
            epochs,
            history.column(f"val_{metric}"),
            "o-",
            color=_ORANGE,
            ms=3,
            label=f"val_{metric}",
        )
        if history.best_epoch:
            ax.axvline(history.best_epoch, color=_GREY, ls="--", lw=1)
            ax.annotate(
                "best epoch\n(weights kept)",
                (history.best_epoch, ax.get_ylim()[1]),
                xytext=(4, -28),
                textcoords="offset points",
                fontsize=8,
                color=_GREY,
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    stop = " (early stopping)" if history.stopped_early else ""
    fig.suptitle(f"{title}{stop}")
    return _save(fig, path)


def plot_histories(
    histories: dict[str, object],
    path: str | Path,
    metric: str = "val_accuracy",
    title: str | None = None,
) -> Path:
    """The lesson's plot_two_histories, for any number of runs ("Frozen vs Finetuned")."""
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0
    for label, h in histories.items():
        values = h.column(metric)
        ax.plot(np.arange(1, len(values) + 1) + offset, values, "o-", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or f"{metric.replace('_', ' ').capitalize()}: " + " vs ".join(histories))
    return _save(fig, path)


def plot_confusion(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path
) -> Path:
    """Counts and row-normalised (recall per true class), side by side."""
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    size = max(4.5, 0.45 * n + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, data, title, fmt in (
        (axes[0], cm, "Confusion matrix (counts)", "{:.0f}"),
        (axes[1], norm, "Row-normalised (recall)", "{:.2f}"),
    ):
        im = ax.imshow(data, cmap="Blues", vmin=0)
        ax.set_title(title)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), class_names, fontsize=8)
        if n <= 20:
            top = data.max() or 1
            for i in range(n):
                for j in range(n):
                    ax.text(
                        j,
                        i,
                        fmt.format(data[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if data[i, j] > 0.6 * top else "black",
                    )
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_roc(roc: dict[str, dict], path: str | Path) -> Path:
    """One-vs-rest ROC curve per class with its AUC."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, curve in roc.items():
        ax.plot(curve["fpr"], curve["tpr"], lw=1.5, label=f"{name} (AUC {curve['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves (one class vs the rest)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    suptitle: str,
    ncols: int = 3,
    title_colors: Sequence[str] | None = None,
) -> Path:
    """A grid of images with a caption each (samples, augmentations, mistakes)."""
    n = max(1, len(images))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.8 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k], interpolation="nearest" if images[k].shape[0] < 64 else None)
            ax.set_title(
                titles[k], fontsize=8, color=(title_colors[k] if title_colors else "black")
            )
    fig.suptitle(suptitle)
    return _save(fig, path)


def plot_leaderboard(rows: Sequence[dict], path: str | Path, baseline: float | None = None) -> Path:
    """Accuracy with its 95% interval per backbone, best first, baseline as a line."""
    rows = sorted(rows, key=lambda r: r["accuracy"])
    names = [r["name"] for r in rows]
    acc = np.array([r["accuracy"] for r in rows])
    lo = acc - np.array([r["accuracy_ci95"][0] for r in rows])
    hi = np.array([r["accuracy_ci95"][1] for r in rows]) - acc
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5))
    ax.barh(names, acc, xerr=[lo, hi], color=_BLUE, alpha=0.8, capsize=3)
    if baseline is not None:
        ax.axvline(baseline, color=_ORANGE, ls="--", label=f"majority class ({baseline:.1%})")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlim(0, 1)
    ax.set_xlabel("validation accuracy (95% bootstrap interval)")
    ax.set_title("Backbones compared on your data (frozen, same split)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
