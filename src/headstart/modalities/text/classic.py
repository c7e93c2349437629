"""The classic text baseline: TF-IDF + logistic regression, the ten lines of scikit-learn a user
would write before reaching for a transformer, fitted on a run's own train split.

Features: TF-IDF of word 1-2 grams and of character 2-5 grams within word boundaries
(``char_wb``), each with sublinear term frequency and a minimum document frequency of 2,
side by side. Characters were added because they measured better on both development sets
(drug reviews: 73.6% test against 71.2% for words alone; 189 long speeches: 89.7% against
86.2%; C chosen on validation in both; see BENCHMARKS.md). The regularisation C of the
logistic regression (L-BFGS, scikit-learn's default solver) is chosen on the validation
split from a logarithmic grid, ties broken by the lower validation log loss.

Saved without pickle (:meth:`TfidfBaseline.save`): ``classic.json`` holds the settings and
each vectoriser's vocabulary, ``classic.safetensors`` the idf weights and the coefficients
(and, in a run that is a joint model, :func:`headstart.core.classic.fit_joint`, the joint
model's TF-IDF coefficients beside the baseline's: one vocabulary serves both).
Predictions need scikit-learn's vectoriser (rebuilt from the vocabulary) and one matrix
product; the coefficients are stored as one row per class (a binary model's single row ``w``
as ``-w/2, +w/2``, whose softmax is its sigmoid), so every model predicts the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.core.classic import full_proba, per_class_coefficients, softmax
from headstart.core.probe import CONSTANT_LOGIT
from headstart.errors import RunError
from headstart.io import atomic_write_json, atomic_write_with

#: What the baseline is called wherever it is shown.
NAME = "TF-IDF + logistic regression"
#: Files of a saved baseline, inside the run's ``classic/`` folder.
SETTINGS_FILE = "classic.json"
WEIGHTS_FILE = "classic.safetensors"
#: The vectorisers: word 1-2 grams and character 2-5 grams within words.
VECTORISERS = (
    {"analyzer": "word", "ngram_range": (1, 2)},
    {"analyzer": "char_wb", "ngram_range": (2, 5)},
)
MIN_DF = 2
#: The grid C is chosen from on validation (1e-2 to 1e4; both development sets chose 1e3).
C_GRID = tuple(float(c) for c in np.logspace(-2, 4, 13))
KIND = "tfidf-logreg"


def _vectoriser(spec: dict, min_df: int, vocabulary: dict | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer=spec["analyzer"],
        ngram_range=tuple(spec["ngram_range"]),
        sublinear_tf=True,
        min_df=min_df,
        lowercase=True,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


class TfidfBaseline:
    """A fitted TF-IDF + logistic regression model over ``n_classes`` classes."""

    name = NAME
    kind = KIND

    def __init__(
        self,
        vectorisers: list,
        coef: np.ndarray,
        intercept: np.ndarray,
        record: dict,
        joint: tuple[np.ndarray, np.ndarray] | None = None,
        joint_record: dict | None = None,
    ):
        self.vectorisers = vectorisers
        self.coef = np.asarray(coef, dtype=np.float32)  # (classes, features)
        self.intercept = np.asarray(intercept, dtype=np.float32)  # (classes,)
        #: how it was fitted: settings, the C tried and chosen, sizes, seconds
        self.record = record
        #: a joint model's TF-IDF part (coefficients, intercept), or None
        self.joint = (
            None if joint is None else tuple(np.ascontiguousarray(a, np.float32) for a in joint)
        )
        #: how the joint model was chosen (saved with it)
        self.joint_record = joint_record

    def with_joint(self, coef: np.ndarray, intercept: np.ndarray, record: dict) -> TfidfBaseline:
        """This baseline, also holding a joint model's TF-IDF part (``record``: how the joint
        model was chosen); the baseline itself is unchanged (a copy: ``auto`` shares one
        fitted baseline between its candidates)."""
        return TfidfBaseline(
            self.vectorisers,
            self.coef,
            self.intercept,
            self.record,
            joint=(coef, intercept),
            joint_record=record,
        )

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, train, val, n_classes: int) -> TfidfBaseline:
        """Vectorisers fitted on the texts of ``train`` (a :class:`TextSet`); C chosen on
        ``val``'s; the logistic regression of that C fitted on the train texts alone, as the
        run's model is."""
        return cls.fit_texts(train.texts, train.labels, val.texts, val.labels, n_classes)

    @classmethod
    def fit_texts(
        cls,
        train_texts: Sequence[str],
        y_train: np.ndarray,
        val_texts: Sequence[str],
        y_val: np.ndarray,
        n_classes: int,
    ) -> TfidfBaseline:
        """:meth:`fit` on lists of texts and labels."""
        from scipy.sparse import hstack

        start = time.perf_counter()
        y_train = np.asarray(y_train, dtype=np.int64)
        y_val = np.asarray(y_val, dtype=np.int64)
        if y_train.ndim == 1 and len(np.unique(y_train)) < 2:
            raise ValueError("the classic baseline needs at least two classes in train")
        vectorisers, min_dfs = [], []
        for spec in VECTORISERS:
            # a handful of texts may share no term twice: then every term counts
            for min_df in (MIN_DF, 1):
                try:
                    vec = _vectoriser(spec, min_df).fit(list(train_texts))
                    break
                except ValueError:  # "After pruning, no terms remain" / empty vocabulary
                    vec = None
            if vec is not None:
                vectorisers.append(vec)
                min_dfs.append(min_df)
        if not vectorisers:
            raise ValueError("the training texts hold no words or characters to count")

        def features(texts):
            return hstack([v.transform(list(texts)) for v in vectorisers]).tocsr()

        x_train, x_val = features(train_texts), features(val_texts)
        if y_train.ndim == 2:  # several labels per text: one logistic regression per label
            coef, intercept, record = _fit_one_vs_rest(x_train, y_train, x_val, y_val)
        else:
            coef, intercept, record = _fit_multinomial(x_train, y_train, x_val, y_val, n_classes)
        record = {
            "kind": KIND,
            "name": NAME,
            "features": [
                {
                    "analyzer": spec["analyzer"],
                    "ngram_range": list(spec["ngram_range"]),
                    "sublinear_tf": True,
                    "min_df": md,
                    "terms": len(v.vocabulary_),
                }
                for spec, md, v in zip(VECTORISERS, min_dfs, vectorisers)
            ],
            **record,
            "n_train": len(y_train),
            "n_val": len(y_val),
            "seconds": round(time.perf_counter() - start, 3),
        }
        return cls(vectorisers, coef, intercept, record)

    # ------------------------------------------------------------------ predicting

    def features(self, texts):
        """The TF-IDF vectors of ``texts`` (a :class:`TextSet` or a sequence of strings), as a
        sparse (texts, terms) matrix: each vectoriser's columns side by side."""
        from scipy.sparse import hstack

        texts = list(getattr(texts, "texts", texts))
        return hstack([v.transform(texts) for v in self.vectorisers]).tocsr()

    @property
    def thresholds(self) -> np.ndarray | None:
        """Per-label thresholds (chosen on validation) of a multi-label baseline, else None."""
        t = self.record.get("thresholds")
        return None if t is None else np.asarray(t, np.float64)

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities of ``texts`` (a :class:`TextSet` or a sequence of strings; one
        row per text)."""
        logits = np.asarray(self.features(texts) @ self.coef.T) + self.intercept
        if self.record.get("task") == "multi-label":  # a sigmoid per label
            return _sigmoid(logits)
        return softmax(logits)

    def joint_logits(self, texts) -> np.ndarray:
        """The joint model's TF-IDF part of its logits (float64, one row per text)."""
        if self.joint is None:
            raise RunError("this classic baseline holds no joint model.")
        coef, intercept = self.joint
        return np.asarray(self.features(texts) @ coef.T, np.float64) + intercept

    def describe(self) -> str:
        """One line: what it is and how C was chosen."""
        parts = [
            f"{f['analyzer'].replace('char_wb', 'character')} {f['ngram_range'][0]}-"
            f"{f['ngram_range'][1]} grams"
            for f in self.record.get("features", [])
        ]
        return (
            f"{NAME}: TF-IDF of {' and '.join(parts)} (sublinear tf), logistic regression "
            f"with C = {self.record.get('C', float('nan')):g} chosen on validation"
        )

    # ------------------------------------------------------------------ files

    def save(self, folder: Path, prefix: str = "") -> None:
        """``classic.json`` (settings, vocabularies) and ``classic.safetensors`` (idf weights,
        coefficients), written atomically; no pickle. ``prefix`` goes before each name (an
        ONNX export ships them as ``STEM.classic.json``...)."""
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"coef": self.coef, "intercept": self.intercept}
        if self.joint is not None:
            tensors["joint.coef"], tensors["joint.intercept"] = self.joint
        vocabularies = []
        for k, v in enumerate(self.vectorisers):
            tensors[f"idf.{k}"] = np.asarray(v.idf_, dtype=np.float32)
            vocabularies.append({term: int(i) for term, i in v.vocabulary_.items()})
        # safetensors writes a strided view's memory, not its values: every array contiguous
        tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        atomic_write_with(
            folder / f"{prefix}{WEIGHTS_FILE}", lambda tmp: save_file(tensors, str(tmp))
        )
        joint = {"joint": self.joint_record or {}} if self.joint is not None else {}
        atomic_write_json(
            folder / f"{prefix}{SETTINGS_FILE}",
            {**self.record, **joint, "vocabularies": vocabularies},
        )

    @classmethod
    def load(cls, folder: Path, prefix: str = "") -> TfidfBaseline:
        """The baseline saved in ``folder`` (with ``prefix`` before its files' names)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            payload = json.loads((folder / f"{prefix}{SETTINGS_FILE}").read_text(encoding="utf-8"))
            tensors = load_file(str(folder / f"{prefix}{WEIGHTS_FILE}"))
        except (OSError, ValueError, SafetensorError) as e:
            raise RunError(f"{folder}: the classic baseline is unreadable ({e}).") from None
        vocabularies = payload.pop("vocabularies", [])
        joint_record = payload.pop("joint", None)
        vectorisers = []
        for k, (spec, vocabulary) in enumerate(zip(payload["features"], vocabularies)):
            vec = _vectoriser(spec, int(spec["min_df"]), vocabulary)
            vec.idf_ = tensors[f"idf.{k}"]
            vectorisers.append(vec)
        n_terms = sum(len(v) for v in vocabularies)
        if tensors["coef"].shape[1] != n_terms:
            raise RunError(
                f"{folder}: the classic baseline's coefficients ({tensors['coef'].shape[1]}) "
                f"do not match its vocabularies ({n_terms} terms)."
            )
        joint = None
        if "joint.coef" in tensors:
            joint = (tensors["joint.coef"], tensors["joint.intercept"])
            if joint[0].shape != tensors["coef"].shape:
                raise RunError(
                    f"{folder}: the joint model's TF-IDF coefficients {tuple(joint[0].shape)} do "
                    f"not match the baseline's {tuple(tensors['coef'].shape)}."
                )
        return cls(
            vectorisers,
            tensors["coef"],
            tensors["intercept"],
            payload,
            joint=joint,
            joint_record=joint_record,
        )


class BlendFeed:
    """An exported blended text run's client input: the tokenizer's ids and mask, and the
    texts' TF-IDF vectors (dense float32), computed without torch."""

    def __init__(self, tokens, baseline: TfidfBaseline, name: str = "tfidf"):
        self.tokens, self.baseline, self.name = tokens, baseline, name
        self.order, self.batches = tokens.order, tokens.batches  # grouped as the tokens are

    def __call__(self, texts) -> dict[str, np.ndarray]:
        arrays = self.tokens(texts)
        arrays[self.name] = np.asarray(self.baseline.features(texts).toarray(), np.float32)
        return arrays


