"""Classifier heads that sit on the pooled backbone features.

``lesson`` is the founding lesson's head, layer for layer: Flatten -> BatchNorm -> Dense(50,
ReLU) -> Dropout(0.5) -> Dense(n_classes), producing logits; with 1024 DenseNet121 features and
10 classes it has exactly the lesson's 53,808 trainable parameters. Its BatchNorm keeps Keras'
epsilon (1e-3) but not Keras' momentum (0.99): at that rate the running statistics need
hundreds of steps to settle, and on a small data set (a few steps an epoch) early stopping
ended runs while evaluation still normalised with statistics near their 0/1 start. PyTorch's
default momentum (0.1, Keras' 0.9) settles within a few epochs and measured better on small
data (``BENCHMARKS.md``, head BatchNorm momentum).
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


#: PyTorch's default (Keras' momentum 0.9); see the module docstring for why not Keras' 0.99.
HEAD_BN_MOMENTUM = 0.1


def build_head(spec: HeadSpec, in_features: int, n_classes: int) -> nn.Sequential:
    if spec.kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, n_classes))
    return nn.Sequential(
        nn.Flatten(),
        nn.BatchNorm1d(in_features, eps=1e-3, momentum=HEAD_BN_MOMENTUM),
        nn.Linear(in_features, spec.hidden),
        nn.ReLU(),
        nn.Dropout(spec.dropout),
        nn.Linear(spec.hidden, n_classes),
    )
