"""The networks side of a modality (:mod:`headstart.core.modality`), as training, advice,
evaluation and prediction ask for it: which pretrained networks it has, how one is loaded,
which feature extractor and which on-the-fly inputs serve it (all extractors write to the same
cache store). None of the callers needs to know which modality it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from headstart.core.modality import modality, modality_of

if TYPE_CHECKING:
    import numpy as np

    from headstart.core.cache import FeatureSet
    from headstart.core.inputs import ArrayInputs


class Extractor(Protocol):
    """What training, evaluation and ``--strategy auto`` ask of a modality's feature
    extractor (images: ``headstart.modalities.image.features.FeatureExtractor``; texts:
    ``headstart.modalities.text.features.TextFeatureExtractor``): outputs of a frozen module
    per example set and view, kept in the feature cache."""

    dtype: np.dtype

    def extract(self, examples, view: int = 0, seed: int = 0) -> FeatureSet: ...

    def cached(self, examples, view: int = 0, seed: int = 0) -> bool: ...

    def estimate_bytes(self, examples, views: int = 1) -> int: ...

    def shape_per_example(self) -> list[int]: ...

    def inputs(self, sets: list[FeatureSet], labels, rows) -> ArrayInputs: ...


def load_encoder(modality_name: str, name: str, **settings):
    """The pretrained network ``name`` of the modality ``modality_name`` ready to extract
    features. ``settings``: weights, pooling (``auto``: the modality's default), image_size,
    resize, features, max_length; each modality reads its own."""
    return modality(modality_name).load_encoder(name, **settings)


def available_encoders(modality_name: str) -> list[str]:
    """Networks of ``modality_name`` whose pretrained weights load without a network."""
    return modality(modality_name).available_encoders()


def extractor_for(loaded, **options) -> Extractor:
    """The feature extractor for ``loaded``'s modality, with the options both take (module,
    cut, device, batch_size, cache, dtype...; each reads its own)."""
    return modality_of(loaded).extractor(loaded, **options)


def streaming_inputs(
    loaded, splits, *, augment: bool, seed: int, workers: int | None, flip: bool
) -> tuple[dict, dict, list[dict]]:
    """Inputs that run the whole network every step, per split: images decoded (and
    augmented), or texts tokenised once. Returns (inputs by split, the positions used in
    each split, the unreadable examples left out)."""
    return modality_of(loaded).streaming_inputs(
        loaded, splits, augment=augment, seed=seed, workers=workers, flip=flip
    )
