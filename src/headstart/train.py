"""The training loop for a head on cached features: the lesson's settings as defaults.

Adam, cross-entropy on logits, batch 32, up to 30 epochs, early stopping on validation accuracy
with patience 5, best weights restored. With several cached augmented views per training image,
each epoch draws one view per image at random (seeded), so augmentation still varies between
epochs without re-running the backbone. Deterministic on CPU for a given seed.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from headstart.errors import ConfigError


@dataclass(frozen=True)
class FitSettings:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1; got {self.epochs}.")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1; got {self.batch_size}.")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be positive; got {self.lr}.")
        if self.patience < 0:
            raise ConfigError(
                f"patience must be 0 (no early stopping) or more; got {self.patience}."
            )


@dataclass
class History:
    """Per-epoch loss / accuracy / val_loss / val_accuracy, as Keras' ``History.history``."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0

    def column(self, name: str) -> list[float]:
        return [row[name] for row in self.epochs]

    def to_dict(self) -> dict:
        return asdict(self)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024):
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(x), batch):
            logits = model(x[s : s + batch])
            total_loss += float(loss_fn(logits, y[s : s + batch]))
            correct += int((logits.argmax(1) == y[s : s + batch]).sum())
    n = max(1, len(x))
    return total_loss / n, correct / n


def fit_head(
    head: nn.Module,
    train_views: list[np.ndarray],
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    settings: FitSettings,
    *,
    progress: bool = True,
) -> History:
    """Train ``head`` in place; on return it holds the best epoch's weights."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    views = torch.from_numpy(np.stack([np.asarray(v, np.float32) for v in train_views]))
    y = torch.from_numpy(np.asarray(train_labels, np.int64))
    xv = torch.from_numpy(np.asarray(val_features, np.float32))
    yv = torch.from_numpy(np.asarray(val_labels, np.int64))
    n, n_views = len(y), len(train_views)
    optimizer = torch.optim.Adam(head.parameters(), lr=settings.lr, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    best_acc, best_state, since_best = -1.0, None, 0
    start = time.perf_counter()
    bar = tqdm(
        range(settings.epochs),
        desc="training head",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    for epoch in bar:
        head.train()
        order = rng.permutation(n)
        pick = rng.integers(n_views, size=n) if n_views > 1 else np.zeros(n, dtype=np.int64)
        x_epoch = views[torch.from_numpy(pick), torch.arange(n)]
        total_loss, correct = 0.0, 0
        for s in range(0, n, settings.batch_size):
            idx = torch.from_numpy(order[s : s + settings.batch_size])
            if len(idx) < 2 and n > 1:  # BatchNorm cannot train on a single sample
                continue
            logits = head(x_epoch[idx])
            loss = loss_fn(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        val_loss, val_acc = _evaluate(head, xv, yv)
        row = {
            "epoch": epoch + 1,
            "loss": total_loss / n,
            "accuracy": correct / n,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
        }
        history.epochs.append(row)
        bar.set_postfix(acc=f"{row['accuracy']:.3f}", val_acc=f"{val_acc:.3f}")
        if val_acc > best_acc:
            best_acc, best_state, since_best = val_acc, copy.deepcopy(head.state_dict()), 0
            history.best_epoch = epoch + 1
        else:
            since_best += 1
            if settings.patience and since_best >= settings.patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    history.seconds = time.perf_counter() - start
    return history
