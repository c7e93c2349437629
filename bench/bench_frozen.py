"""Frozen-backbone training speed against its floor and against the lesson's Keras protocol.

On a dataset shaped like the lesson's (878 train + 293 validation images, 64x64x3, 10 classes)
this measures, in one run on one machine:

  (a) floor    the backbone's bare forward pass over all 1,171 images (torch, inference mode)
  (b) ours     `headstart train` end to end in a fresh process: DenseNet121 at 160 px,
               --weights none (its ImageNet weights cannot be downloaded here; the compute is
               identical), 30 epochs, no early stopping, cold feature cache, report included;
               (b') the same call from Python, without interpreter start and imports
  (c) keras    the lesson's own protocol: keras.applications.DenseNet121(weights=None, pooling
               max) behind resize_with_pad to 160, the lesson's head, Adam, batch 32, every epoch
               re-running the frozen network. It runs in a separate virtual environment with
               TensorFlow (`--keras-python`); `--keras-epochs N` runs N epochs and scales the
               measured per-epoch time to 30, which is exact for a frozen network (every epoch
               does the same work) and keeps the benchmark under the shell's time limit.
               TensorFlow gets the threads torch gets (``OMP_NUM_THREADS``), so the two
               frameworks compete on equal cores.

Prints a JSON record with the three times and the ratios (b)/(a) and (c)/(b), and writes it to
bench/results/frozen.json (bench/results.py adds the date, machine, load and command).

    python bench/bench_frozen.py --keras-python .bench-venv-tf/bin/python --keras-epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import record

KERAS_SCRIPT = r"""
import sys, time, json, numpy as np
import os
import tensorflow as tf, keras
threads = int(os.environ.get("OMP_NUM_THREADS") or 0)  # torch's threads in (a) and (b)
if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
d = sys.argv[1]; epochs = int(sys.argv[2])
xt = np.load(d + "/train_images.npy").astype("float32") / 255.0
yt = np.load(d + "/train_labels.npy")
xv = np.load(d + "/test_images.npy").astype("float32") / 255.0
yv = np.load(d + "/test_labels.npy")
inputs = keras.Input(shape=xt.shape[1:])
up = keras.layers.Lambda(lambda x: tf.image.resize_with_pad(x, 160, 160))(inputs)
base = keras.applications.DenseNet121(include_top=False, pooling="max", weights=None,
                                      input_tensor=up, input_shape=(160, 160, 3))
base.trainable = False
out = keras.layers.Flatten()(base.output)
out = keras.layers.BatchNormalization()(out)
out = keras.layers.Dense(50, activation="relu")(out)
out = keras.layers.Dropout(0.5)(out)
out = keras.layers.Dense(10)(out)
model = keras.Model(inputs, out)
model.compile(optimizer="adam",
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
t0 = time.perf_counter()
model.fit(xt, yt, batch_size=32, epochs=epochs, validation_data=(xv, yv), callbacks=[T()],
          verbose=0)
total = time.perf_counter() - t0
print(json.dumps({"epochs": epochs, "seconds": total, "epoch_seconds": times, "threads": threads,
                  "trainable": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
                  "tensorflow": tf.__version__}))
"""


def make_lesson_shaped_data(folder: Path, seed: int = 0) -> None:
    """878 + 293 uint8 images, 64x64x3, 10 classes, in the lesson's array layout."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", 878), ("test", 293)):
        np.save(folder / f"{split}_images.npy", rng.integers(0, 256, (n, 64, 64, 3), np.uint8))
        np.save(folder / f"{split}_labels.npy", rng.integers(0, 10, n))


def bare_forward(data: Path, backbone: str, image_size: int) -> float:
    """(a) the floor: one inference pass of the backbone over every image, batch 32."""
    import torch

    from headstart.core.data import load_source
    from headstart.modalities.image.backbones import create_backbone
    from headstart.modalities.image.preprocess import prepare_batch

    src = load_source(data)
    lb = create_backbone(backbone, weights="none", image_size=image_size)
    model = lb.backbone.eval().to(memory_format=torch.channels_last)
    images = [s.image(i) for s in (src.train, src.val) for i in range(len(s))]
    start = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(images), 32):
            x = prepare_batch(images[b : b + 32], lb.preprocessing)
            model(x.contiguous(memory_format=torch.channels_last))
    return time.perf_counter() - start


