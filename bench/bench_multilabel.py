"""Multi-label classification on real data (issue 28): headstart against the one-vs-rest
probe a user writes in ten lines, the label-frequency predictor and, for text, TF-IDF
one-vs-rest.

Data sets (``--datasets``, comma-separated):

  mosaic   2x2 mosaics of scikit-learn's digits (real handwriting, 1,797 8x8 greyscale digits,
           each tile upscaled to 16x16; a tile is blank with probability 1/4), 1,200 mosaics
           of 32x32, labelled by the distinct digits they show: 10 labels, about 2.6 per image.
           Built with a fixed seed; the digits of train, validation and test mosaics are
           drawn from disjoint thirds of scikit-learn's digits, so no handwritten digit is
           seen in two splits.
  genres   Rotten Tomatoes critics' consensus sentences (about 21 words) with their films'
           OMDb genres: 5,522 texts, 21 genres (those of at least 20 texts), 2.35 per text.
           From ``bokeh-sampledata==2024.2`` (its ``movies.db``, read with sqlite3; later
           releases dropped the sentences). Its licence is NON-COMMERCIAL (CC BY-NC 4.0): it
           is used here to benchmark only; headstart never ships, downloads or depends on it.
           ``pip install --no-deps bokeh-sampledata==2024.2`` before running.

Every recipe sees one split, carved by headstart's own iterative stratification (seed 0:
test 20%, validation 20% of the rest; the mosaics' split is by construction as above):

  label-frequency   each label's training share as its probability, thresholds chosen on
                    validation (F1-optimal per label, as headstart's)
  probe-ovr         the ten lines: StandardScaler + one LogisticRegressionCV (Cs=10, cv=5) per
                    label on the frozen network's pooled features (the ones headstart uses),
                    fitted on train + validation, predicting at 0.5 (``predict``)
  tfidf-ovr         (text) TF-IDF of words and characters, one LogisticRegressionCV per label,
                    train + validation, 0.5: the ten lines a text user writes first
  default           ``headstart train`` with its defaults: the lesson head trained with binary
                    cross-entropy on the cached features, thresholds chosen on validation
  linear            ``--head linear``: headstart's one-vs-rest probe (one C for all labels,
                    chosen on validation mean average precision), thresholds on validation
  threshold-rules   the default run's probabilities thresholded four ways, each chosen on
                    validation and scored on test: 0.5 for every label; one global threshold
                    (best validation micro-F1); each label's F1-optimal threshold whatever its
                    validation support; headstart's rule (the global one, or per label where
                    a label has at least 5 positive validation examples, whichever scores
                    better by 5-fold micro-F1 on validation)

Each row: micro-F1, macro-F1 and mean average precision on the test split, each with its 95%
percentile-bootstrap interval (1,000 resamples; headstart.core.multilabel), subset accuracy,
and wall seconds (feature extraction included: each recipe that runs the network starts from a
cold feature cache). Output: JSON lines, then ``bench/results/multilabel.json``.

  OMP_NUM_THREADS=2 python bench/bench_multilabel.py [--datasets mosaic,genres]
      [--recipes threshold-rules --name multilabel-thresholds]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from results import record  # noqa: E402

RECIPES = ("label-frequency", "probe-ovr", "tfidf-ovr", "default", "linear", "threshold-rules")
MIN_COUNT = 20


def mosaics(n: int = 1200, seed: int = 0):
    """(images uint8 (n, 32, 32), 0/1 labels (n, 10), split name per mosaic)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.images))
    thirds = np.array_split(order, 3)  # the digits each split's mosaics are made of
    names = np.array(["train"] * int(n * 0.64) + ["val"] * int(n * 0.16))
    names = np.concatenate([names, ["test"] * (n - len(names))])
    pools = {"train": thirds[0], "val": thirds[1], "test": thirds[2]}
    images = np.zeros((n, 32, 32), np.uint8)
    labels = np.zeros((n, 10), np.int64)
    for i, split in enumerate(names):
        for t in range(4):
            if rng.random() < 0.25:
                continue
            k = rng.choice(pools[split])
            tile = np.kron(digits.images[k] / 16.0, np.ones((2, 2)))  # 8x8 -> 16x16
            y, x = divmod(t, 2)
            images[i, 16 * y : 16 * y + 16, 16 * x : 16 * x + 16] = (tile * 255).astype(np.uint8)
            labels[i, digits.target[k]] = 1
    return images, labels, names


