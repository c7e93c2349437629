"""A timm model turned into a feature extractor with the Keras ``include_top=False`` meaning.

``Backbone(x)`` returns pooled features: ``forward_features`` (the last feature map for CNNs)
followed by ``avg`` or ``max`` pooling over space, as Keras' ``pooling=`` does; transformer
outputs (tokens) use timm's own ``forward_head(pre_logits=True)``. Modules only the classifier
path uses (VGG's fc6/fc7, pooling, the classifier) are found generically by running
``forward_features`` once and removed, so parameter counts match what actually runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import timm
import torch
from torch import nn

from headstart.choices import DEFAULT_IMAGE_POOLING, POOLINGS, RESIZE_MODES
from headstart.core.config import check_image_size
from headstart.core.featurespec import FeatureSpec
from headstart.core.stages import SequentialPlan, StageMap
from headstart.errors import ConfigError
from headstart.modalities.image.backbones.aliases import resolve_name
from headstart.modalities.image.backbones.depth import StageTaps, pooled_stats
from headstart.modalities.image.backbones.names import unknown_backbone
from headstart.modalities.image.backbones.split import sequential_plan
from headstart.modalities.image.backbones.stages import stage_map
from headstart.modalities.image.backbones.weights import WeightSource, load_pretrained


@dataclass(frozen=True)
class Preprocessing:
    """Everything needed to turn an image into the backbone's input; travels with the run."""

    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    resize: str = "pad"
    crop_pct: float = 0.875

    modality = "image"

    def describe(self) -> str:
        """The input in words, for the terminal."""
        h, w = self.input_size
        return f"{h}x{w}, resize={self.resize}"

    def short(self) -> str:
        """The input in a table cell."""
        return "x".join(map(str, self.input_size))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        d = dict(d)
        d["input_size"] = tuple(d["input_size"])
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**d)


def create_timm_model(timm_name: str) -> nn.Module:
    """Instantiate ``timm_name`` without classifier and without weights."""
    if not timm.is_model(timm_name.split(".")[0]):
        raise unknown_backbone(timm_name)
    return timm.create_model(timm_name, pretrained=False, num_classes=0)


def preprocessing_for(
    model: nn.Module, image_size: int | None = None, resize: str = "pad"
) -> Preprocessing:
    """Read input size, mean/std and interpolation from the model's pretrained config."""
    if resize not in RESIZE_MODES:
        raise ConfigError(f"resize must be one of {', '.join(RESIZE_MODES)}; got {resize!r}.")
    cfg = timm.data.resolve_model_data_config(model)
    h, w = cfg["input_size"][1:]
    if image_size is not None:
        check_image_size(image_size)
        h = w = int(image_size)
    return Preprocessing(
        input_size=(int(h), int(w)),
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        interpolation=str(cfg.get("interpolation", "bilinear")),
        resize=resize,
        crop_pct=float(cfg.get("crop_pct", 0.875)),
    )


