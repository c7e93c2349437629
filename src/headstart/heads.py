"""Classifier heads that sit on the pooled backbone features.

``lesson`` is the founding lesson's head, layer for layer: Flatten -> BatchNorm -> Dense(50,
ReLU) -> Dropout(0.5) -> Dense(n_classes), producing logits. BatchNorm uses Keras' defaults
(momentum 0.99, epsilon 1e-3) so the numbers match what the lesson's users saw; with 1024
DenseNet121 features and 10 classes it has exactly the lesson's 53,808 trainable parameters.
``linear`` is a single Dense layer (a linear probe).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from headstart.choices import HEADS
from headstart.errors import ConfigError


@dataclass(frozen=True)
class HeadSpec:
    kind: str = "lesson"
    hidden: int = 50
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in HEADS:
            raise ConfigError(f"head must be one of {', '.join(HEADS)}; got {self.kind!r}.")
        if self.hidden < 1:
            raise ConfigError(f"head hidden size must be at least 1; got {self.hidden}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {self.dropout}.")

    def to_dict(self) -> dict:
        return asdict(self)


def build_head(spec: HeadSpec, in_features: int, n_classes: int) -> nn.Sequential:
    if spec.kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, n_classes))
    return nn.Sequential(
        nn.Flatten(),
        nn.BatchNorm1d(in_features, eps=1e-3, momentum=0.01),
        nn.Linear(in_features, spec.hidden),
        nn.ReLU(),
        nn.Dropout(spec.dropout),
        nn.Linear(spec.hidden, n_classes),
    )
