"""Transferability scores computed on frozen features, before any training.

**LogME** (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021) is the log marginal evidence of a Bayesian linear model from features to
each class's one-hot target, maximised over the prior precision alpha and noise precision beta
by a fixed-point iteration on the feature matrix's singular values, averaged over classes and
divided by the number of images. Higher is better. It needs one SVD, no training, and ranks
backbones close to fine-tuned accuracy on classification benchmarks.

Two cheap empirical scores are reported beside it: a 5-fold cross-validated logistic-regression
probe and a cosine kNN, both from scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler


def logme(
    features: np.ndarray, labels: np.ndarray, *, max_iter: int = 100, tol: float = 1e-4
) -> float:
    """LogME evidence per image of ``features`` (n, d) for integer ``labels`` (n,), or for a
    0/1 label matrix (n, labels) of multi-label data."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    # Singular values at rounding level are zero (dead ReLU columns, duplicated images): their
    # directions belong to the null space, not to span(F). Keeping them would divide rounding
    # noise by rounding noise in U^T y; the rank tolerance is numpy's matrix_rank default.
    rank = int((s > (s[0] if s.size else 0.0) * max(n, d) * np.finfo(np.float64).eps).sum())
    u, s = u[:, :rank], s[:rank]
    sigma = s**2
    k = len(sigma)
    evidences = []
    # one target per class (its one-hot column), or per label of multi-label data (its 0/1
    # column: the same model, as LogME's authors apply it to multi-label tasks)
    targets = y.T if y.ndim == 2 else [(y == c) for c in np.unique(y)]
    for t in targets:
        t = np.asarray(t, np.float64)
        x = u.T @ t
        x2 = x**2
        res_outside = max(float(t @ t - x2.sum()), 0.0)  # part of t outside span(F)
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            ratio = alpha / beta
            gamma = float((sigma / (sigma + ratio)).sum())
            m2 = float((sigma * x2 / (ratio + sigma) ** 2).sum())
            res2 = float((x2 / (1.0 + sigma / ratio) ** 2).sum()) + res_outside
            alpha = max(gamma / (m2 + 1e-10), 1e-10)  # guards keep degenerate features finite
            beta = max((n - gamma) / (res2 + 1e-10), 1e-10)
            if abs(alpha / beta - ratio) / ratio <= tol:
                break
        ratio = alpha / beta
        m2 = float((sigma * x2 / (ratio + sigma) ** 2).sum())
        res2 = float((x2 / (1.0 + sigma / ratio) ** 2).sum()) + res_outside
        # sum over all d eigenvalues of log(alpha + beta * sigma_i); d - k of them are zero
        log_det = float(np.log(alpha + beta * sigma).sum()) + (d - k) * np.log(alpha)
        evidence = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - 0.5 * log_det
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def _folds(labels: np.ndarray, max_folds: int = 5) -> int:
    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    return max(2, min(max_folds, smallest))


def probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Mean 5-fold cross-validated accuracy of a logistic-regression probe (several labels per
    example: the micro-F1 of one probe per label, folds by iterative stratification)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return _multilabel_probe(features, labels, seed)
    if np.bincount(labels).min() < 2:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    cv = StratifiedKFold(_folds(labels), shuffle=True, random_state=seed)
    return float(cross_val_score(model, features, labels, cv=cv).mean())


def _multilabel_probe(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
    from sklearn.multiclass import OneVsRestClassifier

    varies = (labels.sum(axis=0) >= 2) & (labels.sum(axis=0) <= len(labels) - 2)
    if not varies.any():
        return float("nan")
    labels = labels[:, varies]
    model = make_pipeline(
        StandardScaler(), OneVsRestClassifier(LogisticRegression(max_iter=2000, C=1.0))
    )
    cv = MultilabelStratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    return float(cross_val_score(model, features, labels, cv=cv, scoring="f1_micro").mean())


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0) -> float:
    """Mean cross-validated accuracy of a cosine k-nearest-neighbour classifier (several labels
    per example: micro-F1, folds by iterative stratification)."""
    labels = np.asarray(labels)
    model = make_pipeline(Normalizer(), KNeighborsClassifier(n_neighbors=k))
    if labels.ndim == 2:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        cv = MultilabelStratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        return float(cross_val_score(model, features, labels, cv=cv, scoring="f1_micro").mean())
    if np.bincount(labels).min() < 2:
        return float("nan")
    cv = StratifiedKFold(_folds(labels), shuffle=True, random_state=seed)
    return float(cross_val_score(model, features, labels, cv=cv).mean())
