"""The linear probe a user writes in ten lines, as headstart's linear head.

Standardised features, a multinomial logistic regression fitted by L-BFGS (scikit-learn's
``LogisticRegression``, the same convex problem every probe in the literature solves), its
inverse L2 strength ``C`` chosen on validation over a wide grid (:data:`PROBE_CS`, 1e-4 to
1e2), the chosen ``C`` then refitted on the training split from a cold start (so the model is
exactly scikit-learn's for that ``C``). The standardisation is folded into the weights, so the
run's head is the one linear layer it is: ``W' = W / s``, ``b' = b - W' m`` for the scaler's
mean ``m`` and scale ``s``.

It replaces the SGD-trained linear head (a BatchNorm standardiser and Adam with a weight-decay
grid), which issue 27 measured 2-4 points below this probe on the same features and below the
majority class on text. A fine-tuning continuation of a probe run (``headstart finetune``,
``auto``'s top stage) starts from this converged linear head: LP-FT (Kumar et al., ICLR 2022).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from headstart.core.classic import per_class_coefficients

#: Inverse L2 strengths the probe tries on validation: every half decade from 1e-4 to 1e2 (a
#: wide grid, as the probes of the representation-learning literature search; the
#: regularisation an extracted feature set needs varies over orders of magnitude).
PROBE_CS = tuple(float(f"{10.0**k:.4g}") for k in np.arange(-4.0, 2.01, 0.5))
#: Settings of gradient training that the probe does not use (the report leaves them out;
#: training says so when one is given).
UNUSED_SETTINGS = (
    "epochs",
    "lr",
    "weight_decay",
    "patience",
    "label_smoothing",
    "optimizer",
    "schedule",
    "warmup_epochs",
)
#: L-BFGS iterations per fit (scikit-learn's default, 100, stops short on high-dimensional
#: features from every depth).
PROBE_MAX_ITER = 1000


@dataclass
class ProbeFit:
    """A fitted probe: the folded linear layer (``weight`` (classes, features), ``bias``), the
    chosen ``C``, and what was tried (``tried``: C, validation accuracy and log loss)."""

    weight: np.ndarray
    bias: np.ndarray
    C: float
    tried: list[dict] = field(default_factory=list)
    train_accuracy: float = 0.0
    train_log_loss: float = 0.0
    val_accuracy: float = 0.0
    val_log_loss: float = 0.0
    converged: bool = True
    seconds: float = 0.0
    chosen_on: str = "validation accuracy (ties: lower log loss)"

    def record(self) -> dict:
        """What ``metrics.json`` keeps (``probe``)."""
        return {
            "C": self.C,
            "chosen_on": self.chosen_on,
            "grid": list(PROBE_CS),
            "tried": self.tried,
            "converged": self.converged,
            "max_iter": PROBE_MAX_ITER,
            "seconds": round(self.seconds, 3),
        }

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float64) @ self.weight.T.astype(np.float64) + self.bias


def _model(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=PROBE_MAX_ITER)


def _scores(model, x, y, n_classes: int, sample_weight=None) -> tuple[float, float]:
    from sklearn.metrics import log_loss

    from headstart.core.classic import full_proba

    if len(y) == 0:
        return 0.0, 0.0
    proba = full_proba(model.predict_proba(x), model.classes_, n_classes)
    acc = float(np.average(proba.argmax(1) == y, weights=sample_weight))
    loss = float(log_loss(y, proba, labels=np.arange(n_classes), sample_weight=sample_weight))
    return acc, loss


def fit_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    *,
    sample_weight: np.ndarray | None = None,
    grid: tuple[float, ...] = PROBE_CS,
) -> ProbeFit:
    """Fit the probe on ``x_train`` (rows: examples; several views of an example are rows
    too), choose ``C`` on ``x_val`` by accuracy (ties: the lower log loss, then the smaller
    ``C``), refit that ``C`` from a cold start and fold the standardisation in.
    ``sample_weight``: per training row (class weights). The search warm-starts each ``C``
    from the last one's solution (seconds on cached features)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    y_train, y_val = np.asarray(y_train, np.int64), np.asarray(y_val, np.int64)
    scaler = StandardScaler().fit(np.asarray(x_train, np.float64))
    xt = scaler.transform(np.asarray(x_train, np.float64))
    xv = scaler.transform(np.asarray(x_val, np.float64)) if len(y_val) else xt[:0]
    tried, best = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        path = _model(grid[0])
        path.set_params(warm_start=True)
        for c in sorted(grid):  # strong to weak: each solution starts the next
            path.set_params(C=c).fit(xt, y_train, sample_weight=sample_weight)
            acc, loss = _scores(path, xv, y_val, n_classes) if len(y_val) else (0.0, 0.0)
            tried.append({"C": c, "val_accuracy": round(acc, 4), "val_log_loss": round(loss, 4)})
            if best is None or (acc, -loss) > best[0]:
                best = ((acc, -loss), c)
        c = best[1]
        model = _model(c).fit(xt, y_train, sample_weight=sample_weight)
    converged = bool(np.all(np.asarray(model.n_iter_) < PROBE_MAX_ITER))
    coef, intercept = per_class_coefficients(model, n_classes)
    weight = coef.astype(np.float64) / scaler.scale_
    bias = intercept.astype(np.float64) - weight @ scaler.mean_
    train_acc, train_loss = _scores(model, xt, y_train, n_classes, sample_weight)
    val_acc, val_loss = _scores(model, xv, y_val, n_classes) if len(y_val) else (0.0, 0.0)
    return ProbeFit(
        weight=weight.astype(np.float32),
        bias=bias.astype(np.float32),
        C=c,
        tried=tried,
        train_accuracy=train_acc,
        train_log_loss=train_loss,
        val_accuracy=val_acc,
        val_log_loss=val_loss,
        converged=converged,
        seconds=time.perf_counter() - start,
    )


