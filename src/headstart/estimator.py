"""``ImageClassifier``: headstart as a scikit-learn estimator on image arrays.

Follows the estimator contract (``__init__`` only stores parameters; ``fit`` returns self;
learned attributes end in ``_``), so ``sklearn.base.clone``, ``cross_val_score`` and
``GridSearchCV`` work on the lesson's ``train_images`` arrays. Backbone features are cached by
content, so a grid search over head settings pays for each fold's forward pass once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from headstart.backbones.aliases import DEFAULT_BACKBONE
from headstart.config import TrainConfig
from headstart.data.sources import DataSource, from_arrays
from headstart.errors import DataError


class ImageClassifier(ClassifierMixin, BaseEstimator):
    """A pretrained backbone with a trained head: frozen by default, or fine-tuned
    (``strategy="fine-tune", unfreeze=1``, ``"freeze-first"``, ``"full"``, ``"scratch"``).

    ``X`` is an image array (N, H, W[, C]), uint8 or float in [0, 1]; ``y`` any labels.
    ``fit`` holds out ``val_split`` of X (stratified) for early stopping, as the CLI does.
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        weights: str = "imagenet",
        pooling: str = "max",
        image_size: int | None = None,
        resize: str = "pad",
        head: str = "lesson",
        hidden: int = 50,
        dropout: float = 0.5,
        epochs: int = 30,
        batch_size: int = 32,
        lr: float = 1e-3,
        patience: int = 5,
        strategy: str = "feature-extraction",
        unfreeze: int = 1,
        layers: int = 0,
        backbone_lr: float = 1e-5,
        val_split: float = 0.2,
        augment: str = "none",
        views: int = 8,
        flip: bool = True,
        seed: int = 0,
        device: str = "auto",
        cache: bool = True,
        verbose: bool = False,
    ):
        self.backbone = backbone
        self.weights = weights
        self.pooling = pooling
        self.image_size = image_size
        self.resize = resize
        self.head = head
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.strategy = strategy
        self.unfreeze = unfreeze
        self.layers = layers
        self.backbone_lr = backbone_lr
        self.val_split = val_split
        self.augment = augment
        self.views = views
        self.flip = flip
        self.seed = seed
        self.device = device
        self.cache = cache
        self.verbose = verbose

    def _config(self) -> TrainConfig:
        params = self.get_params()
        params.pop("verbose")
        return TrainConfig(**params)

    def fit(self, X, y=None):
        """Fit on an image array and labels, or on a data location / DataSource (``y=None``)."""
        from headstart.pipeline import train

        if isinstance(X, (str, Path, DataSource)):
            if y is not None:
                raise DataError("with a data location, labels come from the data: pass y=None.")
            source = X
        else:
            if y is None:
                raise DataError("fit(X, y) needs labels y for an image array X.")
            source = from_arrays(np.asarray(X), np.asarray(y))
        self.run_ = train(self._config(), data=source, progress=self.verbose, save=False)
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

    def _images(self, X):
        from headstart.data.imageset import array_item_to_rgb
        from headstart.data.sources import _check_image_array

        arr = _check_image_array(np.asarray(X), "X")
        return [array_item_to_rgb(a) for a in arr]

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        return self.run_.predict_proba(self._images(X), batch_size=max(self.batch_size, 32))

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as a run directory (``headstart predict`` can use it)."""
        self._check_fitted()
        return self.run_.save(path)

    def _check_fitted(self) -> None:
        if not hasattr(self, "run_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this ImageClassifier is not fitted yet; call fit(X, y) first.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
