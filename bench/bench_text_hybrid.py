"""Text (issue 26, a direction measured before it is built): one logistic regression on the
TF-IDF features *and* the frozen encoder's embeddings, against each alone and their blend.

headstart's text default blends two separately trained models' probabilities (the frozen
encoder + head, and the classic TF-IDF + logistic regression baseline, the weight chosen on
validation). This script asks whether fitting them *jointly* does better: one L-BFGS logistic
regression on ``[TF-IDF, alpha * embedding]`` (the run's TF-IDF features, word 1-2 and
character 2-5 grams, beside all-MiniLM-L6-v2's mean-pooled, normalised embedding of each
text, long texts read whole in windows as ``train`` reads them), ``alpha`` and ``C`` chosen on
validation (ties by log loss), as headstart chooses everything. Rows, all on the same test
texts with a 95% Clopper-Pearson interval, and the paired comparison (Newcombe's interval,
McNemar's p) of each against the TF-IDF baseline:

  majority                 the training split's largest class
  tfidf                    headstart's classic baseline (``TfidfBaseline``)
  probe                    logistic regression on the embeddings alone (C on validation)
  blend(tfidf, probe)      their probabilities averaged, the weight chosen on validation
  joint                    one logistic regression on both, alpha and C on validation
  joint, standardised      the same with each embedding dimension standardised on train

Data: ``drugs`` (the drug reviews, ``bench_text.py``'s split), ``speeches`` (189 long
speeches, ``../shared/data``, the tool's carved split) and ``drugs100`` (five draws of 100
reviews, ``bench_text.py --subsample``'s draws; the mean over draws).

    python bench/bench_text_hybrid.py [--datasets drugs,speeches,drugs100]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_text import drug_reviews, subsets
from bench_text_baseline import SPEECHES
from results import record

ALPHAS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CS = tuple(float(c) for c in np.logspace(-2, 5, 15))


def fit_on_validation(x: list, y: list, n_classes: int):
    """(validation accuracy, -log loss), C and the model with the best of them over ``CS``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    best = None
    for c in CS:
        model = LogisticRegression(C=c, max_iter=5000).fit(x[0], y[0])
        p = model.predict_proba(x[1])
        key = (float(np.mean(p.argmax(1) == y[1])), -log_loss(y[1], p, labels=range(n_classes)))
        if best is None or key > best[0]:
            best = (key, c, model)
    return best


def one_set(splits, extractor) -> dict:
    """Every row on one data set's splits."""
    from scipy.sparse import csr_matrix, hstack

    from headstart.core.classic import choose_weight
    from headstart.core.statistics import accuracy_interval, paired_comparison
    from headstart.modalities.text.classic import TfidfBaseline

    parts = (splits.train, splits.val, splits.test)
    k = len(splits.class_names)
    y = [s.labels for s in parts]
    start = time.perf_counter()
    tfidf = TfidfBaseline.fit(splits.train, splits.val, k)
    t = [tfidf.features(s.texts) for s in parts]
    e = [extractor.extract(s).features for s in parts]
    seconds = {"tfidf_and_embeddings": round(time.perf_counter() - start, 1)}
    preds: dict[str, np.ndarray] = {}
    chosen: dict[str, dict] = {}
    majority = int(np.argmax(np.bincount(y[0], minlength=k)))
    preds["majority"] = np.full_like(y[2], majority)
    preds["tfidf"] = tfidf.predict_proba(splits.test).argmax(1)
    key, c, probe = fit_on_validation(e, y, k)
    preds["probe"] = probe.predict(e[2])
    chosen["probe"] = {"C": c, "val_accuracy": key[0]}
    w, _ = choose_weight(probe.predict_proba(e[1]), tfidf.predict_proba(splits.val), y[1])
    mix = (1 - w) * probe.predict_proba(e[2]) + w * tfidf.predict_proba(splits.test)
    preds["blend(tfidf, probe)"] = mix.argmax(1)
    chosen["blend(tfidf, probe)"] = {"weight": w}
    mean, sd = e[0].mean(0), e[0].std(0) + 1e-6
    for name, scale in (("joint", None), ("joint, standardised", (mean, sd))):
        start = time.perf_counter()
        best = None
        for alpha in ALPHAS:
            emb = [(x - scale[0]) / scale[1] if scale else x for x in e]
            x = [hstack([a, csr_matrix(alpha * b)]).tocsr() for a, b in zip(t, emb)]
            key, c, model = fit_on_validation(x, y, k)
            if best is None or key > best[0]:
                best = (key, alpha, c, model.predict(x[2]))
        preds[name] = best[3]
        chosen[name] = {"alpha": best[1], "C": best[2], "val_accuracy": best[0][0]}
        seconds[name] = round(time.perf_counter() - start, 1)
    rows = []
    for name, pred in preds.items():
        right = int(np.sum(pred == y[2]))
        row = {
            "recipe": name,
            "test_accuracy": right / len(y[2]),
            "ci95": accuracy_interval(right, len(y[2])),
            **({"chosen": chosen[name]} if name in chosen else {}),
        }
        if name not in ("tfidf", "majority"):
            p = paired_comparison(y[2], pred, preds["tfidf"], other_name="TF-IDF")
            row["vs_tfidf"] = {
                "difference": p["accuracy_difference"],
                "ci95": p["accuracy_difference_ci95"],
                "mcnemar_p": p["mcnemar_p"],
            }
        rows.append(row)
    n = {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
    return {"n": n, "rows": rows, "seconds": seconds}


def main() -> None:
    from headstart.core.data import load_data
    from headstart.core.extractors import extractor_for
    from headstart.modalities.text.encoder import load_text_encoder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", default="drugs,speeches,drugs100")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hs-hybrid-"))
    os.environ["HEADSTART_CACHE_DIR"] = str(tmp / "cache")
    extractor = extractor_for(load_text_encoder("minilm"), progress=False)
    result = {"encoder": "sentence-transformers/all-MiniLM-L6-v2 (packaged)", "sets": {}}
    for name in args.datasets.split(","):
        if name == "drugs":
            out = one_set(load_data(str(drug_reviews(tmp)), seed=0), extractor)
        elif name == "speeches":
            out = one_set(load_data(str(SPEECHES), seed=0), extractor)
        elif name == "drugs100":
            draws = [
                one_set(load_data(str(path), seed=0), extractor)
                for _, path in subsets(drug_reviews(tmp), 100, 5, tmp)
            ]
            recipes = [r["recipe"] for r in draws[0]["rows"]]
            out = {
                "draws": draws,
                "mean_test_accuracy": {
                    r: float(np.mean([d["rows"][i]["test_accuracy"] for d in draws]))
                    for i, r in enumerate(recipes)
                },
            }
        else:
            raise SystemExit(f"unknown data set {name!r}")
        result["sets"][name] = out
        print(name, json.dumps(out, default=float)[:2000], flush=True)
    record(__file__, result)


if __name__ == "__main__":
    main()
