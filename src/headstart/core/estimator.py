"""``ImageClassifier``: headstart as a scikit-learn estimator on image arrays.

Follows the estimator contract (``__init__`` only stores parameters; ``fit`` returns self;
learned attributes end in ``_``), so ``sklearn.base.clone``, ``cross_val_score`` and
``GridSearchCV`` work on the lesson's ``train_images`` arrays. Backbone features are cached by
content, so a grid search over head settings pays for each fold's forward pass once.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from headstart.core.config import TrainConfig
from headstart.core.datasource import DataSource
from headstart.errors import DataError
from headstart.modalities.image.data.sources import from_arrays

#: TrainConfig fields that say where the data is: ``fit`` takes the data, so they are not
#: estimator parameters (``parent`` names a saved run to continue, not a setting to search).
DATA_FIELDS = ("data", "filename_column", "label_column", "parent")

#: Where the estimator departs from TrainConfig's defaults, and why: scikit-learn scores an
#: estimator on data it holds out itself (``score``, ``cross_val_score``), so ``fit`` keeps
#: every image for training and validation instead of carving a test split of its own.
ESTIMATOR_DEFAULTS = {"test_split": 0.0}

#: The estimator's parameters: every other TrainConfig field with TrainConfig's default (the
#: one source of defaults, but for ``ESTIMATOR_DEFAULTS``), then ``verbose``.
PARAMS: tuple[inspect.Parameter, ...] = (
    *(
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=ESTIMATOR_DEFAULTS.get(f.name, f.default),
        )
        for f in dataclasses.fields(TrainConfig)
        if f.name not in DATA_FIELDS
    ),
    inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False),
)


class ImageClassifier(ClassifierMixin, BaseEstimator):
    """A pretrained backbone with a trained head: frozen by default, or fine-tuned
    (``strategy="fine-tune", unfreeze=1``, ``"freeze-first"``, ``"full"``, ``"scratch"``), or
    decided from the data (``strategy="auto"``, ``backbone="auto"``, as the CLI does).

    Parameters are TrainConfig's fields (all but where the data is), with its defaults, and
    ``verbose``; all keyword-only. ``X`` is an image array (N, H, W[, C]), uint8 or float in
    [0, 1]; ``y`` any labels. ``fit`` holds out ``val_split`` of X (stratified) for early
    stopping, as the CLI does.
    """

    def __init__(self, **params):
        unknown = sorted(set(params) - {p.name for p in PARAMS})
        if unknown:
            raise TypeError(f"ImageClassifier got unexpected parameter(s): {', '.join(unknown)}")
        for p in PARAMS:
            setattr(self, p.name, params.get(p.name, p.default))

    __init__.__signature__ = inspect.Signature(  # what get_params, clone and help() read
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *PARAMS]
    )

    def _config(self) -> TrainConfig:
        params = self.get_params()
        params.pop("verbose")
        return TrainConfig(**params)

    def fit(self, X, y=None):
        """Fit on an image array and labels, or on a data location / DataSource (``y=None``)."""
        from headstart.core.advise import train_auto
        from headstart.core.training import train

        if isinstance(X, (str, Path, DataSource)):
            if y is not None:
                raise DataError("with a data location, labels come from the data: pass y=None.")
            source = X
        else:
            if y is None:
                raise DataError("fit(X, y) needs labels y for an image array X.")
            source = from_arrays(np.asarray(X), np.asarray(y))
        config = self._config()
        if "auto" in (config.strategy, config.backbone):  # decided from the data, as the CLI
            self.run_ = train_auto(
                config, data=source, progress=self.verbose, save=False, say=self._say
            )
        else:
            self.run_ = train(config, data=source, progress=self.verbose, save=False, say=self._say)
        names = self.run_.class_names
        labels = np.asarray(y) if y is not None else None
        if labels is not None and labels.dtype.kind in "iu":
            self.classes_ = np.array([int(c) for c in names])
        elif labels is not None and labels.dtype.kind == "f":
            self.classes_ = np.array([float(c) for c in names])
        else:
            self.classes_ = np.array(names)
        self.history_ = self.run_.history
        return self

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message)

    def _images(self, X):
        from headstart.modalities.image.data.imageset import array_item_to_rgb
        from headstart.modalities.image.data.sources import check_image_array

        arr = check_image_array(np.asarray(X), "X")
        return [array_item_to_rgb(a) for a in arr]

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "run_")
        return self.run_.predict_proba(self._images(X), batch_size=max(self.batch_size, 32))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "run_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        check_is_fitted(self, "run_")
        return super().score(X, y, sample_weight=sample_weight)

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as a run directory (``headstart predict`` can use it)."""
        check_is_fitted(self, "run_")
        return self.run_.save(path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
