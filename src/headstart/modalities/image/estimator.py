"""``ImageClassifier``: headstart as a scikit-learn estimator on image arrays (the lesson's
``train_images``), with the contract of :class:`~headstart.core.estimator.TransferClassifier`."""

from __future__ import annotations

import numpy as np

from headstart.core.estimator import TransferClassifier
from headstart.core.labels import labels_as_given
from headstart.modalities.image.data.imageset import array_item_to_rgb
from headstart.modalities.image.data.sources import check_image_array, from_arrays


class ImageClassifier(TransferClassifier):
    """A pretrained backbone with a trained head: frozen by default, or fine-tuned
    (``strategy="fine-tune", unfreeze=1``, ``"freeze-first"``, ``"full"``, ``"scratch"``), or
    decided from the data (``strategy="auto"``, ``backbone="auto"``, as the CLI does).

    Parameters are TrainConfig's fields (all but where the data is), with its defaults, and
    ``verbose``; all keyword-only. ``X`` is an image array (N, H, W[, C]), uint8 or float in
    [0, 1]; ``y`` any labels. ``fit`` holds out ``val_split`` of X (stratified) for early
    stopping, as the CLI does.
    """

    def _source(self, X, y):
        return from_arrays(np.asarray(X), labels_as_given(y))

    def _inputs(self, X):
        arr = check_image_array(np.asarray(X), "X")
        return [array_item_to_rgb(a) for a in arr]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
