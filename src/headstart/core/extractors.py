"""The one place that maps a modality to its implementation: which pretrained networks it
has (:func:`available_encoders`), how one is loaded (:func:`load_encoder`), which feature
extractor and which on-the-fly inputs serve it -- the image ones (:mod:`headstart.core.cache`,
:mod:`headstart.core.inputs`) or a modality's own, all writing to the same cache store.
Training, advice, evaluation and prediction ask here, so none of them needs to know which
modality they run."""

from __future__ import annotations

import numpy as np

from headstart.core.cache import FeatureExtractor


def _is_text(loaded) -> bool:
    return getattr(loaded, "modality", "image") == "text"


def load_encoder(
    modality: str,
    name: str,
    *,
    weights: str = "imagenet",
    pooling: str = "auto",
    image_size: int | None = None,
    resize: str = "pad",
    features=None,
    max_length: int | None = None,
):
    """The pretrained network ``name`` of ``modality`` ready to extract features (an image
    ``LoadedBackbone`` or a text ``LoadedEncoder``). Settings of the other modality are
    ignored; ``pooling="auto"`` is the modality's default."""
    if modality == "text":
        from headstart.modalities.text.encoder import load_text_encoder

        return load_text_encoder(
            name,
            weights=weights,
            pooling=None if pooling == "auto" else pooling,
            max_length=max_length,
        )
    from headstart.modalities.image.backbones import create_backbone

    return create_backbone(
        name,
        weights=weights,
        pooling=pooling,
        image_size=image_size,
        resize=resize,
        features=features,
    )


def available_encoders(modality: str) -> list[str]:
    """Networks of ``modality`` whose pretrained weights load without a network."""
    if modality == "text":
        from headstart.modalities.text.encoder import available_text_encoders

        return available_text_encoders()
    from headstart.modalities.image.backbones.weights import available_image_backbones

    return available_image_backbones()


def extractor_for(loaded, **options):
    """The feature extractor for ``loaded``'s modality (the image one, or the text one), with
    the options both take (module, cut, device, batch_size, cache, progress, dtype...)."""
    if _is_text(loaded):
        from headstart.modalities.text.features import TextFeatureExtractor

        allowed = {"module", "cut", "device", "batch_size", "cache", "progress", "dtype"}
        return TextFeatureExtractor(loaded, **{k: v for k, v in options.items() if k in allowed})
    return FeatureExtractor(loaded, **options)


def streaming_inputs(
    loaded, splits, *, augment: bool, seed: int, workers: int | None, flip: bool, progress: bool
) -> tuple[dict, dict[str, np.ndarray], list[dict]]:
    """Inputs that run the whole network every step, per split: images decoded (and
    augmented) in worker processes, or texts tokenised once. Returns (inputs by split, the
    positions used in each split, the unreadable examples left out)."""
    if _is_text(loaded):
        from headstart.modalities.text.features import TextInputs

        inputs = {name: TextInputs(texts, loaded) for name, texts in splits.items().items()}
        used = {name: np.arange(len(texts)) for name, texts in splits.items().items()}
        return inputs, used, []
    from headstart.core.inputs import ImageInputs
    from headstart.modalities.image.data.inspect import scan_unreadable

    prep = loaded.preprocessing
    inputs, used, unreadable = {}, {}, []
    for name, images in splits.items().items():
        used[name], bad = scan_unreadable(images, progress=progress)
        unreadable += bad
        readable = images.subset(used[name]) if bad else images
        train = name == "train"
        inputs[name] = ImageInputs(
            readable,
            prep,
            augment=augment and train,
            seed=seed,
            workers=workers,
            flip=flip if train else True,
        )
    return inputs, used, unreadable
