"""How good is the ranking of backbones before training?

On each real data set (scikit-learn digits, scikit-image lfw_subset) and on generated data,
rank the candidates -- the three real EfficientNet-Lite backbones at two input sizes each, plus a
random-weight Lite0 as a control that must come last -- by LogME, the probe and kNN on frozen
training features; then train every candidate with the frozen strategy and measure validation
accuracy. Report Kendall's tau between each score and the achieved accuracy, where the control
landed, and the time of ranking against the time of training every candidate.

    python bench/bench_ranking.py --datasets digits,lfw,generated
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import record
from scipy.stats import kendalltau

CANDIDATES = [
    "tf_efficientnet_lite0@96",
    "tf_efficientnet_lite0@160",
    "tf_efficientnet_lite1@96",
    "tf_efficientnet_lite1@160",
    "tf_efficientnet_lite2@96",
    "tf_efficientnet_lite2@160",
    "tf_efficientnet_lite0@96:random",
]


def _data(name: str):
    from headstart import from_arrays
    from headstart.core.data import load_data

    if name == "generated":
        sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
        from conftest import make_images

        images, labels = make_images(60, size=40, n_classes=3, seed=0)
        return load_data(from_arrays(images, labels), val_split=0.3, seed=0)
    return load_data(f"demo:{name}", val_split=0.3, seed=0)


def _control_rank(ranking: list[dict], score: str) -> int:
    """Where the random-weight control lands by ``score`` (len(ranking) = last, as it should)."""
    control = next(r for r in ranking if r["name"].endswith(":random"))
    return 1 + sum(r[score] > control[score] for r in ranking)


def bench(name: str) -> dict:
    from headstart.api import train
    from headstart.core.advise import rank_backbones
    from headstart.core.cache import clear_memory_cache
    from headstart.core.config import TrainConfig

    os.environ["HEADSTART_CACHE_DIR"] = tempfile.mkdtemp(prefix="hs-rank-")
    clear_memory_cache()
    splits = _data(name)
    start = time.perf_counter()
    ranking = rank_backbones(splits, CANDIDATES)
    rank_seconds = time.perf_counter() - start
    trained = {}
    start = time.perf_counter()
    for r in ranking:
        base, _, size = r["name"].partition("@")
        size, _, random = size.partition(":")
        cfg = TrainConfig(
            backbone=base, image_size=int(size), weights="none" if random else "imagenet"
        )
        run = train(cfg, data=splits, save=False, progress=False)
        trained[r["name"]] = run.metrics["val_accuracy"]
    # training reused the features ranking computed; a user training every candidate without
    # headstart's ranking would pay the extraction too: count it in
    train_seconds = time.perf_counter() - start + sum(r["feature_seconds"] for r in ranking)
    acc = np.array([trained[r["name"]] for r in ranking])
    out = {
        "dataset": name,
        "n_train": len(splits.train),
        "n_val": len(splits.val),
        "rank_seconds": round(rank_seconds, 1),
        "train_every_candidate_seconds": round(train_seconds, 1),
        "time_saved_x": round(train_seconds / rank_seconds, 1),
        "control_rank": {k: _control_rank(ranking, k) for k in ("logme", "probe", "knn")},
        "rows": [
            {
                **{k: r[k] for k in ("name", "logme", "probe", "knn", "feature_seconds")},
                "val_accuracy": trained[r["name"]],
            }
            for r in ranking
        ],
    }
    for k in ("logme", "probe", "knn"):
        tau, _ = kendalltau([r[k] for r in ranking], acc)
        out[f"kendall_tau_{k}"] = round(float(tau), 3)
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", default="digits,lfw,generated")
    args = ap.parse_args()
    results = [bench(n) for n in args.datasets.split(",")]
    print(json.dumps(results, indent=2))
    record(__file__, results)


if __name__ == "__main__":
    main()
