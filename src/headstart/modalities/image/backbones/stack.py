"""Several backbones read as one: ``--backbone tf_efficientnet_lite0+tf_efficientnet_lite1``.

A stack runs each member network on the same input and puts their features side by side (the
first member's first, so every column a single-backbone head of the first member reads keeps
its place). It is what an ensemble across backbones predicts with (``--strategy auto``'s last
step: one forward pass per backbone, shared by every member head that reads it) and what a
head on the concatenated features of several backbones trains on.

**One preprocessing.** A run has one preprocessing, so every member sees the first member's
input: its size (``--image-size``, else the first member's own), resize mode and pixel
statistics. A member whose pretrained pixel statistics or interpolation differ from the
first's (with ``--resize crop``, its crop fraction too) is refused by name (EfficientNet-Lite0,
1 and 2 share theirs); a member runs at the first's size, which convolutional networks accept
(Lite2 at 224 px, not its own 260 px).

**One forward pass per member, cached as that member.** Features of a member are exactly that
backbone's features at that preprocessing, so they are cached, and read back, under the member's
own key (:class:`StackExtractor`): a stack costs no pass for a member whose features a run
already computed, and a later single-backbone run reads the stack's passes.

A stack is frozen: it is trained only as feature extraction (a head on its cached features).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch
from torch import nn

from headstart.choices import BACKBONE_SEP as STACK_SEP
from headstart.errors import ConfigError
from headstart.modalities.image.backbones.names import SAME_PIXELS


def pixel_differences(first, other) -> list[str]:
    """How ``other``'s preprocessing would give different pixels than ``first``'s (empty:
    the same input tensor for the same image)."""
    fields = ["input_size", "resize", "interpolation", "mean", "std"]
    if first.resize == "crop":
        fields.append("crop_pct")
    return [
        f"{f} {getattr(other, f)} (not {getattr(first, f)})"
        for f in fields
        if getattr(first, f) != getattr(other, f)
    ]


class BackboneStack(nn.Module):
    """Member backbones on one input, features concatenated in member order. Quacks as a
    :class:`~headstart.modalities.image.backbones.model.Backbone` where a frozen run needs
    one: ``features``, ``pooling``, ``taps`` and ``last_columns`` are the first member's (its
    columns come first); ``parts`` says, per member, what it was loaded from (its cache key)."""

    def __init__(self, members: list[nn.Module], parts: list[dict]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.parts = parts
        self.widths = [int(m.num_features) for m in members]
        self.num_features = int(sum(self.widths))
        first = members[0]
        self.pooling, self.features, self.taps = first.pooling, first.features, first.taps
        self.tokens = any(m.tokens for m in members)
        self.removed: list[str] = []

    @property
    def model(self) -> nn.ModuleList:
        """The member networks (what freezing walks)."""
        return nn.ModuleList([m.model for m in self.members])

    def blocks(self) -> list[tuple[str, int, int]]:
        """(member timm name, first column, end column) of each member's features."""
        out, lo = [], 0
        for part, width in zip(self.parts, self.widths):
            out.append((part["backbone"], lo, lo + width))
            lo += width
        return out

    def columns_for(self, names: list[str], features: str, pooling: str | None):
        """Where, in the stack's features, a head trained on the members ``names`` (one
        backbone, or several side by side, in that order) finds its inputs: their every-depth
        features (``features="multi"``) or their last features pooled by ``pooling``, as
        (start, end) ranges; None where the stack does not hold them."""
        blocks = {name: (lo, hi, m) for (name, lo, hi), m in zip(self.blocks(), self.members)}
        out = []
        for name in names:
            if name not in blocks:
                return None
            lo, hi, member = blocks[name]
            if member.features.multi and features != "multi":
                last = member.last_columns(pooling)
                if last is None:
                    return None
                start, end, _ = last.indices(hi - lo)
                out.append((lo + start, lo + end))
            elif member.features.multi == (features == "multi") and (
                features == "multi" or member.pooling == pooling
            ):
                out.append((lo, hi))
            else:
                return None
        return out

    def stage_map(self):
        """No stages: backbones side by side are frozen whole (nothing for ``--unfreeze`` or
        ``--feature-stages`` to count; each member's every-depth features are its own)."""
        from headstart.core.stages import StageMap

        return StageMap(stem=[], stages=[], top=[])

    def sequential_plan(self):
        return None  # frozen whole: no cut

    def appends_pool(self) -> bool:
        return self.members[0].appends_pool()

    def last_columns(self, pooling: str | None = None) -> slice | None:
        return self.members[0].last_columns(pooling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x).float() for m in self.members], dim=1)


def part_record(loaded) -> dict:
    """What a member was loaded as: its name, pooling, features, width, preprocessing and
    weights (the key of its cached features, and what rebuilds it from a saved run)."""
    bb = loaded.backbone
    return {
        "backbone": loaded.timm_name,
        "pooling": bb.pooling,
        "features": bb.features.to_dict(),
        "num_features": int(bb.num_features),
        "preprocessing": loaded.preprocessing.to_dict(),
        "weights": dataclasses.asdict(loaded.weights),
    }


