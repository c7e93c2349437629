"""The classic baseline of a run: the model a user would write in ten lines without a network
(for text, TF-IDF + logistic regression), fitted on the run's own train split and scored
where the model is scored, beside the majority class.

A modality that has one returns its class from ``classic_baseline()``: ``fit(train, val,
n_classes)`` on two example sets, ``load(folder)``, and on the fitted model ``save(folder)``,
``predict_proba(examples)``, ``describe()``, ``name``, ``kind``, ``record``; one that has none
returns None and nothing here runs. Scoring it beside the run's model is training's and
evaluation's work (``core/training.py``, ``core/evaluate.py``). The fitted baseline is saved
in the run's ``classic/`` folder (:data:`~headstart.core.rundir.CLASSIC_FOLDER`), so
``evaluate`` scores it on any data the run is scored on; ``metrics.json`` records it under
``classic_baseline``.

A run may also *be* a blend (``--blend auto``, the default for text): the model's
probabilities and the baseline's averaged with the baseline's weight chosen on validation
(:func:`choose_weight`); ``model.json`` records the weight (``classic_weight``), and every way
a run predicts (``Run.predict_proba``, ``evaluate``, the ONNX export, ``serve``) blends alike.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from headstart.core.modality import modality_of
from headstart.core.rundir import CLASSIC_FOLDER

#: Fitted baselines by the data they were fitted on: ``--strategy auto`` scores every
#: candidate on the same split, and the baseline is fitted once.
_FITTED: OrderedDict[tuple, object] = OrderedDict()
_KEEP = 4


def baseline_class(examples):
    """The classic baseline's class for ``examples``' kind of data, or None."""
    return modality_of(examples).classic_baseline()


def fit_baseline(train, val, n_classes: int):
    """The classic baseline fitted on ``train`` with its setting chosen on ``val`` (both
    example sets of one kind), or None when the kind of data has none or it cannot be fitted
    (one class, no words): a baseline never stops a run."""
    cls = baseline_class(train)
    if cls is None or len(train) == 0:
        return None
    key = (cls.kind, train.fingerprint(), val.fingerprint(), n_classes)
    if key in _FITTED:
        _FITTED.move_to_end(key)
        return _FITTED[key]
    try:
        model = cls.fit(train, val, n_classes)
    except ValueError:
        return None
    _FITTED[key] = model
    while len(_FITTED) > _KEEP:
        _FITTED.popitem(last=False)
    return model


def load_baseline(run):
    """The classic baseline of ``run`` (in memory after training, else read from its folder
    once and kept on the run: a server predicts every batch through it), or None: a run of a
    kind of data without one, or saved before baselines were."""
    if run.classic is not None or run.path is None:
        return run.classic
    folder = Path(run.path) / CLASSIC_FOLDER
    cls = modality_of(run).classic_baseline()
    if cls is None or not folder.is_dir():
        return None
    run.classic = cls.load(folder)
    return run.classic


#: The weights of the classic baseline tried in a blend, 0 (the model alone) to 1 (the
#: baseline alone).
BLEND_WEIGHTS = tuple(round(0.1 * k, 1) for k in range(11))


def blended(model_proba: np.ndarray, classic_proba: np.ndarray, weight: float) -> np.ndarray:
    """The blend's probabilities: ``(1 - weight)`` of the model's plus ``weight`` of the
    classic baseline's (the same rows, the same classes)."""
    if weight <= 0:
        return model_proba
    return (1.0 - weight) * model_proba + weight * classic_proba


def choose_weight(
    model_proba: np.ndarray, classic_proba: np.ndarray, y: np.ndarray
) -> tuple[float, list[dict]]:
    """The baseline's weight with the best validation accuracy (ties: the lower log loss, then
    the smaller weight), and every weight tried with its scores. Averaging probabilities, as
    AutoGluon blends its n-gram and transformer models, needs no training."""
    from sklearn.metrics import log_loss

    y = np.asarray(y)
    n_classes = model_proba.shape[1]
    tried, best, best_key = [], 0.0, None
    for w in BLEND_WEIGHTS:
        p = blended(model_proba, classic_proba, w)
        acc = float(np.mean(p.argmax(1) == y)) if len(y) else float("nan")
        p = np.clip(p, 1e-7, 1.0)
        loss = float(log_loss(y, p / p.sum(1, keepdims=True), labels=np.arange(n_classes)))
        tried.append({"weight": w, "val_accuracy": round(acc, 4), "val_log_loss": round(loss, 4)})
        key = (acc, -loss)
        if best_key is None or key > best_key:
            best, best_key = w, key
    return best, tried
