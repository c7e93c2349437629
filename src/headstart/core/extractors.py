"""Which feature extractor serves a loaded encoder: the image one (:mod:`headstart.core.cache`)
or a modality's own, all writing to the same cache store. Training, evaluation and prediction
ask here, so none of them needs to know which modality they run."""

from __future__ import annotations

from headstart.core.cache import FeatureExtractor


def extractor_for(loaded, **options):
    """The feature extractor for ``loaded``'s modality (the image one, or the text one), with
    the options both take (device, batch_size, cache, progress, dtype...)."""
    if getattr(loaded, "modality", "image") == "text":
        from headstart.modalities.text.features import TextFeatureExtractor

        allowed = {"device", "batch_size", "cache", "progress", "dtype"}
        return TextFeatureExtractor(loaded, **{k: v for k, v in options.items() if k in allowed})
    return FeatureExtractor(loaded, **options)
