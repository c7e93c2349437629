"""``TextClassifier``: headstart as a scikit-learn estimator on lists of strings, with the
contract of :class:`~headstart.core.estimator.TransferClassifier`: a frozen pretrained text
encoder (all-MiniLM-L6-v2 by default, offline) with a trained head."""

from __future__ import annotations

import numpy as np

from headstart.core.estimator import TransferClassifier
from headstart.core.labels import labels_as_given
from headstart.errors import DataError
from headstart.modalities.text.names import DEFAULT_TEXT_ENCODER
from headstart.modalities.text.sources import from_texts


def _texts(X) -> list[str]:
    if isinstance(X, str):
        raise DataError("X is one string; pass a list of texts (one per example).")
    texts = list(np.asarray(X, dtype=object).ravel()) if not isinstance(X, list) else X
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(f"X[{bad[0]}] is a {type(texts[bad[0]]).__name__}, not a string.")
    return texts


class TextClassifier(TransferClassifier):
    """A pretrained text encoder, frozen, with a trained head (``backbone="minilm"`` unless
    another encoder is named: ``"bert-base-uncased"``, a hub name or a local folder).

    Parameters are TrainConfig's fields (all but where the data is), with its defaults, and
    ``verbose``; all keyword-only; the image-only ones (``image_size``, ``augment``, ``tta``...)
    must stay at their defaults. ``X`` is a sequence of strings, ``y`` any labels. ``fit``
    holds out ``val_split`` of X (stratified) for early stopping, as the CLI does.
    """

    defaults = {"backbone": DEFAULT_TEXT_ENCODER}

    def _source(self, X, y):
        return from_texts(_texts(X), labels_as_given(y))

    def _inputs(self, X):
        return _texts(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