def headstart_train(data: Path, backbone: str, image_size: int, epochs: int) -> float:
    """(b) the CLI end to end in a fresh process with a cold cache."""
    env = dict(os.environ, HEADSTART_CACHE_DIR=tempfile.mkdtemp(prefix="hs-bench-cache-"))
    cmd = [
        sys.executable,
        "-m",
        "headstart.cli",
        "train",
        str(data),
        "--backbone",
        backbone,
        "--weights",
        "none",
        "--image-size",
        str(image_size),
        "--epochs",
        str(epochs),
        "--patience",
        "0",
        "--out",
        tempfile.mkdtemp(prefix="hs-bench-run-"),
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def headstart_in_process(data: Path, backbone: str, image_size: int, epochs: int) -> float:
    """(b') the same training called from Python: (b) minus interpreter start and imports."""
    from headstart.api import train
    from headstart.core.cache import clear_memory_cache
    from headstart.core.config import TrainConfig

    clear_memory_cache()
    os.environ["HEADSTART_CACHE_DIR"] = tempfile.mkdtemp(prefix="hs-bench-cache-")
    cfg = TrainConfig(
        data=str(data),
        backbone=backbone,
        weights="none",
        image_size=image_size,
        epochs=epochs,
        patience=0,
    )
    start = time.perf_counter()
    train(cfg, out=tempfile.mkdtemp(prefix="hs-bench-run-"), progress=False)
    return time.perf_counter() - start


def import_seconds() -> float:
    """What a fresh process pays before any work: starting Python and importing headstart."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import headstart.cli, headstart.core.training"], check=True
    )
    return time.perf_counter() - start


def keras_protocol(python: str, data: Path, epochs: int) -> dict:
    """(c) the lesson's Keras protocol in its own virtual environment."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(KERAS_SCRIPT)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [python, f.name, str(data), str(epochs)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backbone", default="densenet121")
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--keras-python", help="python of a virtual environment with TensorFlow")
    ap.add_argument("--keras-epochs", type=int, default=30)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        make_lesson_shaped_data(data)
        floors = [bare_forward(data, args.backbone, args.image_size)]
        ours = headstart_train(data, args.backbone, args.image_size, args.epochs)
        in_process = headstart_in_process(data, args.backbone, args.image_size, args.epochs)
        startup = import_seconds()
        floors.append(bare_forward(data, args.backbone, args.image_size))
        floor = min(floors)  # the faster of two passes: the strictest reference
        result = {
            "backbone": f"{args.backbone}@{args.image_size}",
            "images": 878 + 293,
            "a_bare_forward_s": round(floor, 1),
            "a_both_passes_s": [round(f, 1) for f in floors],
            "b_headstart_train_s": round(ours, 1),
            "ratio_b_over_a": round(ours / floor, 2),
            "b_in_process_s": round(in_process, 1),
            "ratio_b_in_process_over_a": round(in_process / floor, 2),
            "python_start_and_imports_s": round(startup, 1),
        }
        if args.keras_python:
            k = keras_protocol(args.keras_python, data, args.keras_epochs)
            per_epoch = float(np.mean(k["epoch_seconds"]))
            keras_30 = k["seconds"] if args.keras_epochs == 30 else per_epoch * 30
            result.update(
                {
                    "c_keras_epochs_run": args.keras_epochs,
                    "c_keras_epoch_seconds": [round(t, 1) for t in k["epoch_seconds"]],
                    "c_keras_30_epochs_s": round(keras_30, 1),
                    "c_keras_trainable_params": k["trainable"],
                    "tensorflow": k["tensorflow"],
                    "c_keras_threads": k.get("threads") or "TensorFlow's default",
                    "ratio_c_over_b": round(keras_30 / ours, 1),
                }
            )
    print(json.dumps(result, indent=2))
    record(__file__, result)


if __name__ == "__main__":
    main()
