"""The fine-tuning continuation's defaults (LP-FT) and fine-tuning resolution, measured.

Linear probe then fine-tune (Kumar et al., ICLR 2022): a frozen run trains the head first (the
default recipe, saved), then the top stage continues from it on the cached prefix. Which
settings of the continuation pay, on real data no one tuned for, with the same split as
``bench_probe.py`` (stratified 60/20/20, seed 0) and EfficientNet-Lite0's packaged weights?

``--part lr``: the continuation (``--strategy fine-tune --unfreeze 1``) with backbone learning
rates 1e-5 (the tutorials'), 1e-4 and 1e-3, each with ``--schedule none`` and ``cosine``; the
prefix cache is warm after the first, so seconds are training only. Chosen on validation.

``--part resolution``: full fine-tuning (``--strategy full``, 5 epochs, backbone lr from
``--part lr``) of the same parent at 96, 160 and 224 px: what resolution from the data's native
size buys in time, and what it costs in accuracy.

    python bench/bench_lpft.py --datasets elpv,digits --part lr
    python bench/bench_lpft.py --datasets digits --part resolution --backbone-lr 1e-4
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_probe import BACKBONE, load_splits, machine, test_predictions
from results import record


def _row(name: str, run, splits, seconds: float, **extra) -> dict:
    from headstart.core.statistics import accuracy_interval

    pred = test_predictions(run, splits)
    y = splits.test.labels
    ci = accuracy_interval(int(np.sum(y == pred)), len(y))  # Clopper-Pearson
    return {
        "variant": name,
        "val_accuracy": round(run.metrics["val_accuracy"], 4),
        "test_accuracy": round(float(np.mean(pred == y)), 4),
        "ci95": [round(v, 4) for v in ci],
        "seconds": round(seconds, 1),
        "epochs_run": run.metrics["epochs_run"],
        "best_epoch": run.metrics["best_epoch"],
        **extra,
    }


def bench(name: str, part: str, tmp: Path, backbone_lr: float, emit) -> list[dict]:
    from headstart.api import train
    from headstart.core.config import TrainConfig

    splits = load_splits(name)
    parent_dir = tmp / f"{name}-parent"
    t = time.perf_counter()
    parent = train(TrainConfig(), data=splits, out=parent_dir, progress=False, report=False)
    rows = [_row("parent: frozen default", parent, splits, time.perf_counter() - t)]
    emit({**rows[-1], "dataset": name})
    if part == "lr":
        variants = [
            (
                f"top stage, backbone lr {lr:g}, schedule {sched}",
                {"backbone_lr": lr, "schedule": sched},
            )
            for lr in (1e-5, 1e-4, 1e-3)
            for sched in ("none", "cosine")
        ]
        base = {"strategy": "fine-tune", "unfreeze": 1}
    else:
        variants = [
            (f"full fine-tuning at {size} px", {"image_size": size}) for size in (96, 160, 224)
        ]
        base = {"strategy": "full", "epochs": 5, "backbone_lr": backbone_lr}
    for label, kw in variants:
        t = time.perf_counter()
        run = train(
            TrainConfig(**base, **kw, parent=str(parent_dir)),
            data=splits,
            save=False,
            progress=False,
        )
        rows.append(_row(label, run, splits, time.perf_counter() - t, settings=kw))
        emit({**rows[-1], "dataset": name})
    for r in rows:
        r["dataset"] = name
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", default="elpv,digits")
    ap.add_argument("--part", choices=("lr", "resolution"), default="lr")
    ap.add_argument("--backbone-lr", type=float, default=1e-4, help="for --part resolution")
    args = ap.parse_args()

    def emit(obj: dict) -> None:
        print(json.dumps(obj), flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="hs-lpft-") as tmp:
        os.environ.setdefault("HEADSTART_CACHE_DIR", str(Path(tmp) / "cache"))
        for name in args.datasets.split(","):
            rows += bench(name.strip(), args.part, Path(tmp), args.backbone_lr, emit)
    result = {"backbone": BACKBONE, "part": args.part, "device": machine()["device"], "rows": rows}
    print(json.dumps(result, indent=2))
    record(__file__, result, name=f"lpft-{args.part}")
    print()
    print("| data set | variant | val acc. | test acc. [95% CI] | seconds | epochs (best) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["ci95"]
        print(
            f"| {r['dataset']} | {r['variant']} | {100 * r['val_accuracy']:.1f} | "
            f"{100 * r['test_accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | "
            f"{r['seconds']:.0f} | {r['epochs_run']} ({r['best_epoch']}) |"
        )


if __name__ == "__main__":
    main()
