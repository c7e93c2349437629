"""The networks side of a modality (:mod:`headstart.core.modality`), as training, advice,
evaluation and prediction ask for it: which pretrained networks it has, how one is loaded,
which feature extractor and which on-the-fly inputs serve it (all extractors write to the same
cache store). None of the callers needs to know which modality it runs."""

from __future__ import annotations

from headstart.core.modality import modality, modality_of


def load_encoder(modality_name: str, name: str, **settings):
    """The pretrained network ``name`` of the modality ``modality_name`` ready to extract
    features. ``settings``: weights, pooling (``auto``: the modality's default), image_size,
    resize, features, max_length; each modality reads its own."""
    return modality(modality_name).load_encoder(name, **settings)


def available_encoders(modality_name: str) -> list[str]:
    """Networks of ``modality_name`` whose pretrained weights load without a network."""
    return modality(modality_name).available_encoders()


def extractor_for(loaded, **options):
    """The feature extractor for ``loaded``'s modality, with the options both take (module,
    cut, device, batch_size, cache, progress, dtype...; each reads its own)."""
    return modality_of(loaded).extractor(loaded, **options)


def streaming_inputs(
    loaded, splits, *, augment: bool, seed: int, workers: int | None, flip: bool, progress: bool
) -> tuple[dict, dict, list[dict]]:
    """Inputs that run the whole network every step, per split: images decoded (and
    augmented), or texts tokenised once. Returns (inputs by split, the positions used in
    each split, the unreadable examples left out)."""
    return modality_of(loaded).streaming_inputs(
        loaded, splits, augment=augment, seed=seed, workers=workers, flip=flip, progress=progress
    )
