"""The scikit-learn estimator base: headstart's training behind ``fit`` / ``predict``, for
every modality (``ImageClassifier`` on image arrays, ``TextClassifier`` on lists of strings).

Follows the estimator contract (``__init__`` only stores parameters; ``fit`` returns self;
learned attributes end in ``_``; every method but ``fit`` raises ``NotFittedError`` before it),
so ``sklearn.base.clone``, ``cross_val_score``, ``GridSearchCV`` and ``Pipeline`` work. Encoder
features are cached by content, so a grid search over head settings pays for each fold's
forward pass once. The estimators train in one process (``headstart train --nproc`` or
torchrun distributes a run; see :mod:`headstart.core.distributed`).

``verbose=True`` is an entry point's setting for the duration of ``fit``: progress bars
(:mod:`headstart.progress`) and the notes printed (:func:`headstart.notes.speaking`), the
score the fit ends on last; a program that configured ``logging`` receives the notes there.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from headstart.core.config import TrainConfig
from headstart.core.datasource import DataSource
from headstart.core.labels import is_label_lists
from headstart.errors import DataError
from headstart.notes import speaking
from headstart.progress import enabled

log = logging.getLogger(__name__)

#: TrainConfig fields that say where the data is: ``fit`` takes the data, so they are not
#: estimator parameters (``parent`` names a saved run to continue, not a setting to search).
DATA_FIELDS = ("data", "filename_column", "label_column", "text_column", "parent")

#: Where the estimator departs from TrainConfig's defaults, and why: scikit-learn scores an
#: estimator on data it holds out itself (``score``, ``cross_val_score``), so ``fit`` keeps
#: every example for training and validation instead of carving a test split of its own.
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


class TransferClassifier(ClassifierMixin, BaseEstimator):
    """A pretrained encoder with a trained head, as a scikit-learn classifier. Subclasses say
    how ``X`` becomes a data source (:meth:`_source`) and model inputs (:meth:`_inputs`)."""

    #: A subclass's own defaults where its data departs from TrainConfig's (text: its encoder).
    defaults: dict = {}

    def __init__(self, **params):
        own = self._params()
        unknown = sorted(set(params) - {p.name for p in own})
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s): {', '.join(unknown)}"
            )
        for p in own:
            setattr(self, p.name, params.get(p.name, p.default))

    @classmethod
    def _params(cls) -> list[inspect.Parameter]:
        return [p.replace(default=cls.defaults.get(p.name, p.default)) for p in PARAMS]

    def __init_subclass__(cls, **kwargs):
        """Each subclass's ``__init__`` carries its own signature (what get_params, clone and
        help() read), with its ``defaults``."""
        super().__init_subclass__(**kwargs)

        def __init__(self, **params):
            TransferClassifier.__init__(self, **params)

        __init__.__signature__ = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *cls._params()]
        )
        __init__.__doc__ = TransferClassifier.__init__.__doc__
        cls.__init__ = __init__

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *PARAMS]
    )

    def _config(self) -> TrainConfig:
        params = self.get_params()
        params.pop("verbose")
        return TrainConfig(**params)

    def _source(self, X, y) -> DataSource:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def _inputs(self, X):  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def fit(self, X, y=None):
        """Fit on ``X`` and labels ``y``, or on a data location / DataSource (``y=None``)."""
        from headstart.core.advise import train_auto
        from headstart.core.training import train

        if isinstance(X, (str, Path, DataSource)):
            if y is not None:
                raise DataError("with a data location, labels come from the data: pass y=None.")
            source = X
        else:
            if y is None:
                raise DataError(f"fit(X, y) needs labels y for {type(self).__name__} inputs X.")
            source = self._source(X, y)
        config = self._config()
        auto = "auto" in (config.strategy, config.backbone)  # decided from the data, as the CLI
        with speaking(print if self.verbose else None), enabled(self.verbose):
            self.run_ = (train_auto if auto else train)(config, data=source, save=False)
            self._say_result()
        names = self.run_.class_names
        labels = np.asarray(y) if y is not None and not is_label_lists(y) else None
        if self.run_.thresholds is not None and (labels is None or labels.ndim == 2):
            # several labels per example: predict gives a 0/1 matrix, one column per label
            # (scikit-learn's multi-label convention); a matrix's labels are its columns
            self.classes_ = np.arange(len(names)) if labels is not None else np.array(names)
        elif labels is not None and labels.dtype.kind in "iu":
            self.classes_ = np.array([int(c) for c in names])
        elif labels is not None and labels.dtype.kind == "f":
            self.classes_ = np.array([float(c) for c in names])
        else:
            self.classes_ = np.array(names)
        self.history_ = self.run_.history
        return self

    def _say_result(self) -> None:
        """With ``verbose``: the score the fit ends on, beside the classic baseline's."""
        m = self.run_.metrics
        head = m.get("headline")
        if not self.verbose or not head:
            return
        metric = "micro-F1" if head.get("metric") == "micro_f1" else "accuracy"
        value = head.get("micro_f1", head.get("accuracy"))
        log.info(f"{head['label']}: {metric} {value:.1%} on {head['n']:,} examples")
        classic = m.get("classic_baseline")
        if classic and "headline" in classic:
            log.info(
                f"{classic['name']} (classic baseline) {classic['headline']['accuracy']:.1%} on "
                f"the same examples: {classic['paired']['verdict']}"
            )

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "run_")
        return self.run_.predict_proba(self._inputs(X), batch_size=max(self.batch_size, 32))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "run_")
        decided = self.run_.task.decide(self.predict_proba(X), self.run_.thresholds)
        if self.run_.thresholds is not None:  # a 0/1 matrix: each label at its threshold
            return decided
        return self.classes_[decided]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (several labels per example: scikit-learn's subset accuracy); ``y`` in any
        form ``fit`` takes, lists of labels included."""
        check_is_fitted(self, "run_")
        if is_label_lists(y):  # as the 0/1 matrix predict returns
            index = {str(c): j for j, c in enumerate(self.classes_)}
            matrix = np.zeros((len(y), len(index)), np.int64)
            for row, labels in enumerate(y):
                matrix[row, [index[str(c)] for c in labels if str(c) in index]] = 1
            y = matrix
        return super().score(X, y, sample_weight=sample_weight)

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as a run directory (``headstart predict`` can use it)."""
        check_is_fitted(self, "run_")
        return self.run_.save(path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
