"""How a model is fitted (epochs, batch, optimizer, learning rates, early stopping, schedule),
checked when a configuration is made: light on purpose, so that a setting out of range is
answered before PyTorch loads. :mod:`headstart.core.loop` fits by these settings; the values
a configuration leaves to auto come from :mod:`headstart.core.recipe`."""

from __future__ import annotations

from dataclasses import dataclass

from headstart.choices import OPTIMIZERS, SCHEDULES
from headstart.errors import ConfigError


@dataclass(frozen=True)
class FitSettings:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5
    seed: int = 0
    backbone_lr: float = 1e-5
    bn: str = "frozen"
    optimizer: str = "adam"
    schedule: str = "none"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1; got {self.epochs}.")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1; got {self.batch_size}.")
        if not self.lr > 0 or not self.backbone_lr > 0:
            raise ConfigError(
                f"--lr and --backbone-lr must be positive; got {self.lr}, {self.backbone_lr}."
            )
        if self.patience < 0:
            raise ConfigError(
                f"--patience must be 0 (no early stopping) or more; got {self.patience}."
            )
        if self.bn not in ("frozen", "train"):
            raise ConfigError(f"bn must be frozen or train; got {self.bn!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}."
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}."
            )
        if not self.warmup_epochs >= 0:
            raise ConfigError(f"warm-up must be 0 or more epochs; got {self.warmup_epochs}.")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight decay must be 0 or more; got {self.weight_decay}.")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label smoothing must be in [0, 1); got {self.label_smoothing}.")
