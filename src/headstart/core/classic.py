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

A run may also *be* a blend (``--blend auto``, the default for text), of one of two kinds,
chosen on validation with everything else:

- a *mix*: the model's probabilities and the baseline's averaged with the baseline's weight
  chosen on validation (:func:`choose_weight`; ``model.json`` records ``classic_weight``);
- a *joint* model (:func:`fit_joint`): one logistic regression on the baseline's features
  and the network's (the inputs of its head, frozen or fine-tuned) side by side,
  ``[x, alpha * e]``, with ``alpha`` and its regularisation chosen on validation. It measured
  2.1 points above the baseline on the drug reviews where the mix kept the baseline alone
  (``bench/bench_text_hybrid.py``). Its coefficients split into two parts that add up in
  logit space: the network's part becomes the run's head (a plain linear layer), the
  baseline's part is kept beside the baseline (``joint_logits``), and the run predicts
  ``softmax(log p_network + joint logits)`` (``model.json``: ``classic_joint``).

Every way a run predicts (``Run.predict_proba``, ``evaluate``, the ONNX export, ``serve``)
blends alike, through :func:`combine`.

A baseline class that can be part of a joint model also has ``features(examples)`` (a matrix,
sparse or dense, one row per example) and ``with_joint(coef, intercept, record)`` (a copy that
also holds the joint model's part: ``joint_logits(examples)``, saved with it).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from headstart.core import tasks
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


def forget_fitted() -> None:
    """Drop the fitted baselines and joint models kept in memory (a benchmark timing a run
    from a cold start; tests)."""
    _FITTED.clear()
    _JOINTS.clear()


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


def load_multilabel_baseline(run):
    """(the classic baseline, its per-label thresholds) of a multi-label ``run`` (text: TF-IDF
    with a logistic regression per label), or None where there is none."""
    model = load_baseline(run)
    if model is None or getattr(model, "thresholds", None) is None:
        return None
    return model, model.thresholds


#: The weights of the classic baseline tried in a blend, 0 (the model alone) to 1 (the
#: baseline alone).
BLEND_WEIGHTS = tuple(round(0.1 * k, 1) for k in range(11))


def blended(model_proba: np.ndarray, classic_proba: np.ndarray, weight: float) -> np.ndarray:
    """The blend's probabilities: ``(1 - weight)`` of the model's plus ``weight`` of the
    classic baseline's (the same rows, the same classes)."""
    if weight <= 0:
        return model_proba
    return tasks.combine([model_proba, classic_proba], [1.0 - weight, weight])


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


def per_class_coefficients(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One coefficient row and intercept per class of a fitted scikit-learn logistic
    regression, whose softmax is the model's probabilities; a class absent from train gets a
    row that never wins. (Binary: ``sigmoid(w.x + b) = softmax([-(w.x + b)/2, (w.x + b)/2])``,
    so every model predicts the same way.)"""
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    full_coef = np.zeros((n_classes, coef.shape[1]), dtype=np.float32)
    full_intercept = np.full(n_classes, -1e4, dtype=np.float32)
    full_coef[model.classes_] = coef
    full_intercept[model.classes_] = intercept
    return full_coef, full_intercept


def full_proba(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over every class (a class absent from train gets 0)."""
    out = np.zeros((proba.shape[0], n_classes))
    out[:, classes] = proba
    return out / out.sum(axis=1, keepdims=True)  # float32 rows may miss 1 by more than 1e-7


#: The joint model's grids: the network features' scale ``alpha`` against the baseline's, and
#: the logistic regression's C. Narrowed from ``bench/bench_text_hybrid.py``'s 7 x 15 values:
#: on the drug reviews and the long speeches the narrow grid chose the same alpha and C as the
#: wide one, at about a fifth of the time (BENCHMARKS.md).
JOINT_ALPHAS = (0.1, 0.25, 0.5, 1.0, 2.0)
JOINT_CS = (1e1, 1e2, 1e3, 1e4, 1e5)


#: Fitted joint models by (baseline, features) content: ``auto``'s frozen candidates (the
#: lesson head, the linear head) read the same features, so their joint model is the same fit.
_JOINTS: OrderedDict[tuple, tuple] = OrderedDict()


def _digest(array) -> str:
    import hashlib

    a = np.ascontiguousarray(array)
    return hashlib.sha256(a.view(np.uint8).ravel().data).hexdigest() + str(a.shape)


def fit_joint(baseline, sets: dict, features: dict, n_classes: int):
    """One logistic regression (L-BFGS) on ``[baseline.features(x), alpha * e]``: ``sets``
    maps "train" and "val" to example sets, ``features`` the same names to the network's
    features of their examples, the inputs of its head (rows in the same order). ``alpha``
    and C are chosen on validation accuracy (ties: the lower log loss, then the earlier in
    the grids); the model of that choice is the one fitted on train, its probabilities then
    calibrated by one temperature (:func:`fit_temperature`). Returns (the baseline with the
    joint model's baseline part, the network part as a (classes, features) weight of a linear
    layer without bias, what was tried and chosen)."""
    key = (id(baseline), n_classes, *(_digest(features[n]) for n in ("train", "val")))
    if key in _JOINTS:  # (the value holds the baseline: its id is not reused meanwhile)
        _JOINTS.move_to_end(key)
        _, joined, part, record = _JOINTS[key]
        return joined, part, {**record, "reused": True}
    joined, part, record = _fit_joint(baseline, sets, features, n_classes)
    _JOINTS[key] = (baseline, joined, part, record)
    while len(_JOINTS) > _KEEP:
        _JOINTS.popitem(last=False)
    return joined, part, dict(record)


def _fit_joint(baseline, sets: dict, features: dict, n_classes: int):
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    start = time.perf_counter()
    y = {n: np.asarray(sets[n].labels, dtype=np.int64) for n in ("train", "val")}
    x = {n: baseline.features(sets[n]) for n in ("train", "val")}
    width = x["train"].shape[1]
    tried, best = [], None
    for alpha in JOINT_ALPHAS:
        both = {
            n: hstack([x[n], csr_matrix(alpha * np.asarray(features[n], np.float32))]).tocsr()
            for n in x
        }
        for c in JOINT_CS:
            model = LogisticRegression(C=c, max_iter=2000).fit(both["train"], y["train"])
            proba = full_proba(model.predict_proba(both["val"]), model.classes_, n_classes)
            acc = float(np.mean(proba.argmax(1) == y["val"]))
            loss = float(log_loss(y["val"], proba, labels=np.arange(n_classes)))
            scores = {"val_accuracy": round(acc, 4), "val_log_loss": round(loss, 4)}
            tried.append({"alpha": alpha, "C": c, **scores})
            if best is None or (acc, -loss) > best[0]:
                best = ((acc, -loss), alpha, c, model, both["val"])
    (acc, neg_loss), alpha, c, model, x_val = best
    coef, intercept = per_class_coefficients(model, n_classes)
    # accuracy picks the model, and on a few hundred texts it can pick a barely regularised
    # one whose probabilities are overconfident: one temperature, fitted on validation log
    # loss (Guo et al. 2017), scales both parts' logits and leaves every prediction as it is
    val_logits = np.asarray(x_val @ coef.T, np.float64) + intercept
    temperature = fit_temperature(val_logits, y["val"])
    coef, intercept = coef / temperature, intercept / temperature
    calibrated = softmax(val_logits / temperature)
    record = {
        "alpha": alpha,
        "C": c,
        "val_accuracy": acc,
        "val_log_loss": float(log_loss(y["val"], calibrated, labels=np.arange(n_classes))),
        "temperature": temperature,
        "val_log_loss_before_temperature": -neg_loss,
        "chosen_on": "validation accuracy (ties: lower log loss)",
        "tried": tried,
        "features": {"classic": int(width), "network": int(coef.shape[1] - width)},
        "seconds": round(time.perf_counter() - start, 3),
    }
    joined = baseline.with_joint(np.ascontiguousarray(coef[:, :width]), intercept, record)
    return joined, np.ascontiguousarray(alpha * coef[:, width:]), record


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (rows, classes) array of logits, shifted for stability."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T (0.05 to 100) whose ``softmax(logits / T)`` has the lowest log loss
    on ``y``: temperature scaling, which calibrates probabilities without changing any
    prediction. 1 when there is nothing to fit on."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return 1.0
    rows = np.arange(len(y))

    def loss(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, y]))

    found = minimize_scalar(loss, bounds=(np.log(0.05), np.log(100.0)), method="bounded")
    return float(np.exp(found.x)) if loss(found.x) < loss(0.0) else 1.0


def joint_proba(model_proba: np.ndarray, joint_logits: np.ndarray) -> np.ndarray:
    """A joint model's probabilities from its network part's (``softmax`` of the head's
    logits) and its baseline part's logits: ``softmax(log p + logits)``, which is the softmax
    of the two parts' summed logits."""
    tiny = np.finfo(np.float32).tiny  # a probability that underflowed to 0 stays the least
    z = np.log(np.maximum(np.asarray(model_proba, np.float64), tiny)) + joint_logits
    return softmax(z).astype(np.float32)


def combine(run, model_proba: np.ndarray, examples, classic_proba=None) -> np.ndarray:
    """``run``'s probabilities of ``examples`` from its network's (``model_proba``, the same
    rows): the network's alone, mixed with its classic baseline's (``classic_proba`` when the
    caller has them, else computed), or its joint model's."""
    if len(model_proba) == 0:
        return model_proba
    if run.classic_joint:
        return joint_proba(model_proba, load_baseline(run).joint_logits(examples))
    if run.classic_weight > 0:
        if classic_proba is None:
            classic_proba = load_baseline(run).predict_proba(examples)
        return blended(model_proba, classic_proba, run.classic_weight).astype(np.float32)
    return model_proba