def mosaic_splits():
    from headstart.core.splits import Splits
    from headstart.modalities.image.data.sources import from_arrays

    images, labels, names = mosaics()
    whole = from_arrays(images, labels).train
    sets = {s: whole.subset(np.flatnonzero(names == s), s) for s in ("train", "val", "test")}
    return Splits(**sets, method={"seed": 0, "layout": "in-memory", "val": "given"}), "image"


def genre_texts():
    import importlib.util

    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None:
        raise SystemExit("pip install --no-deps bokeh-sampledata==2024.2 first (see the docstring)")
    db = Path(list(spec.submodule_search_locations)[0]) / "_data" / "movies.db"
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT t.Consensus, o.Genre FROM omdb o JOIN tomatoes t ON o.ID = t.ID "
        "WHERE t.Consensus IS NOT NULL"
    ).fetchall()
    con.close()
    texts, labels = [], []
    for text, genre in rows:
        genres = [g.strip() for g in (genre or "").split(",") if g.strip() not in ("", "N/A")]
        text = (text or "").strip()
        if text and text not in ("N/A", "No consensus yet.") and genres:
            texts.append(text)
            labels.append(genres)
    counts = Counter(g for gs in labels for g in gs)
    labels = [[g for g in gs if counts[g] >= MIN_COUNT] for gs in labels]
    keep = [i for i, gs in enumerate(labels) if gs]
    return [texts[i] for i in keep], [labels[i] for i in keep]


def genre_splits():
    from headstart.core.splits import make_splits
    from headstart.modalities.text.sources import from_texts

    texts, labels = genre_texts()
    return make_splits(from_texts(texts, labels), test_split=0.2, seed=0), "text"


@contextlib.contextmanager
def cold_cache():
    from headstart.core.cache import clear_memory_cache

    old = os.environ.get("HEADSTART_CACHE_DIR")
    with tempfile.TemporaryDirectory() as d:
        os.environ["HEADSTART_CACHE_DIR"] = d
        clear_memory_cache()
        try:
            yield
        finally:
            clear_memory_cache()
            if old is None:
                os.environ.pop("HEADSTART_CACHE_DIR", None)
            else:
                os.environ["HEADSTART_CACHE_DIR"] = old


def scores(name: str, splits, proba, thresholds, seconds: float, **extra) -> dict:
    from headstart.core.multilabel import multilabel_metrics

    y = splits.test.labels
    m = multilabel_metrics(y, proba, thresholds, list(splits.class_names))
    keep = ("micro_f1", "macro_f1", "mean_average_precision", "subset_accuracy", "hamming_loss")
    row = {"recipe": name, "n_test": int(len(y)), "seconds": round(seconds, 1)}
    for k in keep:
        row[k] = round(m[k], 4)
        row[f"{k}_ci95"] = [round(v, 4) for v in m[f"{k}_ci95"]]
    return {**row, **extra}