#: The bias of a label that is constant in the training split (never or always present): a
#: logit far enough out that its probability rounds to 0 or 1.
CONSTANT_LOGIT = 12.0


def fit_probe_multilabel(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    grid: tuple[float, ...] = PROBE_CS,
) -> ProbeFit:
    """The one-vs-rest probe of multi-label data (``y``: a 0/1 matrix): one binary logistic
    regression per label on the standardised features, one ``C`` for all labels chosen on
    validation by mean average precision (ties: the lower mean log loss), refitted from a cold
    start. A label constant in training gets no weights and a bias at its one value."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    y_train, y_val = np.asarray(y_train, np.int64), np.asarray(y_val, np.int64)
    k = y_train.shape[1]
    scaler = StandardScaler().fit(np.asarray(x_train, np.float64))
    xt = scaler.transform(np.asarray(x_train, np.float64))
    xv = scaler.transform(np.asarray(x_val, np.float64)) if len(y_val) else xt[:0]
    varies = [j for j in range(k) if 0 < y_train[:, j].sum() < len(y_train)]
    constant = np.where(y_train.all(axis=0), CONSTANT_LOGIT, -CONSTANT_LOGIT)

    def scores(models, x, y):
        return _ovr_scores(models, constant, x, y)

    tried, best = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        path = {j: _model(grid[0]).set_params(warm_start=True) for j in varies}
        for c in sorted(grid):  # strong to weak: each solution starts the next
            for j in varies:
                path[j].set_params(C=c).fit(xt, y_train[:, j])
            ap, loss = scores(path, xv, y_val)
            tried.append(
                {"C": c, "val_mean_average_precision": round(ap, 4), "val_log_loss": round(loss, 4)}
            )
            if best is None or (ap, -loss) > best[0]:
                best = ((ap, -loss), c)
        c = best[1]
        models = {j: _model(c).fit(xt, y_train[:, j]) for j in varies}
    converged = all(np.all(np.asarray(m.n_iter_) < PROBE_MAX_ITER) for m in models.values())
    coef, intercept = np.zeros((k, xt.shape[1])), constant.astype(np.float64)
    for j, m in models.items():
        coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
    weight = coef / scaler.scale_
    bias = intercept - weight @ scaler.mean_
    train_ap, train_loss = scores(models, xt, y_train)
    val_ap, val_loss = scores(models, xv, y_val)
    return ProbeFit(
        weight=weight.astype(np.float32),
        bias=bias.astype(np.float32),
        C=c,
        tried=tried,
        train_accuracy=train_ap,
        train_log_loss=train_loss,
        val_accuracy=val_ap,
        val_log_loss=val_loss,
        converged=converged,
        seconds=time.perf_counter() - start,
        chosen_on="validation mean average precision (ties: lower mean log loss); one C for "
        "every label, one logistic regression per label",
    )


def _ovr_scores(models: dict, constant: np.ndarray, x, y) -> tuple[float, float]:
    """(mean average precision, mean log loss) of one-vs-rest ``models`` (label -> fitted
    logistic regression; a label without one has its ``constant`` logit) on ``x``, ``y``."""
    from sklearn.metrics import log_loss

    from headstart.core.multilabel import multilabel_metrics

    if not len(y):
        return 0.0, 0.0
    k = y.shape[1]
    z = np.tile(constant.astype(np.float64), (len(x), 1))
    for j, m in models.items():
        z[:, j] = m.decision_function(x)
    p = 1 / (1 + np.exp(-np.clip(z, -60, 60)))
    m = multilabel_metrics(y, p, np.full(k, 0.5), [str(j) for j in range(k)], n_boot=0)
    loss = np.mean([log_loss(y[:, j], p[:, j], labels=[0, 1]) for j in range(k)])
    return float(m["mean_average_precision"] or 0.0), float(loss)
