"""One serialisable object describes a training run. The CLI builds it, the run stores it,
``headstart train --config RUN_DIR/config.json`` replays it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path

from headstart.backbones.aliases import DEFAULT_BACKBONE
from headstart.backbones.model import POOLINGS, RESIZE_MODES
from headstart.errors import ConfigError
from headstart.heads import HEADS, HeadSpec
from headstart.train import FitSettings


@dataclass
class TrainConfig:
    """Everything a run depends on. Defaults are the founding lesson's recipe."""

    data: str | None = None
    val_split: float = 0.2
    test_split: float = 0.0
    seed: int = 0
    filename_column: str = "filename"
    label_column: str = "label"
    backbone: str = DEFAULT_BACKBONE
    weights: str = "imagenet"
    pooling: str = "max"
    image_size: int | None = None
    resize: str = "pad"
    head: str = "lesson"
    hidden: int = 50
    dropout: float = 0.5
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 5
    augment: bool = False
    views: int = 4
    cache: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(
                f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}."
            )
        if self.resize not in RESIZE_MODES:
            raise ConfigError(
                f"resize must be one of {', '.join(RESIZE_MODES)}; got {self.resize!r}."
            )
        if self.head not in HEADS:
            raise ConfigError(f"head must be one of {', '.join(HEADS)}; got {self.head!r}.")
        if self.views < 1:
            raise ConfigError(f"views must be at least 1; got {self.views}.")
        self.head_spec()
        self.fit_settings()

    def head_spec(self) -> HeadSpec:
        return HeadSpec(self.head, self.hidden, self.dropout)

    def fit_settings(self) -> FitSettings:
        return FitSettings(self.epochs, self.batch_size, self.lr, self.patience, self.seed)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}.")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: cannot read configuration ({e}).") from None
        return cls.from_dict(payload.get("config", payload))


def resolve_device(name: str) -> str:
    """``auto`` -> cuda if available, else mps, else cpu."""
    import torch

    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but no CUDA GPU is available.")
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
