"""The transfer model: a backbone (pooled features) and a head, how training starts one, and
the trainable part after a cut.

One place turns a configuration into its starting network (``starting_model``): training,
continuing a saved run and reloading an interrupted one all build it here, so they cannot
drift apart, and anything that warms the feature cache for a run (``--strategy auto``) computes
under the same key (``backbone_for``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

import torch
from torch import nn

from headstart.core.config import TrainConfig
from headstart.core.heads import build_head
from headstart.core.modality import modality_of
from headstart.core.strategies import StrategyPlan, plan_strategy
from headstart.errors import ConfigError

if TYPE_CHECKING:  # a saved run, duck-typed: this module sits below the run directory's
    from headstart.core.runs import Run


class TransferModel(nn.Module):
    """Backbone (pooled features) followed by the head: image batch in, logits out.

    With ``tta`` (test-time augmentation), inference averages the logits of each image and its
    mirror image; training always sees single images.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, tta: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.tta = tta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(x))
        if self.tta and not self.training:
            logits = (logits + self.head(self.backbone(x.flip(-1)))) / 2
        return logits


class Suffix(nn.Module):
    """The trainable part after the cut: remaining backbone units, pooling, head."""

    def __init__(self, units: nn.Sequential, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.units = units
        self.head = head
        object.__setattr__(self, "_backbone", backbone)  # for pooling; not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._backbone.pool(self.units(x)))


def parameter_counts(model: TransferModel) -> dict[str, int]:
    """Total / trainable / frozen parameters, plus the Keras-style total (BN statistics too)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn_stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    )
    return {
        "total": total,
        "trainable": trainable,
        "frozen": total - trainable,
        "keras_style_total": total + bn_stats,
    }


def parameter_rows(counts: dict[str, int]) -> list[tuple[str, int]]:
    """(label, count) of :func:`parameter_counts` as the terminal and the report show them:
    the Keras-style total (BatchNorm statistics counted too, the tutorials' ``model.summary()``
    total) only where it differs from the total, as it does for a network with BatchNorm."""
    labels = {
        "total": "total",
        "trainable": "trainable",
        "frozen": "frozen",
        "keras_style_total": "total as Keras counts it (+ BatchNorm statistics)",
    }
    return [
        (labels.get(key, key.replace("_", " ")), n)
        for key, n in counts.items()
        if key != "keras_style_total" or n != counts.get("total")
    ]


def weights_fingerprint(module: nn.Module) -> str:
    """Content hash of a module's weights: the cache key of a backbone that was trained."""
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def features_record(loaded) -> dict:
    """What the head sees: the last pooled features, or which stages' statistics as well."""
    bb = loaded.backbone
    record = {"kind": bb.features.kind, "dimensions": bb.num_features, "pooling": bb.pooling}
    if bb.taps is not None:
        record.update(
            stages=bb.taps.stages, modules=bb.taps.names, stage_pooling=bb.features.pooling
        )
    return record


def backbone_for(config: TrainConfig):
    """The network a run of ``config`` starts from (random weights for scratch): the one
    place its settings become a network, so anything that warms the feature cache for a run
    (``--strategy auto``) computes under the same key. Each modality reads its settings."""
    return modality_of(config).load_encoder(
        config.backbone,
        weights="none" if config.strategy == "scratch" else config.weights,
        pooling=config.pooling,
        image_size=config.image_size,
        resize=config.resize,
        features=config.feature_spec(),
        max_length=config.max_length,
        long_texts=config.long_texts,
    )


def loaded_from_run(run: Run):
    """The run's network as a loaded encoder, keyed for the feature cache by the run's
    weights: what evaluating and predicting extract features with."""
    return modality_of(run).network_of(run)


def starting_model(
    config: TrainConfig, class_names, parent: Run | None
) -> tuple[object, nn.Module, StrategyPlan]:
    """Backbone, head and strategy plan as training starts: seeded, pretrained (random for
    scratch), continued from ``parent`` when given (its head as trained:
    :func:`starting_head_spec`)."""
    strategy = config.strategy_spec()
    torch.manual_seed(config.seed)
    loaded = backbone_for(config)
    spec = starting_head_spec(config, parent)
    head = build_head(spec, loaded.backbone.num_features, len(class_names))
    if parent is not None:
        _start_from_parent(parent, loaded, head, class_names)
    return loaded, head, plan_strategy(loaded.backbone, strategy)


def starting_head_spec(config: TrainConfig, parent: Run | None):
    """The head a run starts from: the parent's as it was trained, when it continues one (a
    joint text run predicts with a linear layer fitted beside TF-IDF, not a head of its
    own); else as configured."""
    if parent is None:
        return config.head_spec()
    return parent.trained_head_spec or parent.head_spec


def weights_record(loaded, strategy, model: TransferModel) -> dict:
    """Where the backbone's weights came from; a trained backbone is keyed by its content."""
    w = loaded.weights
    if not strategy.trains_backbone:
        return {"kind": w.kind, "detail": w.detail, "fingerprint": w.fingerprint}
    return {
        "kind": "trained",
        "detail": f"{strategy.label()} from {w.describe()}",
        "fingerprint": weights_fingerprint(model.backbone),
    }


def _start_from_parent(parent: Run, loaded, head: nn.Module, class_names):
    """Continue a saved run: its backbone and head weights are the starting point."""
    if tuple(parent.class_names) != tuple(class_names):
        raise ConfigError(f"{parent.path}: its classes differ from the data's; cannot continue.")
    if parent.backbone_name != loaded.timm_name:
        raise ConfigError(f"{parent.path}: trained {parent.backbone_name}, not {loaded.timm_name}.")
    if parent.model.backbone.features != loaded.backbone.features:
        raise ConfigError(
            f"{parent.path}: its head reads {parent.model.backbone.features.kind} features, "
            f"this run's backbone gives {loaded.backbone.features.kind}; continue a run trained "
            "on the same features (fine-tuning continues --features last runs)."
        )
    loaded.backbone.load_state_dict(parent.model.backbone.state_dict())
    trained = parent.trained_head if parent.trained_head is not None else parent.model.head
    head.load_state_dict(trained.state_dict())
    if parent.weights.get("kind") == "trained":
        loaded.weights = dataclasses.replace(  # an image WeightSource or a text TextSource
            loaded.weights,
            kind="trained",
            detail=str(parent.path),
            fingerprint=parent.weights["fingerprint"],
        )