class Backbone(nn.Module):
    """timm ``forward_features`` + spatial pooling, with classifier-only modules removed.

    With ``features=FeatureSpec("multi")`` the output is the chosen stages' pooled statistics
    followed by the last feature map's, from the same single forward pass
    (:mod:`headstart.modalities.image.backbones.depth`).
    """

    def __init__(
        self,
        model: nn.Module,
        pooling: str = DEFAULT_IMAGE_POOLING,
        features: FeatureSpec | None = None,
    ):
        super().__init__()
        if pooling == "auto":  # the configuration's "this modality's default"
            pooling = DEFAULT_IMAGE_POOLING
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}.")
        self.model = model
        self.pooling = pooling
        self.features = features or FeatureSpec()
        self.removed = self._drop_head_only_modules()
        self.taps = StageTaps(model, self.features) if self.features.multi else None
        last = int(getattr(model, "num_features", 0))
        self.num_features = last if last and self.taps is None else self._probe_width()

    def _probe_input(self) -> torch.Tensor:
        """One image at the model's pretrained input size (small enough for any family)."""
        cfg = getattr(self.model, "pretrained_cfg", {}) or {}
        h, w = tuple(cfg.get("input_size", (3, 224, 224)))[1:]
        return torch.zeros(1, 3, h, w)

    def _drop_head_only_modules(self) -> list[str]:
        called: set[str] = set()
        hooks = [
            child.register_forward_hook(lambda *_a, _n=name: called.add(_n))
            for name, child in self.model.named_children()
        ]
        was_training = self.model.training
        self.model.eval()  # never let the probe move BatchNorm statistics
        try:
            with torch.no_grad():
                out = self.model.forward_features(self._probe_input())
        finally:
            for h in hooks:
                h.remove()
            self.model.train(was_training)
        self.tokens = out.ndim != 4
        if self.tokens:  # transformers pool through forward_head: keep everything
            return []
        removed = []
        for name, child in list(self.model.named_children()):
            if name not in called and any(True for _ in child.parameters()):
                setattr(self.model, name, nn.Identity())
                removed.append(name)
        return removed

    def _probe_width(self) -> int:
        was_training = self.training
        self.eval()
        with torch.no_grad():
            width = int(self(self._probe_input()).shape[1])
        self.train(was_training)
        return width

    def stage_map(self) -> StageMap:
        """What "the last N stages" and "the first K blocks" mean for this network."""
        return stage_map(self.model)

    def sequential_plan(self) -> SequentialPlan | None:
        """The verified chain of units behind the features (None: no cut, train on the fly)."""
        return sequential_plan(self.model)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        if self.tokens:
            return self.model.forward_head(features, pre_logits=True)
        if self.pooling == "max":
            return features.amax(dim=(2, 3))
        return features.mean(dim=(2, 3))

    def appends_pool(self) -> bool:
        """Whether every-depth features end with the ``--pooling`` statistic of the last
        feature map (their statistics lack it, or a transformer pools its own way): the only
        case where ``--pooling`` changes every-depth features."""
        return self.tokens or (self.pooling == "max" and self.features.pooling != "avg+max")

    def last_columns(self, pooling: str | None = None) -> slice | None:
        """Where, in every-depth features, the last features pooled by ``pooling`` (default:
        this backbone's ``--pooling``; what ``--features last`` gives) sit; None for last
        features, or when every-depth features do not hold that statistic (the maximum with
        ``avg+std`` statistics and average pooling; a transformer's other pooling)."""
        if self.taps is None:
            return None
        width = int(getattr(self.model, "num_features", 0))
        if not width:
            return None
        pooling = pooling or self.pooling
        n = self.num_features
        appended = width if self.appends_pool() else 0
        if self.tokens:  # pooled by the network's own head, appended last
            return slice(n - width, None) if pooling == self.pooling else None
        stats = n - appended - 2 * width  # the last feature map's two statistics start here
        if pooling == "avg":
            return slice(stats, stats + width)
        if self.features.pooling == "avg+max":
            return slice(stats + width, stats + 2 * width)
        return slice(n - width, None) if appended else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        final = self.model.forward_features(x)
        if self.taps is None:
            return self.pool(final)
        # every depth: the chosen stages' statistics, then the last feature map's, plus the
        # --pooling statistic when those do not include it (avg+std with max pooling; tokens)
        parts = [*self.taps.collect(self.model), pooled_stats(final.float(), self.features.pooling)]
        if self.appends_pool():
            parts.append(self.pool(final).float())
        return torch.cat(parts, dim=1)


@dataclass
class LoadedBackbone:
    """A ready backbone, the preprocessing its weights expect, and where the weights came from."""

    name: str
    timm_name: str
    backbone: Backbone
    preprocessing: Preprocessing
    weights: WeightSource


def create_backbone(
    name: str,
    *,
    weights: str = "imagenet",
    pooling: str = DEFAULT_IMAGE_POOLING,
    image_size: int | None = None,
    resize: str = "pad",
    features: FeatureSpec | None = None,
) -> LoadedBackbone:
    """Resolve an alias, build the timm model, load weights by the documented order."""
    timm_name = resolve_name(name)
    model = create_timm_model(timm_name)
    backbone = Backbone(model, pooling=pooling, features=features)
    source = load_pretrained(model, timm_name, weights)
    prep = preprocessing_for(model, image_size=image_size, resize=resize)
    backbone.eval()
    return LoadedBackbone(name, timm_name, backbone, prep, source)
