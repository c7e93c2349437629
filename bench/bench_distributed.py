"""Distributed training: extraction and epoch time on 1 process against 2 (one thread each),
on the lesson-shaped data, and what the measured per-image costs predict for ImageNet-1k.

Each case is the ``headstart train`` command a user types, in a fresh cache folder:

* ``feature-extraction``: the pooled backbone runs once per image (the whole forward pass),
  then the head trains on cached features;
* ``fine-tune --unfreeze 1``: the prefix runs once per image (cached, float16), then each
  epoch trains the top stage and the head with DistributedDataParallel on 2 processes;
* ``fine-tune --unfreeze 1 --no-cache`` (1 process, 1 epoch): the whole network every step,
  the cost the cache saves.

Times come from each run's ``metrics.json`` (extraction seconds, seconds per epoch, validation
included). Scaling efficiency = time on 1 process / (2 x time on 2 processes): 1.0 is perfect.
The 1-process runs use ``OMP_NUM_THREADS=1``; ``--nproc 2`` gives each process one thread of
the two cores.

    python bench/bench_distributed.py [--backbone tf_efficientnet_lite0] [--epochs 3]
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

sys.path.insert(0, str(Path(__file__).parent))
from bench_frozen import make_lesson_shaped_data  # noqa: E402
from results import record

#: timm's published inference throughput of tf_efficientnet_lite0 @224 (RTX 4090, AMP, batch
#: 1024: 8,709.74 img/s in huggingface/pytorch-image-models,
#: results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv): the GPU anchor the ImageNet
#: estimate scales from.
TIMM_LITE0_IMG_PER_S = 8710
IMAGENET_TRAIN = 1_281_167


def _train(data: Path, tmp: Path, name: str, args: list[str], nproc: int) -> dict:
    cache = tmp / f"cache-{name}"
    out = tmp / name
    cmd = [sys.executable, "-m", "headstart.cli", "train", str(data), *args, "--out", str(out)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "HEADSTART_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    if nproc > 1:
        env.pop("OMP_NUM_THREADS")  # --nproc gives each process cores / nproc threads
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    m = json.loads((out / "metrics.json").read_text())
    n = sum(m["n_examples"].values())
    return {
        "case": name,
        "processes": nproc,
        "extraction_s": m["timing"]["feature_extraction_seconds"],
        "epoch_s": m["timing"]["seconds_per_epoch"],
        "epochs": m["epochs_run"],
        "wall_s": round(wall, 1),
        "images": n,
        "train_images": m["n_examples"]["train"],
        "cache_bytes": m["feature_cache"].get("bytes_on_disk", 0),
        "val_accuracy": m["val_accuracy"],
    }


def decode_seconds(repeats: int = 40) -> float:
    """Seconds to read one ImageNet-sized JPEG (500x375, quality 90: ImageNet's typical size)
    and make it a 224x224 input, on one core, through headstart's own decoding and
    preprocessing: the per-image work a run without the cache repeats every epoch."""
    import io

    import numpy as np
    from PIL import Image
    from skimage import data as samples

    from headstart.modalities.image.backbones.model import Preprocessing
    from headstart.modalities.image.data.decode import decode_image_bytes
    from headstart.modalities.image.preprocess import prepare_batch

    buf = io.BytesIO()
    Image.fromarray(samples.chelsea()).resize((500, 375)).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    prep = Preprocessing((224, 224), (0.5,) * 3, (0.5,) * 3, "bilinear")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        prepare_batch([decode_image_bytes(jpeg, "sample.jpg")], prep)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--weights", default="imagenet")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    common = ["--backbone", args.backbone, "--weights", args.weights, "--patience", "0"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        data.mkdir()
        make_lesson_shaped_data(data)
        cases = [
            ("frozen", ["--epochs", str(args.epochs)]),
            (
                "unfreeze1",
                ["--strategy", "fine-tune", "--unfreeze", "1", "--epochs", str(args.epochs)],
            ),
        ]
        for name, extra in cases:
            for nproc in (1, 2):
                rows.append(_train(data, tmp, f"{name}-{nproc}", [*common, *extra], nproc))
                print(json.dumps(rows[-1]), flush=True)
        no_cache = ["--strategy", "fine-tune", "--unfreeze", "1", "--no-cache", "--epochs", "1"]
        rows.append(_train(data, tmp, "unfreeze1-nocache-1", [*common, *no_cache], 1))
        print(json.dumps(rows[-1]), flush=True)

    by = {r["case"]: r for r in rows}
    scaling = {}
    for name in ("frozen", "unfreeze1"):
        one, two = by[f"{name}-1"], by[f"{name}-2"]
        scaling[name] = {
            "extraction_efficiency": round(one["extraction_s"] / (2 * two["extraction_s"]), 2),
            "epoch_efficiency": round(one["epoch_s"] / (2 * two["epoch_s"]), 2),
        }
    # per-image costs on one thread, as fractions of the whole forward pass (F)
    images = by["frozen-1"]["images"]
    forward = by["frozen-1"]["extraction_s"] / images
    prefix = by["unfreeze1-1"]["extraction_s"] / images
    train_images = by["unfreeze1-1"]["train_images"]  # an epoch: its training images (+ val)
    cached_epoch = by["unfreeze1-1"]["epoch_s"] / train_images
    whole_epoch = by["unfreeze1-nocache-1"]["epoch_s"] / train_images
    per_gpu = 1 / TIMM_LITE0_IMG_PER_S  # seconds of one forward pass per image on one GPU
    gpus, epochs = 8, 10

    def gpu_hours(fraction_of_forward: float, passes: int) -> float:
        return IMAGENET_TRAIN * passes * fraction_of_forward * per_gpu / gpus / 3600

    bytes_per_image = by["unfreeze1-1"]["cache_bytes"] / images
    decode = decode_seconds()
    estimate = {
        "assumption": (
            "GPU costs in the same proportions as the measured CPU costs, anchored on timm's "
            f"{TIMM_LITE0_IMG_PER_S} img/s forward pass (RTX 4090, AMP); {gpus} GPUs scaling "
            f"linearly; {epochs} epochs of --unfreeze 1; data loading and decoding not counted"
        ),
        "relative_cost": {
            "prefix_forward": round(prefix / forward, 3),
            "cached_epoch_per_image": round(cached_epoch / forward, 3),
            "whole_network_epoch_per_image": round(whole_epoch / forward, 3),
        },
        "hours_with_cache": round(
            gpu_hours(prefix / forward, 1) + gpu_hours(cached_epoch / forward, epochs), 3
        ),
        "hours_without_cache": round(gpu_hours(whole_epoch / forward, epochs), 3),
        "cache_gb": round(bytes_per_image * IMAGENET_TRAIN / 1e9, 1),
        # decoding and resizing, measured here on one core: done once with the cache, every
        # epoch without it (CPU core-hours; the GPUs wait unless enough cores share it)
        "decode_ms_per_image_one_core": round(decode * 1000, 2),
        "decode_core_hours_per_epoch": round(decode * IMAGENET_TRAIN / 3600, 2),
        "decode_img_per_s_needed_by_8_gpus_without_cache": round(
            gpus * TIMM_LITE0_IMG_PER_S / (whole_epoch / forward)
        ),
    }
    estimate["speedup"] = round(estimate["hours_without_cache"] / estimate["hours_with_cache"], 1)
    result = {
        "backbone": args.backbone,
        "rows": rows,
        "scaling_2_processes": scaling,
        "imagenet_estimate": estimate,
    }
    print(json.dumps(result, indent=1))
    record(__file__, result)


if __name__ == "__main__":
    main()