def one_vs_rest_cv(x, y, x_test):
    """One LogisticRegressionCV per label (scikit-learn's OneVsRestClassifier), 0.5."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.multiclass import OneVsRestClassifier

    model = OneVsRestClassifier(LogisticRegressionCV(Cs=10, cv=5, max_iter=3000)).fit(x, y)
    return model.predict_proba(x_test)


def run_recipe(recipe: str, splits, kind: str) -> dict | None:
    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.core.evaluate import run_probabilities
    from headstart.core.multilabel import choose_thresholds, frequency_baseline

    k = len(splits.class_names)
    start = time.perf_counter()
    if recipe == "label-frequency":
        val = frequency_baseline(splits.train.labels, len(splits.val))
        thresholds, _ = choose_thresholds(splits.val.labels, val)
        proba = frequency_baseline(splits.train.labels, len(splits.test))
        return scores(recipe, splits, proba, thresholds, time.perf_counter() - start)
    if recipe == "tfidf-ovr":
        if kind != "text":
            return None
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = splits.train.texts + splits.val.texts
        vecs = [
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=2),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        ]
        x = hstack([v.fit_transform(texts) for v in vecs]).tocsr()
        x_test = hstack([v.transform(splits.test.texts) for v in vecs]).tocsr()
        y = np.concatenate([splits.train.labels, splits.val.labels])
        proba = one_vs_rest_cv(x, y, x_test)
        return scores(recipe, splits, proba, np.full(k, 0.5), time.perf_counter() - start)
    if recipe == "probe-ovr":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from headstart.core.extractors import extractor_for
        from headstart.core.modality import modality

        with cold_cache():
            config = modality(kind).configure(TrainConfig())  # the default network
            loaded = modality(kind).load_encoder(config.backbone, pooling=config.pooling)
            ex = extractor_for(loaded, progress=False)
            feats = {n: ex.extract(s).features for n, s in splits.items().items()}
        x = np.concatenate([feats["train"], feats["val"]])
        y = np.concatenate([splits.train.labels, splits.val.labels])
        scaler = make_pipeline(StandardScaler()).fit(x)
        proba = one_vs_rest_cv(scaler.transform(x), y, scaler.transform(feats["test"]))
        return scores(recipe, splits, proba, np.full(k, 0.5), time.perf_counter() - start)
    if recipe == "threshold-rules":
        return threshold_rules(splits)
    config = TrainConfig(head="linear" if recipe == "linear" else "lesson")
    with cold_cache():
        run = train(config, data=splits, save=False, progress=False, say=lambda *_: None)
        proba, valid, _ = run_probabilities(run, splits.test)
    assert valid.all()
    return scores(
        recipe,
        splits,
        proba,
        run.thresholds,
        time.perf_counter() - start,
        backbone=run.backbone_name,
        val_micro_f1=round(run.metrics["val_micro_f1"], 4),
    )


def threshold_rules(splits) -> dict:
    """The default run's test scores under four threshold rules (see the docstring)."""
    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.core.evaluate import run_probabilities
    from headstart.core.multilabel import (
        GRID,
        best_f1_threshold,
        choose_thresholds,
        multilabel_metrics,
    )

    start = time.perf_counter()
    with cold_cache():
        run = train(TrainConfig(), data=splits, save=False, progress=False, say=lambda *_: None)
        val = run_probabilities(run, splits.val)[0]
        test = run_probabilities(run, splits.test)[0]
    y_val, y_test = splits.val.labels, splits.test.labels
    k = y_val.shape[1]
    names = [str(j) for j in range(k)]

    def micro(t):
        return multilabel_metrics(y_val, val, t, names, n_boot=0, curves=False)["micro_f1"]

    global_t = max(GRID, key=lambda t: micro(np.full(k, t)))
    rules = {
        "0.5": np.full(k, 0.5),
        "global": np.full(k, global_t),
        "per-label": np.array([best_f1_threshold(y_val[:, j], val[:, j])[0] for j in range(k)]),
        "headstart": choose_thresholds(y_val, val)[0],
    }
    out = {"recipe": "threshold-rules", "seconds": round(time.perf_counter() - start, 1)}
    for name, t in rules.items():
        m = multilabel_metrics(y_test, test, t, list(splits.class_names))
        out[name] = {
            key: round(m[key], 4) for key in ("micro_f1", "macro_f1", "subset_accuracy")
        } | {"micro_f1_ci95": [round(v, 4) for v in m["micro_f1_ci95"]]}
    out["val_positives_min"] = int(y_val.sum(axis=0).min())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="mosaic,genres")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--name", default=None, help="bench/results/NAME.json (multilabel)")
    args = parser.parse_args()
    loaders = {"mosaic": mosaic_splits, "genres": genre_splits}
    out = []
    for name in args.datasets.split(","):
        splits, kind = loaders[name]()
        labels = splits.train.labels
        described = {
            "dataset": name,
            "modality": kind,
            "labels": list(splits.class_names),
            "n": {n: len(s) for n, s in splits.items().items()},
            "label_cardinality": round(float(labels.sum(1).mean()), 3),
        }
        print(json.dumps(described), flush=True)
        rows = []
        for recipe in args.recipes.split(","):
            row = run_recipe(recipe, splits, kind)
            if row is not None:
                rows.append(row)
                print(json.dumps(row), flush=True)
        out.append({**described, "rows": rows})
    record(__file__, out, name=args.name)


if __name__ == "__main__":
    main()
