"""Figures a person reads at a glance: titles, axis labels, class names, one idea per figure.

Every function writes one PNG (atomically) and returns its path. matplotlib runs headless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from headstart.io import atomic_path  # noqa: E402

_BLUE, _ORANGE, _GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(
    history, path: str | Path, title: str = "Training history", accuracy: str = "Accuracy"
) -> Path:
    """The lesson's plot_history: accuracy and loss, train vs validation, best epoch marked.

    One legend under both panels (train, validation, best epoch), so nothing sits on the data.
    """
    epochs = history.column("epoch")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "accuracy", accuracy), (axes[1], "loss", "Loss")):
        ax.plot(epochs, history.column(metric), "o-", color=_BLUE, ms=3, label="train")
        ax.plot(
            epochs, history.column(f"val_{metric}"), "o-", color=_ORANGE, ms=3, label="validation"
        )
        if history.best_epoch:
            ax.axvline(
                history.best_epoch,
                color=_GREY,
                ls="--",
                lw=1,
                label=f"best epoch ({history.best_epoch}): its weights are kept",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    stop = " (early stopping)" if history.stopped_early else ""
    fig.suptitle(f"{title}{stop}")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(fig, path)


@dataclass(frozen=True)
class Continuation:
    """Where each history of a chain of runs sits on one epoch axis (see
    :func:`continuation_layout`)."""

    xs: list[np.ndarray]  # the epochs of history k, numbered after those of histories < k
    starts: list[float]  # the vertical marker before each later history (between epochs)
    #: ((x, y) of the previous run's best epoch, (x, y) of this run's first epoch, best epoch)
    links: list[tuple[tuple[float, float], tuple[float, float], int]]


def plot_probe_path(probe: dict, path: str | Path, title: str = "Linear probe") -> Path:
    """A linear probe's search: validation accuracy and log loss against its L2 strength C
    (log scale), the chosen C marked; the probe's counterpart of the training history."""
    rows = probe["tried"]
    cs = [r["C"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    first = (  # several labels per example: one probe per label, C chosen on their mean AP
        ("val_accuracy", "Validation accuracy")
        if "val_accuracy" in rows[0]
        else ("val_mean_average_precision", "Validation mean average precision")
    )
    for ax, key, label in (
        (axes[0], *first),
        (axes[1], "val_log_loss", "Validation log loss"),
    ):
        ax.plot(cs, [r[key] for r in rows], "o-", color=_ORANGE, ms=3, label="validation")
        ax.axvline(probe["C"], color=_GREY, ls="--", lw=1, label=f"chosen C ({probe['C']:g}): kept")
        ax.set_xscale("log")
        ax.set_xlabel("C (inverse L2 strength; right: weaker)")
        ax.set_ylabel(label)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(fig, path)


def continuation_layout(histories: Sequence, metric: str = "val_accuracy") -> Continuation:
    """Each history continues the one before: the first on epochs 1..N, the next on
    N+1..N+M, and so on. A continued run starts from its parent's *best* epoch's weights (the
    ones kept), so each later history is linked to that epoch of the previous one."""
    xs: list[np.ndarray] = []
    starts: list[float] = []
    links: list = []
    offset = 0
    for k, h in enumerate(histories):
        n = len(h.column(metric))
        xs.append(np.arange(1, n + 1, dtype=float) + offset)
        if k and n:
            prev = histories[k - 1]
            prev_values = prev.column(metric)
            if prev_values:
                best = prev.best_epoch or len(prev_values)
                x0 = xs[k - 1][best - 1]
                links.append(((x0, prev_values[best - 1]), (xs[k][0], h.column(metric)[0]), best))
            starts.append(offset + 0.5)
        offset += n
    return Continuation(xs, starts, links)


def plot_histories(
    histories: dict[str, object],
    path: str | Path,
    metric: str = "val_accuracy",
    title: str | None = None,
) -> Path:
    """The lesson's plot_two_histories ("Frozen, then fine-tuned"): each run's ``metric`` on
    one epoch axis, each continuing the one before (see :func:`continuation_layout`), a dotted
    line where each continuation starts and a dashed link from the best epoch it started from.
    """
    layout = continuation_layout(list(histories.values()), metric)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, ((label, h), x) in enumerate(zip(histories.items(), layout.xs)):
        ax.plot(x, h.column(metric), "o-", ms=3, color=colors[k % len(colors)], label=label)
    for k, start in enumerate(layout.starts):
        ax.axvline(
            start,
            color=_GREY,
            ls=":",
            lw=1.2,
            label="continuation starts" if k == 0 else None,
        )
    for k, ((x0, y0), (x1, y1), best) in enumerate(layout.links):
        ax.plot([x0], [y0], "o", ms=9, mfc="none", mec=_GREY, zorder=3)
        ax.plot(
            [x0, x1],
            [y0, y1],
            ls="--",
            color=_GREY,
            lw=1,
            label=f"starts from epoch {best}'s weights (best)" if k == 0 else None,
        )
    ax.set_xlabel("epoch (continued runs numbered after their parent)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # values that barely differ read as they are (no "1e-7 + 6.8e-1" offset that makes a flat
    # line look like a climb), on an axis at least 5 points tall
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    low, high = ax.get_ylim()
    if high - low < 0.05:
        middle = (high + low) / 2
        ax.set_ylim(middle - 0.025, middle + 0.025)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    ax.set_title(title or f"{metric.replace('_', ' ').capitalize()}: " + ", then ".join(histories))
    return _save(fig, path)


def plot_confusion(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path
) -> Path:
    """Counts and row-normalised (recall per true class), side by side."""
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    size = max(4.5, 0.45 * n + 2)
    # constrained layout keeps the right panel's class names clear of the left colour bar
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1.5, size), layout="constrained")
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


def plot_pr_curves(curves: dict[str, dict], per_label: dict, path: str | Path) -> Path:
    """Precision-recall curve per label with its average precision, and the point each
    label's threshold chose (multi-label)."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, curve in curves.items():
        v = per_label[name]
        (line,) = ax.plot(
            curve["recall"],
            curve["precision"],
            lw=1.5,
            label=f"{name} (AP {v['average_precision']:.3f})",
        )
        if v["precision"] is not None and v["recall"] is not None:  # (none predicted: no point)
            ax.plot(v["recall"], v["precision"], "o", color=line.get_color(), ms=5)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall per label (marker: its threshold)")
    ax.legend(fontsize=7, loc="lower left")
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
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.6 * ncols, 2.8 * nrows), squeeze=False, layout="constrained"
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            # images smaller than their panel (about 280 px) are enlarged: nearest keeps their
            # pixels as they are (and costs a fraction of antialiased resampling)
            small = max(images[k].shape[:2]) < 280
            ax.imshow(images[k], interpolation="nearest" if small else "antialiased")
            ax.set_title(
                titles[k], fontsize=8, color=(title_colors[k] if title_colors else "black")
            )
    fig.suptitle(suptitle)
    return _save(fig, path)


def plot_leaderboard(
    rows: Sequence[dict],
    path: str | Path,
    baseline: float | None = None,
    xlabel: str = "accuracy on the test split",
    classic: dict | None = None,
) -> Path:
    """Accuracy with its 95% Clopper-Pearson interval (``evaluate.accuracy_interval``) per
    backbone, best on top, the majority class (``baseline``) and a classic baseline
    (``classic``: name and accuracy) as lines; each bar's accuracy and interval written beside
    the chart."""
    # best at the top: by rank (validation) when ranked, else by the accuracy shown
    rows = sorted(rows, key=lambda r: -r["rank"] if "rank" in r else r["accuracy"])
    names = [r["name"] for r in rows]
    acc = np.array([r["accuracy"] for r in rows])
    lo = acc - np.array([r["accuracy_ci95"][0] for r in rows])
    hi = np.array([r["accuracy_ci95"][1] for r in rows]) - acc
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    ax.barh(names, acc, xerr=[lo, hi], color=_BLUE, alpha=0.8, capsize=3)
    for i, text in enumerate(leaderboard_labels(rows)):
        ax.text(1.02, i, text, transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    if baseline is not None:
        ax.axvline(baseline, color=_ORANGE, ls="--", label=f"majority class ({baseline:.1%})")
    if classic is not None:  # e.g. TF-IDF + logistic regression on the same split
        ax.axvline(
            classic["accuracy"],
            color="#6b7280",
            ls=":",
            label=f"{classic['name']} ({classic['accuracy']:.1%})",
        )
    if baseline is not None or classic is not None:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"{xlabel} (95% Clopper-Pearson interval)")
    ax.set_title("Backbones compared on your data (frozen, same split)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def leaderboard_labels(rows: Sequence[dict]) -> list[str]:
    """The value label of each bar: accuracy and its 95% interval."""
    return [
        f"{r['accuracy']:.1%} ({r['accuracy_ci95'][0]:.1%}-{r['accuracy_ci95'][1]:.1%})"
        for r in rows
    ]