def _fit_multinomial(x_train, y_train, x_val, y_val, n_classes: int):
    """One multinomial logistic regression, C chosen on validation accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    tried, best, best_model = [], None, None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        proba = full_proba(model.predict_proba(x_val), model.classes_, n_classes)
        acc = float(np.mean(proba.argmax(1) == y_val)) if len(y_val) else float("nan")
        loss = (
            float(log_loss(y_val, proba, labels=np.arange(n_classes)))
            if len(y_val)
            else float("nan")
        )
        tried.append({"C": c, "val_accuracy": round(acc, 4), "val_log_loss": round(loss, 4)})
        key = (acc, -loss)
        if best is None or key > best:
            best, best_model = key, model
    coef, intercept = per_class_coefficients(best_model, n_classes)
    record = {
        "C": float(best_model.C),
        "chosen_on": "validation accuracy (ties: lower log loss)",
        "tried": tried,
    }
    return coef, intercept, record


def _fit_one_vs_rest(x_train, y_train, x_val, y_val):
    """One binary logistic regression per label (scikit-learn's one-vs-rest), one C for all
    labels chosen on validation mean average precision (ties: the lower mean log loss), and
    each label's threshold chosen on validation as the run's are
    (:func:`headstart.core.multilabel.choose_thresholds`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    from headstart.core.multilabel import choose_thresholds, multilabel_metrics

    k = y_train.shape[1]
    varies = [j for j in range(k) if 0 < y_train[:, j].sum() < len(y_train)]
    tried, best = [], None
    for c in C_GRID:
        coef = np.zeros((k, x_train.shape[1]))
        intercept = np.where(y_train.all(axis=0), CONSTANT_LOGIT, -CONSTANT_LOGIT).astype(float)
        for j in varies:
            m = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train[:, j])
            coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
        proba = _sigmoid(np.asarray(x_val @ coef.T) + intercept)
        names = [str(j) for j in range(k)]
        ap = multilabel_metrics(y_val, proba, np.full(k, 0.5), names, n_boot=0, curves=False)[
            "mean_average_precision"
        ]
        ap = float(ap or 0.0)  # (None: no label has a positive validation text)
        loss = float(np.mean([log_loss(y_val[:, j], proba[:, j], labels=[0, 1]) for j in range(k)]))
        row = {"C": c, "val_mean_average_precision": round(ap, 4), "val_log_loss": round(loss, 4)}
        tried.append(row)
        # compared as recorded (4 places): average precisions equal to the 4th place are a
        # tie, which the log loss breaks, as the record says
        key = (row["val_mean_average_precision"], -row["val_log_loss"])
        if best is None or key > best[0]:
            best = (key, c, coef, intercept, proba)
    _, c, coef, intercept, proba = best
    thresholds, rule = choose_thresholds(y_val, proba)
    record = {
        "task": "multi-label",
        "C": c,
        "chosen_on": "validation mean average precision (ties: lower mean log loss); one "
        "logistic regression per label",
        "tried": tried,
        "thresholds": thresholds.tolist(),
        "threshold_rule": rule["rule"],
    }
    return coef, intercept, record


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(z, np.float64), -60, 60)))
