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
from headstart.strategies import Strategy
from headstart.train import FitSettings

#: none; cached (K views per image computed once, sampled per epoch); on-the-fly (fresh views
#: every epoch, so the frozen part runs every step).
AUGMENT_MODES = ("none", "cached", "on-the-fly")


def parse_bytes(text: str | int | None) -> int | None:
    """'2GB', '500MB', '1.5G', 123 -> bytes; 'auto' or None -> None (decided from free space)."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return None
    if isinstance(text, int):
        return text
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(float(t))
    except ValueError:
        raise ConfigError(f"cache budget {text!r} is not a size like 500MB or 4GB.") from None


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
    strategy: str = "feature-extraction"
    unfreeze: int = 1
    layers: int = 0
    backbone_lr: float = 1e-5
    bn: str = "auto"
    schedule: str = "none"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    class_weights: str = "none"
    augment: str = "none"
    views: int = 8
    flip: bool = True
    cache: bool = True
    cache_budget: str = "auto"
    cache_dtype: str = "float16"
    workers: int = -1
    device: str = "auto"
    parent: str | None = None
    candidates: str | None = None

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
        if isinstance(self.augment, bool):  # older configs and the Python API accept booleans
            self.augment = "cached" if self.augment else "none"
        if self.augment not in AUGMENT_MODES:
            raise ConfigError(
                f"augment must be one of {', '.join(AUGMENT_MODES)}; got {self.augment!r}."
            )
        if self.class_weights not in ("none", "auto"):
            raise ConfigError(f"class_weights must be none or auto; got {self.class_weights!r}.")
        if self.bn not in ("auto", "frozen", "train"):
            raise ConfigError(f"bn must be auto, frozen or train; got {self.bn!r}.")
        if self.workers < -1:
            raise ConfigError(f"workers must be -1 (auto), 0 or more; got {self.workers}.")
        parse_bytes(self.cache_budget)
        if self.cache_dtype not in ("float16", "float32"):
            raise ConfigError(f"cache_dtype must be float16 or float32; got {self.cache_dtype!r}.")
        self.head_spec()
        if self.strategy != "auto":  # "auto" is decided from the data by headstart.advise
            self.strategy_spec()
            self.fit_settings()

    def strategy_spec(self) -> Strategy:
        return Strategy(self.strategy, self.unfreeze, self.layers)

    def resolved_bn(self, n_train: int) -> str:
        """``auto``: BatchNorm statistics stay frozen for small data (under 10,000 images),
        except when training from scratch, where they must learn."""
        if self.bn != "auto":
            return self.bn
        if self.strategy == "scratch" or n_train >= 10_000:
            return "train"
        return "frozen"

    def head_spec(self) -> HeadSpec:
        return HeadSpec(self.head, self.hidden, self.dropout)

    def fit_settings(self, n_train: int = 0) -> FitSettings:
        backbone_lr = self.lr if self.strategy == "scratch" else self.backbone_lr
        return FitSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
            seed=self.seed,
            backbone_lr=backbone_lr,
            bn=self.resolved_bn(n_train),
            schedule=self.schedule,
            warmup_epochs=self.warmup_epochs,
            label_smoothing=self.label_smoothing,
        )

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
