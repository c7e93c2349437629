"""Classifier heads that sit on the pooled backbone features.

``lesson`` is the founding lesson's head, layer for layer: Flatten -> BatchNorm -> Dense(50,
ReLU) -> Dropout(0.5) -> Dense(n_classes), producing logits; with 1024 DenseNet121 features and
10 classes it has exactly the lesson's 53,808 trainable parameters. Its BatchNorm keeps Keras'
epsilon (1e-3) but not Keras' momentum (0.99): at that rate the running statistics need
hundreds of steps to settle, and on a small data set (a few steps an epoch) early stopping
ended runs while evaluation still normalised with statistics near their 0/1 start. PyTorch's
default momentum (0.1, Keras' 0.9) settles within a few epochs and measured better on small
data (``BENCHMARKS.md``, head BatchNorm momentum).
``linear`` is the linear probe: one Dense layer. On cached features it is fitted by L-BFGS
as a logistic regression on standardised features, the standardisation folded into its
weights (:mod:`headstart.core.probe`). Where it trains with the network (fine-tuning from the
start, or ``--augment on-the-fly``), a BatchNorm without affine parameters standardises each
feature before it (MAE's linear-probing protocol, He et al. 2022: features from different
depths come on very different scales) and the network's optimizer trains both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a head is built, not when a setting is checked
    from torch import nn

from headstart.choices import HEADS
from headstart.errors import ConfigError

#: The head kind of an ensemble run (not a ``--head`` choice).
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class HeadSpec:
    kind: str = "lesson"
    hidden: int = 50
    dropout: float = 0.5
    #: the linear head's standardising layer; False in runs saved before it existed, which
    #: load as they were trained (TrainConfig.head_spec sets it for every new linear head)
    standardize: bool = False
    #: an ensemble's members (``kind="ensemble"``, built by ``--strategy auto``, never asked
    #: for): each {"head": a member's spec, "columns": [[start, stop], ...] of the features it
    #: reads (joined in order; one [start, stop] in runs saved before),
    #: "weight", "candidate": its name} (:mod:`headstart.core.ensemble`)
    members: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))
        if self.kind == ENSEMBLE:
            if len(self.members) < 2:
                raise ConfigError("an ensemble head needs at least two members.")
            return
        if self.kind not in HEADS:
            raise ConfigError(f"head must be one of {', '.join(HEADS)}; got {self.kind!r}.")
        if self.hidden < 1:
            raise ConfigError(f"head hidden size must be at least 1; got {self.hidden}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {self.dropout}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["members"]:  # (a single head: as runs saved before ensembles)
            del d["members"]
        return d


def member_ranges(columns) -> list[tuple[int, int]]:
    """An ensemble member's columns as (start, end) ranges: ``[[a, b], [c, d]]``, or one
    ``[a, b]`` as runs saved before backbones side by side recorded it."""
    if columns and isinstance(columns[0], int):
        return [(int(columns[0]), int(columns[1]))]
    return [(int(lo), int(hi)) for lo, hi in columns]


#: PyTorch's default (Keras' momentum 0.9); see the module docstring for why not Keras' 0.99.
HEAD_BN_MOMENTUM = 0.1


def build_head(spec: HeadSpec, in_features: int, n_classes: int) -> nn.Module:
    from torch import nn

    if spec.kind == ENSEMBLE:
        from headstart.core.ensemble_head import EnsembleHead

        columns = [member_ranges(m["columns"]) for m in spec.members]
        heads = [
            build_head(HeadSpec(**m["head"]), sum(hi - lo for lo, hi in ranges), n_classes)
            for m, ranges in zip(spec.members, columns)
        ]
        return EnsembleHead(heads, columns, [m["weight"] for m in spec.members])

    if spec.kind == "linear":
        scale = (
            [nn.BatchNorm1d(in_features, affine=False, momentum=HEAD_BN_MOMENTUM)]
            if spec.standardize
            else []
        )
        return nn.Sequential(nn.Flatten(), *scale, nn.Linear(in_features, n_classes))
    return nn.Sequential(
        nn.Flatten(),
        nn.BatchNorm1d(in_features, eps=1e-3, momentum=HEAD_BN_MOMENTUM),
        nn.Linear(in_features, spec.hidden),
        nn.ReLU(),
        nn.Dropout(spec.dropout),
        nn.Linear(spec.hidden, n_classes),
    )