def combined_source(sources):
    """One weight source for the stack: kind shared or "mixed", each member's described, and
    a fingerprint of the members' (so a stack's key never equals one member's)."""
    from headstart.modalities.image.backbones.weights import WeightSource

    kinds = {s.kind for s in sources}
    h = hashlib.sha256("|".join(s.fingerprint for s in sources).encode()).hexdigest()[:16]
    detail = "; ".join(s.detail for s in sources)
    return WeightSource(kinds.pop() if len(kinds) == 1 else "mixed", detail, h)


def create_stack(
    names: list[str],
    *,
    weights: str = "imagenet",
    pooling: str = "avg",
    image_size: int | None = None,
    resize: str = "pad",
    features=None,
):
    """Load each member (as :func:`create_backbone` does, each from the same random state, so
    a member with random weights is the network it would be alone) at the first member's
    input size, check that all read the same pixels, and stack them."""
    from headstart.modalities.image.backbones.model import LoadedBackbone, create_backbone

    state = torch.get_rng_state()
    loaded = []
    for name in names:
        torch.set_rng_state(state)
        size = image_size
        if loaded and size is None:
            h, w = loaded[0].preprocessing.input_size
            size = h if h == w else None
            if size is None:
                raise ConfigError(
                    f"--backbone {STACK_SEP.join(names)}: {loaded[0].timm_name} takes a "
                    f"{h}x{w} input; give --image-size so every backbone reads the same pixels."
                )
        one = create_backbone(
            name,
            weights=weights,
            pooling=pooling,
            image_size=size,
            resize=resize,
            features=features,
        )
        if loaded:
            first = loaded[0].preprocessing
            diff = pixel_differences(first, one.preprocessing)
            if diff:
                raise ConfigError(
                    f"{one.timm_name} expects other pixels than {loaded[0].timm_name}: "
                    f"{'; '.join(diff)}. {SAME_PIXELS}"
                )
        loaded.append(one)
    stack = BackboneStack([lb.backbone for lb in loaded], [part_record(lb) for lb in loaded])
    stack.eval()
    return LoadedBackbone(
        STACK_SEP.join(lb.name for lb in loaded),
        STACK_SEP.join(lb.timm_name for lb in loaded),
        stack,
        loaded[0].preprocessing,
        combined_source([lb.weights for lb in loaded]),
    )


def member_loaded(stack: BackboneStack):
    """Each member as a loaded backbone of its own (its name, preprocessing and weights as it
    was loaded): what its cached features are keyed by."""
    from headstart.modalities.image.backbones.model import LoadedBackbone, Preprocessing
    from headstart.modalities.image.backbones.weights import WeightSource

    return [
        LoadedBackbone(
            part["backbone"],
            part["backbone"],
            member,
            Preprocessing.from_dict(part["preprocessing"]),
            WeightSource(**part["weights"]),
        )
        for member, part in zip(stack.members, stack.parts)
    ]


def rebuild_stack(parts: list[dict]) -> BackboneStack:
    """A saved stack's architecture (weights come from the run's state dict)."""
    from headstart.core.featurespec import FeatureSpec
    from headstart.modalities.image.backbones.model import Backbone, create_timm_model

    members = [
        Backbone(
            create_timm_model(p["backbone"]),
            pooling=p["pooling"],
            features=FeatureSpec(**p["features"]),
        )
        for p in parts
    ]
    return BackboneStack(members, parts)


class StackExtractor:
    """The features of a stack: each member's from its own extractor (so from the cache
    entries a single-backbone run of that member writes and reads), side by side."""

    cut = "pooled"

    def __init__(self, loaded, *, module=None, cut: str = "pooled", **options):
        from headstart.modalities.image.features import FeatureExtractor

        if module is not None or cut != "pooled":
            raise ConfigError(
                f"{loaded.timm_name}: backbones side by side are frozen; fine-tune one backbone "
                "(--backbone NAME) instead."
            )
        self.loaded = loaded
        self.members = [
            FeatureExtractor(m, **options, named=True) for m in member_loaded(loaded.backbone)
        ]
        self.dtype = self.members[0].dtype

    def output_shape(self) -> tuple[int, ...]:
        return (int(sum(ex.output_shape()[0] for ex in self.members)),)

    def shape_per_example(self) -> list[int]:
        return list(self.output_shape())

    def estimate_bytes(self, images, views: int = 1) -> int:
        return int(sum(ex.estimate_bytes(images, views) for ex in self.members))

    def cached(self, images, view: int = 0, seed: int = 0) -> bool:
        return all(ex.cached(images, view, seed) for ex in self.members)

    def inputs(self, sets, labels, rows):
        from headstart.core.inputs import ArrayInputs

        return ArrayInputs([fs.features for fs in sets], labels, rows)

    def extract(self, images, view: int = 0, seed: int = 0):
        """The members' features of ``images`` (view as :meth:`FeatureExtractor.extract`),
        concatenated; a row is valid where every member read it."""
        from headstart.core.cache import FeatureSet

        sets = [ex.extract(images, view, seed) for ex in self.members]
        key = hashlib.sha256("|".join(fs.key for fs in sets).encode()).hexdigest()[:32]
        hits = {fs.hit for fs in sets}
        return FeatureSet(
            np.concatenate([np.asarray(fs.features, np.float32) for fs in sets], axis=1),
            np.logical_and.reduce([fs.valid for fs in sets]),
            key,
            hits.pop() if len(hits) == 1 else ("disk" if "" not in hits else ""),
            float(sum(fs.seconds for fs in sets)),
            sets[0].bad,
            sets[0].extra,
        )
