"""The lesson head's BatchNorm momentum on small data: test accuracy per momentum.

Two small real data sets from scikit-learn's digits (classes 0-3), EfficientNet-Lite0 with its
packaged ImageNet weights, the default recipe otherwise (frozen backbone, lesson head, early
stopping with patience 5):

  arrays   65 images a class as an in-memory array at 96 px, three seeds (a 15% test split
           is carved by default)
  lesson   the lesson's layout: train_images.npy (50 a class) and test_images.npy (15 a class,
           used as validation) at 64 px, default input size; a 15% test split from train

Each momentum is PyTorch's convention (the weight of the new batch): 0.01 is Keras' 0.99,
0.1 is PyTorch's default (Keras' 0.9), "none" a cumulative average.

    python bench/bench_head_bn.py --momenta 0.01,0.1,none
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from results import record
from sklearn.datasets import load_digits

from headstart import from_arrays
from headstart.api import train
from headstart.core import heads
from headstart.core.config import TrainConfig


def _digits(n: int, rng: np.random.Generator, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    images, labels = [], []
    for c in range(4):
        for i in rng.choice(np.flatnonzero(d.target == c), n, replace=False):
            img = Image.fromarray((d.images[i] * 16).astype(np.uint8))
            images.append(np.asarray(img.resize((size, size)) if size else img))
            labels.append(c)
    return np.repeat(np.stack(images)[..., None], 3, axis=3), np.array(labels)


def _with_momentum(momentum: float | None):
    real = torch.nn.BatchNorm1d
    heads.nn.BatchNorm1d = lambda n, eps=1e-3, **_: real(n, eps=eps, momentum=momentum)
    return real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--momenta", default="0.01,0.1,none")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x, y = _digits(65, rng, None)
    arrays = from_arrays(x.astype(np.float32) / 255.0, y)
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(1)
    for name, n in (("train", 50), ("test", 15)):
        xi, yi = _digits(n, rng, 64)
        np.save(tmp / f"{name}_images.npy", xi)
        np.save(tmp / f"{name}_labels.npy", yi)
    results = {}
    for text in args.momenta.split(","):
        momentum = None if text == "none" else float(text)
        real = _with_momentum(momentum)
        try:
            row = {"arrays": [], "lesson": None}
            for seed in (0, 1, 2):
                cfg = TrainConfig(backbone="tf_efficientnet_lite0", image_size=96, seed=seed)
                run = train(cfg, data=arrays, save=False, progress=False, say=lambda _: None)
                row["arrays"].append(round(run.metrics["test_accuracy"], 3))
            run = train(TrainConfig(data=str(tmp)), save=False, progress=False, say=lambda _: None)
            row["lesson"] = {
                "test": round(run.metrics["test_accuracy"], 3),
                "epochs": run.metrics["epochs_run"],
                "best_epoch": run.metrics["best_epoch"],
            }
        finally:
            heads.nn.BatchNorm1d = real
        results[text] = row
    print(json.dumps(results, indent=2))
    record(__file__, results)


if __name__ == "__main__":
    main()
