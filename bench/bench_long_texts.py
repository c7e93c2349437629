"""Long texts (issue 26, section 2): how a text longer than the encoder's window is read.

For each data set, the default frozen run (all-MiniLM-L6-v2, 256 tokens, the lesson head) and
the same with ``--head linear``, under each ``--long-texts`` mode:

  truncate     the first 254 tokens (what headstart did before)
  window       the whole text in windows of 256 tokens overlapping by half, embeddings averaged
  window-max   the same windows, element-wise maximum of their embeddings
  head-tail    one window of the first 64 and last 190 tokens (Sun et al. 2019's 128 + 382 of
               510, scaled to the window)

beside TF-IDF (word 1-2 grams, sublinear tf, min_df 2) + logistic regression with C chosen on
the validation split (fit on train), on the same split. Each row: validation accuracy (what
chooses the default), test accuracy with a 95% Clopper-Pearson interval, macro F1, seconds
(the lesson row: extraction from a cold cache plus training; the linear row reuses the
features, so its seconds are training only), and how the texts were read (texts longer than
the window, windows, tokens left unread).

Data: ``--speeches`` (default ``../shared/data/convention_speeches_2012.csv``, 189 speeches,
median about 680 tokens: the tool's own carved split, seed 0) and the drug reviews of
``bench_text.py`` (its given test file; 20% of its training file for validation).

    python bench/bench_long_texts.py
    python bench/bench_long_texts.py --data speeches --modes truncate,window
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_text import drug_reviews, row
from results import record

MODES = ("truncate", "window", "window-max", "head-tail")
SPEECHES = Path(__file__).resolve().parents[2] / "shared" / "data" / "convention_speeches_2012.csv"


def tfidf_row(splits, seconds_from: float | None = None) -> dict:
    """TF-IDF + logistic regression, C chosen on the validation split, fit on train."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    t = time.perf_counter()
    best = None
    for c in np.logspace(-2, 3, 11):
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
            LogisticRegression(C=c, max_iter=5000),
        )
        model.fit(splits.train.texts, splits.train.labels)
        val = float(np.mean(model.predict(splits.val.texts) == splits.val.labels))
        if best is None or val > best[0]:
            best = (val, c, model)
    val, c, model = best
    pred = model.predict(splits.test.texts)
    return row(
        "tfidf",
        splits.test.labels,
        pred,
        len(splits.class_names),
        time.perf_counter() - t,
        val_accuracy=round(val, 4),
        C=round(float(c), 4),
    )


def mode_rows(splits, mode: str, cache: Path) -> list[dict]:
    from headstart.api import train
    from headstart.core.cache import clear_memory_cache
    from headstart.core.config import TrainConfig
    from headstart.core.extractors import extractor_for
    from headstart.core.model import backbone_for

    os.environ["HEADSTART_CACHE_DIR"] = str(cache / mode)
    clear_memory_cache()
    out = []
    for head in ("lesson", "linear"):
        t = time.perf_counter()
        config = TrainConfig(long_texts=mode, head=head)
        run = train(config, data=splits, save=False, progress=False, say=lambda *_: None)
        seconds = time.perf_counter() - t
        pred = run.predict_proba(splits.test.texts).argmax(1)
        fc = run.metrics["feature_cache"]
        ex = extractor_for(backbone_for(run.config), progress=False)  # the run's, cached
        read = {k: ex.extract(v).extra.get("long_texts") for k, v in splits.items().items()}
        out.append(
            row(
                f"{mode} {head}",
                splits.test.labels,
                pred,
                len(splits.class_names),
                seconds,
                mode=mode,
                head=head,
                val_accuracy=round(run.metrics["val_accuracy"], 4),
                extraction_seconds=fc["extraction_seconds"],
                cache=sorted(set(fc["hits"])),
                read=read,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="speeches,drugreviews")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--speeches", default=str(SPEECHES))
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]

    from headstart.core.data import load_data
    from headstart.modalities.text.encoder import load_text_encoder

    load_text_encoder("minilm")  # one-off import and loading costs, outside every timing
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="hs-long-") as tmp:
        tmp = Path(tmp)
        for name in args.data.split(","):
            path = Path(args.speeches) if name == "speeches" else drug_reviews(tmp)
            splits = load_data(path, seed=0)
            head = {
                "data": name,
                "n": {k: len(v) for k, v in splits.items().items()},
                "classes": list(splits.class_names),
                "test_counts": splits.test.class_counts().tolist(),
            }
            print(json.dumps(head), flush=True)
            rows = [tfidf_row(splits)]
            print(json.dumps(rows[-1]), flush=True)
            for mode in modes:
                for r in mode_rows(splits, mode, tmp / f"cache-{name}"):
                    rows.append(r)
                    print(json.dumps(r), flush=True)
            results[name] = {**head, "rows": rows}
    record(__file__, results, name="long_texts")
    for name, res in results.items():
        print(f"\n{name}: {res['n']}")
        print(
            "| recipe | val accuracy | test accuracy [95% CI] | macro F1 | seconds |\n"
            "|---|---|---|---|---|"
        )
        for r in res["rows"]:
            lo, hi = r["ci95"]
            print(
                f"| {r['recipe']} | {100 * r['val_accuracy']:.1f}% | "
                f"{100 * r['test_accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] | "
                f"{r['macro_f1']:.3f} | {r['seconds']:.1f} |"
            )


if __name__ == "__main__":
    main()
