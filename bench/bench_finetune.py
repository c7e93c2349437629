"""Fine-tuning speed: headstart's training step against a hand-written loop, and the prefix
cache against running the whole network.

Part A (step): images per second of fine-tuning steps (forward + backward + Adam) with
``--unfreeze 1`` and ``--strategy full``, through headstart's own loop on images decoded and
preprocessed on the fly (``--no-cache``), against a plain PyTorch loop written by hand on the
same timm model, same batches, same preprocessing; median of 3 alternating runs each.
Ratio = headstart time / reference time.

Part B (prefix cache): seconds per epoch of ``--unfreeze 1`` (and 2) with the frozen-prefix
cache against ``--no-cache``, on data shaped like the lesson's (878 train + 293 validation,
64x64), validation included; extraction time, cache size, and 10 epochs end to end.
``--no-cache`` epochs cost the same every epoch, so they are measured over
``--slow-epochs`` epochs and scaled to 10 (stated in the output).

    python bench/bench_finetune.py --part all
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
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from bench_frozen import make_lesson_shaped_data  # noqa: E402
from results import record

CASES = [("densenet121", 160, "none"), ("tf_efficientnet_lite0", 224, "imagenet")]


def _source(n: int, seed: int = 0):
    from headstart import from_arrays

    rng = np.random.default_rng(seed)
    return from_arrays(rng.integers(0, 256, (n, 64, 64, 3), np.uint8), rng.integers(0, 10, n))


def reference_loop(
    backbone: str, size: int, weights: str, strategy: str, images, labels, batch: int
) -> float:
    """A plain hand-written PyTorch fine-tuning loop: the reference. Returns seconds."""
    from headstart.core.heads import HeadSpec, build_head
    from headstart.core.strategies import Strategy, plan_strategy
    from headstart.modalities.image.backbones import create_backbone
    from headstart.modalities.image.preprocess import prepare_batch

    lb = create_backbone(backbone, weights=weights, image_size=size)
    plan_strategy(lb.backbone, Strategy(strategy, unfreeze=1))  # same trainable set
    head = build_head(HeadSpec(), lb.backbone.num_features, 10)
    model = nn.Sequential(lb.backbone, head).train()
    for m in lb.backbone.modules():  # frozen BN statistics, as headstart's default
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-5)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for s in range(0, len(images), batch):
        x = prepare_batch(list(images[s : s + batch]), lb.preprocessing)
        y = torch.from_numpy(labels[s : s + batch])
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def headstart_loop(
    backbone: str, size: int, weights: str, strategy: str, source, batch: int
) -> float:
    """One epoch of headstart's fit() on the fly (no cache, no validation cost counted)."""
    from headstart.core.heads import HeadSpec, build_head
    from headstart.core.inputs import ArrayInputs, ImageInputs
    from headstart.core.loop import FitSettings, fit
    from headstart.core.model import TransferModel
    from headstart.core.strategies import Strategy, plan_strategy
    from headstart.modalities.image.backbones import create_backbone

    lb = create_backbone(backbone, weights=weights, image_size=size)
    plan_strategy(lb.backbone, Strategy(strategy, unfreeze=1))
    head = build_head(HeadSpec(), lb.backbone.num_features, 10)
    inputs = ImageInputs(source.train, lb.preprocessing)
    empty_val = ArrayInputs([np.zeros((0, 3, size, size), np.float32)], np.zeros(0, np.int64))
    settings = FitSettings(epochs=1, batch_size=batch, patience=0)
    start = time.perf_counter()
    fit(TransferModel(lb.backbone, head), head, inputs, empty_val, settings, progress=False)
    return time.perf_counter() - start


def part_a(n_images: int, batch: int, rounds: int = 3) -> list[dict]:
    torch.manual_seed(0)
    source = _source(n_images)
    images = np.stack([source.train.image(i) for i in range(len(source.train))])
    labels = source.train.labels
    rows = []
    for backbone, size, weights in CASES:
        for strategy in ("fine-tune", "full"):
            # alternate reference and headstart, `rounds` times each; compare medians
            refs, ours_times = [], []
            for _ in range(rounds):
                refs.append(
                    reference_loop(backbone, size, weights, strategy, images, labels, batch)
                )
                ours_times.append(headstart_loop(backbone, size, weights, strategy, source, batch))
            ref, ours = float(np.median(refs)), float(np.median(ours_times))
            rows.append(
                {
                    "backbone": f"{backbone}@{size}",
                    "strategy": strategy,
                    "images": len(images),
                    "reference_img_per_s": round(len(images) / ref, 2),
                    "headstart_img_per_s": round(len(images) / ours, 2),
                    "ratio_headstart_time_over_reference": round(ours / ref, 3),
                    "rounds": rounds,
                    "reference_s": [round(t, 2) for t in refs],
                    "headstart_s": [round(t, 2) for t in ours_times],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _train(data: Path, backbone: str, size: int, weights: str, epochs: int, **kw):
    from headstart.api import train
    from headstart.core.config import TrainConfig

    cfg = TrainConfig(
        data=str(data),
        backbone=backbone,
        weights=weights,
        image_size=size,
        epochs=epochs,
        patience=0,
        strategy="fine-tune",
        **kw,
    )
    start = time.perf_counter()
    run = train(cfg, save=False, progress=False)
    return run, time.perf_counter() - start


def part_b(slow_epochs: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        make_lesson_shaped_data(data)
        for backbone, size, weights in CASES:
            for unfreeze in (1, 2):
                os.environ["HEADSTART_CACHE_DIR"] = tempfile.mkdtemp(prefix="hs-bench-")
                from headstart.core.cache import clear_memory_cache

                clear_memory_cache()
                cached, cached_total = _train(data, backbone, size, weights, 10, unfreeze=unfreeze)
                fc = cached.metrics["feature_cache"]
                per_epoch_cached = cached.metrics["timing"]["seconds_per_epoch"]
                slow, _ = _train(
                    data, backbone, size, weights, slow_epochs, unfreeze=unfreeze, cache=False
                )
                per_epoch_slow = slow.metrics["timing"]["seconds_per_epoch"]
                setup_slow = 0.0  # on the fly has no extraction
                slow_10 = per_epoch_slow * 10 + setup_slow
                rows.append(
                    {
                        "backbone": f"{backbone}@{size}",
                        "unfreeze": unfreeze,
                        "cut": fc["cut"],
                        "shape_per_image": fc["shape_per_example"],
                        "cache_bytes": fc["bytes_on_disk"],
                        "extraction_s": round(
                            cached.metrics["timing"]["feature_extraction_seconds"], 1
                        ),
                        "epoch_s_cached": per_epoch_cached,
                        "epoch_s_no_cache": per_epoch_slow,
                        "epoch_speedup": round(per_epoch_slow / per_epoch_cached, 1),
                        "ten_epochs_s_cached_incl_extraction": round(cached_total, 1),
                        "ten_epochs_s_no_cache": round(slow_10, 1),
                        "no_cache_epochs_measured": slow_epochs,
                        "end_to_end_speedup": round(slow_10 / cached_total, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--part", choices=["a", "b", "all"], default="all")
    ap.add_argument("--step-images", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--slow-epochs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    result = {}
    if args.part in ("a", "all"):
        result["step"] = part_a(args.step_images, args.batch)
    if args.part in ("b", "all"):
        result["prefix_cache"] = part_b(args.slow_epochs)
    print(json.dumps(result, indent=2))
    record(__file__, result, name="finetune" if args.part == "all" else f"finetune-{args.part}")


if __name__ == "__main__":
    main()
