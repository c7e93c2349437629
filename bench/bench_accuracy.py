"""Accuracy of each recipe on real data, with 95% intervals, beside the baselines.

For each data set that ships with an installed package (scikit-learn's digits, scikit-image's
``lfw_subset``) and each input size, on one seeded stratified split (60% train, 20% validation,
20% test), with EfficientNet-Lite0's real ImageNet weights:

  majority       always the largest training class
  logreg probe   scikit-learn LogisticRegressionCV (C tuned by 5-fold CV) on the same cached
                 pooled features, standardised: the strong linear baseline
  frozen         the lesson's head on the frozen backbone (headstart's default)
  frozen-linear  a single linear layer on the frozen backbone
  ft-cached-K    the lesson's second stage: continue the frozen run with --unfreeze 1 on the
                 cached prefix with K augmented views per image (K = 1, 4, 8)
  ft-on-the-fly  the same continuation with fresh augmentation every step (whole network)

Test accuracy with a 95% Clopper-Pearson interval, and seconds, per recipe. Defaults in headstart
are chosen from these numbers (see BENCHMARKS.md).

    python bench/bench_accuracy.py --datasets digits,lfw --sizes 96,128 --ft-epochs 8

``--recipes frozen`` runs only the recipes on the frozen backbone (majority, probe, both
heads), e.g. to re-measure a change to the head.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from results import record


def _ci_row(name: str, y: np.ndarray, pred: np.ndarray, seconds: float, n_classes: int) -> dict:
    from headstart.core.statistics import accuracy_interval

    ci = accuracy_interval(int(np.sum(y == pred)), len(y))  # Clopper-Pearson
    return {
        "recipe": name,
        "test_accuracy": round(float(np.mean(y == pred)), 4),
        "ci95": [round(v, 4) for v in ci],
        "seconds": round(seconds, 1),
    }


def _test_predictions(run, splits) -> np.ndarray:
    from headstart.core.evaluate import run_probabilities

    proba, valid, _ = run_probabilities(run, splits.test)
    assert valid.all()
    return proba.argmax(1)


RECIPES = ("all", "frozen")


def bench_dataset(
    name: str, size: int, ft_epochs: int, out: Path, flip: bool = True, recipes: str = "all"
) -> list[dict]:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.core.data import load_data
    from headstart.modalities.image.backbones import create_backbone
    from headstart.modalities.image.features import FeatureExtractor

    splits = load_data(f"demo:{name}", val_split=0.2, test_split=0.2, seed=0)
    y_test = splits.test.labels
    n_classes = len(splits.class_names)
    rows = []
    majority = int(np.argmax(splits.train.class_counts()))
    rows.append(_ci_row("majority", y_test, np.full_like(y_test, majority), 0.0, n_classes))

    base = {
        "data": f"demo:{name}",
        "image_size": size,
        "val_split": 0.2,
        "test_split": 0.2,
        "seed": 0,
    }
    t = time.perf_counter()
    frozen = train(
        TrainConfig(**base),
        data=splits,
        out=out / f"{name}{size}-frozen",
        progress=False,
        report=False,
    )
    rows.append(
        _ci_row(
            "frozen (lesson head)",
            y_test,
            _test_predictions(frozen, splits),
            time.perf_counter() - t,
            n_classes,
        )
    )

    lb = create_backbone("tf_efficientnet_lite0", image_size=size)
    ex = FeatureExtractor(lb, progress=False)
    t = time.perf_counter()
    xtr = np.concatenate([ex.extract(splits.train).features, ex.extract(splits.val).features])
    ytr = np.concatenate([splits.train.labels, splits.val.labels])
    probe = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=10, cv=5, max_iter=3000))
    probe.fit(xtr, ytr)
    pred = probe.predict(ex.extract(splits.test).features)
    rows.append(_ci_row("logreg probe (tuned C)", y_test, pred, time.perf_counter() - t, n_classes))

    t = time.perf_counter()
    lin = train(TrainConfig(**base, head="linear"), data=splits, save=False, progress=False)
    rows.append(
        _ci_row(
            "frozen (linear head)",
            y_test,
            _test_predictions(lin, splits),
            time.perf_counter() - t,
            n_classes,
        )
    )

    if recipes == "frozen":
        return _report(rows, name, size, y_test)
    ft = {
        **base,
        "flip": flip,
        "strategy": "fine-tune",
        "unfreeze": 1,
        "epochs": ft_epochs,
        "parent": str(out / f"{name}{size}-frozen"),
    }
    for k in (1, 4, 8):
        t = time.perf_counter()
        run = train(
            TrainConfig(**ft, augment="cached", views=k), data=splits, save=False, progress=False
        )
        rows.append(
            _ci_row(
                f"ft-cached-{k}",
                y_test,
                _test_predictions(run, splits),
                time.perf_counter() - t,
                n_classes,
            )
        )
    t = time.perf_counter()
    run = train(TrainConfig(**ft, augment="on-the-fly"), data=splits, save=False, progress=False)
    rows.append(
        _ci_row(
            "ft-on-the-fly",
            y_test,
            _test_predictions(run, splits),
            time.perf_counter() - t,
            n_classes,
        )
    )
    return _report(rows, name, size, y_test)


def _report(rows: list[dict], name: str, size: int, y_test: np.ndarray) -> list[dict]:
    for r in rows:
        r.update(dataset=name, image_size=size, n_test=int(len(y_test)))
        print(json.dumps(r), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", default="digits,lfw")
    ap.add_argument("--sizes", default="96,128")
    ap.add_argument("--ft-epochs", type=int, default=8)
    ap.add_argument("--no-flip", action="store_true", help="augment without horizontal flips")
    ap.add_argument(
        "--recipes", choices=RECIPES, default="all", help="frozen: only the frozen-backbone ones"
    )
    args = ap.parse_args()
    os.environ.setdefault("HEADSTART_CACHE_DIR", tempfile.mkdtemp(prefix="hs-acc-cache-"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            for size in map(int, args.sizes.split(",")):
                rows += bench_dataset(
                    name, size, args.ft_epochs, Path(tmp), not args.no_flip, args.recipes
                )
    result = {"backbone": "tf_efficientnet_lite0 (ImageNet, packaged weights)", "rows": rows}
    print(json.dumps(result, indent=2))
    record(__file__, result, name="accuracy" if args.recipes == "all" else "accuracy-frozen")


if __name__ == "__main__":
    main()
