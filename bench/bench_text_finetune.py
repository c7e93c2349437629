"""Fine-tuning a text encoder as transformers are fine-tuned (issue 26, section 3): which
encoder learning rate and how many epochs, chosen on validation, for the text recipe's
defaults (``headstart.modalities.text.modality.TEXT_FINETUNING``).

Data: the drug reviews of ``bench_text.py`` (the given test file is the test split; 20% of
the training file, stratified and seeded, is the validation split). Encoder: all-MiniLM-L6-v2
(the offline default). Every fine-tuning run continues the default frozen run (the lesson's
second stage: ``headstart finetune RUN --unfreeze 2`` or ``--strategy full``, what ``--strategy
auto`` climbs to) with the text recipe: AdamW, weight decay 0.01 except biases and LayerNorm,
linear warm-up over 10% of the planned steps then linear decay to 0, batch 32, the head at
--lr 1e-3, early stopping on validation accuracy with the best epoch's weights. (Trained
directly from a random lesson head, ``--direct``, a few epochs do not train the head: see
BENCHMARKS.md.)

Rows:

  majority, tfidf, default   as in bench_text.py (TF-IDF + LogisticRegressionCV fit on
                             train + validation; the default frozen encoder + lesson head)
  unfreeze2 / full           ``--strategy fine-tune --unfreeze 2`` (the cached prefix) and
                             ``--strategy full``, for every encoder learning rate in --lrs and
                             number of epochs in --epochs
  *-direct                   with ``--direct``: the same, trained from a random head

Each row: validation accuracy (of the best epoch, which chose it), test accuracy with its 95%
Clopper-Pearson interval, macro F1, and wall seconds of its own stage (the frozen run's are
the default row's; prefix extraction included where it was computed, and later runs read the
cached prefix, and say so). The summary picks, per strategy and for both together (mean
validation accuracy of the two), the learning rate and epochs with the best validation
accuracy, and reports their test accuracy beside TF-IDF's.

    OMP_NUM_THREADS=2 python bench/bench_text_finetune.py
    python bench/bench_text_finetune.py --strategies full --lrs 5e-5 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_text import drug_reviews, row, run_recipes
from results import record

STRATEGIES = {
    "unfreeze2": {"strategy": "fine-tune", "unfreeze": 2},
    "full": {"strategy": "full"},
}


def tuned(name: str, settings: dict, splits, cache: Path, parent: Path | None) -> dict:
    """Train one recipe on ``splits`` (continuing ``parent``) and score it on the test texts."""
    from headstart.api import train
    from headstart.core.cache import clear_memory_cache
    from headstart.core.config import TrainConfig

    os.environ["HEADSTART_CACHE_DIR"] = str(cache)
    clear_memory_cache()
    t = time.perf_counter()
    if parent is not None:
        settings = {**settings, "parent": str(parent)}
    run = train(TrainConfig(**settings), data=splits, save=False, progress=False, say=print)
    seconds = time.perf_counter() - t
    pred = run.predict_proba(splits.test.texts).argmax(1)
    best = run.history.epochs[run.history.best_epoch - 1]
    m = run.metrics
    fitted = m["fit_recipe"]
    return row(
        name,
        splits.test.labels,
        pred,
        len(splits.class_names),
        seconds,
        optimizer=fitted["optimizer"],
        backbone_lr=fitted["backbone_lr"],
        schedule=fitted["schedule"],
        warmup_steps=fitted["warmup_steps"],
        planned_steps=fitted["planned_steps"],
        weight_decay=fitted["weight_decay"],
        continues="default" if parent is not None else None,
        epochs=fitted["epochs"],
        epochs_run=m["epochs_run"],
        best_epoch=m["best_epoch"],
        val_accuracy=round(best["val_accuracy"], 4),
        val_loss=round(best["val_loss"], 4),
        val_by_epoch=[round(r["val_accuracy"], 4) for r in run.history.epochs],
        training_seconds=m["timing"]["training_seconds"],
        seconds_per_epoch=m["timing"]["seconds_per_epoch"],
        extraction_seconds=m["timing"]["feature_extraction_seconds"],
        prefix=m["feature_cache"].get("mode"),
        prefix_hits=sorted(set(m["feature_cache"].get("hits", []))),
    )


def frozen(splits, tmp: Path, emit) -> Path:
    """The default frozen run (saved: the parent every fine-tuning continues); its row is
    emitted when ``emit`` is given."""
    from bench_text import scored

    from headstart.api import train
    from headstart.core.cache import clear_memory_cache
    from headstart.core.config import TrainConfig

    os.environ["HEADSTART_CACHE_DIR"] = str(tmp / "cache-default")
    clear_memory_cache()
    t = time.perf_counter()
    out = tmp / "frozen"
    run = train(TrainConfig(), data=splits, out=out, progress=False, say=print)
    if emit is not None:
        emit(scored("default", run, splits, time.perf_counter() - t))
    return out


def key(r: dict) -> tuple:
    """What a row measured: a baseline by its name, a fine-tuning by rate and epochs too."""
    if "optimizer" not in r:
        return (r["recipe"],)
    return (r["recipe"], r["backbone_lr"], r["epochs"])


def choose(rows: list[dict], names: list[str]) -> dict | None:
    """The (learning rate, epochs) with the best mean validation accuracy over the strategies
    ``names`` (then the lower mean validation loss, then fewer epochs)."""
    grid: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["recipe"] in names:
            grid.setdefault((r["backbone_lr"], r["epochs"]), []).append(r)
    whole = {k: v for k, v in grid.items() if len(v) == len(names)}
    if not whole:
        return None
    (lr, epochs), chosen = max(
        whole.items(),
        key=lambda kv: (
            np.mean([r["val_accuracy"] for r in kv[1]]),
            -np.mean([r["val_loss"] for r in kv[1]]),
            -kv[0][1],
        ),
    )
    return {
        "strategies": names,
        "backbone_lr": lr,
        "epochs": epochs,
        "mean_val_accuracy": round(float(np.mean([r["val_accuracy"] for r in chosen])), 4),
        "rows": {
            r["recipe"]: {k: r[k] for k in ("val_accuracy", "test_accuracy", "ci95", "seconds")}
            for r in chosen
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--lrs", default="2e-5,5e-5,1e-4", help="encoder learning rates")
    ap.add_argument("--epochs", default="2,3,5", help="epochs (the schedule's length)")
    ap.add_argument("--baselines", default="majority,tfidf,default")
    ap.add_argument("--direct", action="store_true", help="train from a random head instead")
    ap.add_argument(
        "--scratch",
        default="bench/out/text-finetune.jsonl",
        help="rows as they finish; rows already there (same recipe, rate, epochs) are reused",
    )
    args = ap.parse_args()
    lrs = [float(x) for x in args.lrs.split(",") if x]
    epochs = [int(x) for x in args.epochs.split(",") if x]
    names = [s for s in args.strategies.split(",") if s]
    baselines = [b for b in args.baselines.split(",") if b]

    from headstart.core.data import load_data
    from headstart.modalities.text.encoder import load_text_encoder

    load_text_encoder("minilm")  # one-off import and loading costs, outside every timing
    scratch = Path(args.scratch)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if scratch.is_file():
        rows = [json.loads(line) for line in scratch.read_text().splitlines() if line.strip()]
    done = {key(r) for r in rows}
    reused = len(rows)

    def emit(r: dict) -> None:
        rows.append(r)
        with open(scratch, "a", encoding="utf-8") as f:
            f.write(json.dumps(r) + "\n")
        print(json.dumps(r), flush=True)

    with tempfile.TemporaryDirectory(prefix="hs-textft-") as tmp:
        tmp = Path(tmp)
        splits = load_data(drug_reviews(tmp), seed=0)
        print(json.dumps({"n": {k: len(v) for k, v in splits.items().items()}}), flush=True)
        plain = [b for b in baselines if b in ("majority", "tfidf") and (b,) not in done]
        run_recipes(plain, splits, tmp, argparse.Namespace(), emit)
        parent = None
        if names and not args.direct or "default" in baselines:
            parent = frozen(splits, tmp, emit if ("default",) not in done else None)
        if args.direct:
            parent = None
        for name in names:
            for lr in lrs:
                for n in epochs:
                    settings = {**STRATEGIES[name], "backbone_lr": lr, "epochs": n}
                    label = f"{name}-direct" if args.direct else name
                    if (label, lr, n) in done:
                        continue
                    emit(tuned(label, settings, splits, tmp / f"cache-{name}", parent))
    kept = rows  # every row the scratch file holds: this script, these data
    measured = [n for n in STRATEGIES if any(r["recipe"] == n for r in kept)]
    chosen = {name: choose(kept, [name]) for name in measured}
    if len(measured) > 1:
        chosen["together"] = choose(kept, measured)
    note = (
        f"{reused} row(s) reused from {scratch} (measured by earlier starts of this script, "
        "each with its own command line)"
        if reused
        else None
    )
    record(
        __file__, {"rows": kept, "chosen_on_validation": chosen}, name="text-finetune", note=note
    )
    print("\n| recipe | encoder lr | epochs (best) | val | test [95% CI] | macro F1 | s |")
    print("|---|---|---|---|---|---|---|")
    for r in kept:
        lo, hi = r["ci95"]
        tuned_row = "optimizer" in r
        lr = f"{r['backbone_lr']:g}" if tuned_row else ""
        ep = f"{r['epochs']} ({r['best_epoch']})" if tuned_row else ""
        val = f"{100 * r['val_accuracy']:.1f}" if "val_accuracy" in r else ""
        print(
            f"| {r['recipe']} | {lr} | {ep} | {val} | {100 * r['test_accuracy']:.1f} "
            f"[{100 * lo:.1f}, {100 * hi:.1f}] | {r['macro_f1']:.3f} | {r['seconds']:.0f} |"
        )
    print(json.dumps(chosen, indent=2))


if __name__ == "__main__":
    main()
