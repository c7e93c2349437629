"""What the training loop reads, prepared once: the frozen part's outputs cached (pooled
features, or the prefix below the first trained stage, with any augmented views), or examples
decoded every step through the whole network when nothing can be cached (full, scratch,
``--augment on-the-fly``, over ``--cache-budget``)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headstart.core import distributed
from headstart.core.cache import MIRROR, FeatureSet
from headstart.core.config import TrainConfig, parse_bytes
from headstart.core.data import Splits
from headstart.core.extractors import Extractor, extractor_for, streaming_inputs
from headstart.core.inputs import ArrayInputs
from headstart.core.loop import predict_logits
from headstart.core.model import Suffix, TransferModel
from headstart.core.strategies import StrategyPlan

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything the loop needs: the module that trains, its inputs, and how they were made."""

    module: nn.Module
    train: object
    val: object
    test: object | None
    record: dict
    feature_sets: list[FeatureSet]
    #: positions of each split's items that decoded and were used, and the ones that did not
    used: dict[str, np.ndarray]
    unreadable: list[dict]
    #: with --tta on cached inputs: the mirror images' cached outputs of val and test
    mirrored: dict[str, ArrayInputs] = field(default_factory=dict)


def cache_budget_bytes(config: TrainConfig, folder: Path) -> int:
    """The explicit --cache-budget, else half the free disk under the cache, capped at 64 GB."""
    explicit = parse_bytes(config.cache_budget)
    if explicit is not None:
        return explicit
    folder.mkdir(parents=True, exist_ok=True)
    return min(shutil.disk_usage(folder).free // 2, 64 << 30)


def fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def prepare(
    config: TrainConfig,
    splits: Splits,
    loaded,
    plan: StrategyPlan,
    head: nn.Module,
    device: str,
) -> Prepared:
    views = list(range(1, config.views + 1)) if config.augment == "cached" else [0]
    strategy = config.strategy_spec()
    from headstart.core.cache import cache_root

    if not strategy.trains_backbone:
        ex = extractor_for(
            loaded,
            device=device,
            batch_size=max(config.batch_size, 32),
            cache=config.cache,
            augment_flip=config.flip,
        )
        if config.augment == "on-the-fly":
            log.info(
                "feature extraction with --augment on-the-fly: the frozen backbone runs every "
                "epoch (use --augment cached to compute views once)"
            )
            return _on_the_fly(config, splits, loaded, head, "on-the-fly augmentation")
        train_sets = [ex.extract(splits.train, view=v, seed=config.seed) for v in views]
        return _cached(config, splits, ex, train_sets, head, head, "pooled")
    reason = None
    if not plan.cached_prefix:
        reason = plan.describe() if plan.plan is None else "nothing frozen to cache"
    elif not config.cache:
        reason = "--no-cache"
    elif config.augment == "on-the-fly":
        reason = "--augment on-the-fly"
    if reason is None:
        prefix = plan.plan.prefix(plan.cut)
        cut = f"unit {plan.cut}: {plan.plan.cut_name(plan.cut)}"
        ex = extractor_for(
            loaded,
            module=prefix,
            cut=cut,
            dtype=config.cache_dtype,
            device=device,
            batch_size=max(config.batch_size, 32),
            cache=True,
            augment_flip=config.flip,
        )
        need = ex.estimate_bytes(splits.train, len(views)) + sum(
            ex.estimate_bytes(s) for s in (splits.val, splits.test) if s is not None
        )
        # rank 0's disk decides for every rank (free space may differ between machines)
        budget = distributed.current().broadcast(cache_budget_bytes(config, cache_root()))
        already = all(ex.cached(splits.train, v, config.seed) for v in views)
        if distributed.current().broadcast(need > budget and not already):
            log.warning(
                f"prefix cache would need {fmt_bytes(need)}, over the {fmt_bytes(budget)} "
                "budget: training on the fly instead (raise it with --cache-budget)"
            )
            reason = "over the cache budget"
        else:
            train_sets = [ex.extract(splits.train, view=v, seed=config.seed) for v in views]
            suffix = Suffix(plan.plan.suffix(plan.cut), loaded.backbone, head)
            prep = _cached(config, splits, ex, train_sets, suffix, head, cut)
            prep.record.update(estimated_bytes=need, budget_bytes=budget)
            return prep
    return _on_the_fly(config, splits, loaded, head, reason)


def _cached(config, splits, ex: Extractor, train_sets, module, head, cut) -> Prepared:
    val_set = ex.extract(splits.val)
    test_set = ex.extract(splits.test) if splits.test is not None else None
    ok = np.logical_and.reduce([fs.valid for fs in train_sets])
    sets = [*train_sets, val_set, *([test_set] if test_set else [])]
    record = {
        "mode": "cached",
        "cut": cut,
        "dtype": ex.dtype.name,
        "shape_per_example": ex.shape_per_example(),
        "keys": [fs.key for fs in sets],
        "hits": [fs.hit or "computed" for fs in sets],
        "train_views": len(train_sets),
        "bytes_on_disk": int(sum(np.asarray(fs.features).nbytes for fs in sets)),
        "extraction_seconds": round(sum(fs.seconds for fs in sets), 3),
    }
    return Prepared(
        module=module,
        train=ex.inputs(train_sets, splits.train.labels, np.flatnonzero(ok)),
        val=ex.inputs([val_set], splits.val.labels, np.flatnonzero(val_set.valid)),
        test=(
            ex.inputs([test_set], splits.test.labels, np.flatnonzero(test_set.valid))
            if test_set
            else None
        ),
        record=record,
        feature_sets=sets,
        used={
            "train": np.flatnonzero(ok),
            "val": np.flatnonzero(val_set.valid),
            **({"test": np.flatnonzero(test_set.valid)} if test_set else {}),
        },
        unreadable=_unique_by_path(b for fs in sets for b in fs.bad),
        mirrored=_mirrored(config, splits, ex, {"val": val_set, "test": test_set}),
    )


def _mirrored(config, splits, ex: Extractor, plain: dict) -> dict[str, ArrayInputs]:
    """Test-time augmentation on cached inputs: the mirror images' outputs, same rows."""
    if not config.tta:
        return {}
    out = {}
    for name, fs in plain.items():
        if fs is not None:
            images = getattr(splits, name)
            m = ex.extract(images, view=MIRROR)
            out[name] = ArrayInputs([m.features], images.labels, np.flatnonzero(fs.valid))
    return out


def _unique_by_path(items) -> list[dict]:
    seen: set[str] = set()
    out = []
    for b in items:
        if b["path"] not in seen:
            seen.add(b["path"])
            out.append(b)
    return out


def _on_the_fly(config, splits, loaded, head, reason: str) -> Prepared:
    """Examples decoded (or tokenised) every step, through the whole network. Broken files
    are found first, so they are left out of training and of every count (as the feature
    cache does)."""
    inputs, used, unreadable = streaming_inputs(
        loaded,
        splits,
        augment=config.augment != "none",
        seed=config.seed,
        workers=config.workers,
        flip=config.flip,
    )
    return Prepared(
        module=TransferModel(loaded.backbone, head),
        train=inputs["train"],
        val=inputs["val"],
        test=inputs.get("test"),
        record={"mode": "on-the-fly", "reason": reason, "augment": config.augment},
        feature_sets=[],
        used=used,
        unreadable=unreadable,
    )


def layout(prepared: Prepared, plan: StrategyPlan) -> dict:
    if isinstance(prepared.module, Suffix):
        return {"module": "suffix", "cut": plan.cut}
    if isinstance(prepared.module, TransferModel):
        return {"module": "full", "cut": None}
    return {"module": "head", "cut": None}


def used_labels(splits: Splits, prepared: Prepared) -> dict[str, np.ndarray]:
    """The labels of the images each split actually used: every count shown comes from here."""
    return {n: s.labels[prepared.used[n]] for n, s in splits.items().items()}


def head_inputs(prepared: Prepared, head, device) -> dict | None:
    """Each split's inputs of the head, in the order of its examples (split name -> array):
    what a joint model with the classic baseline reads. A frozen network's are its cached
    features; otherwise one inference pass of the trained module over every split, the head's
    inputs caught on their way in. None where they cannot be had in order (several augmented
    views of a cached example)."""
    parts = {"train": prepared.train, "val": prepared.val, "test": prepared.test}
    parts = {n: p for n, p in parts.items() if p is not None}
    if prepared.module is head and all(isinstance(p, ArrayInputs) for p in parts.values()):
        if any(len(p.views) != 1 for p in parts.values()):
            return None
        return {n: np.asarray(p.views[0][p.rows]) for n, p in parts.items()}
    caught: list[np.ndarray] = []

    def catch(_module, args):
        caught.append(args[0].detach().float().cpu().reshape(len(args[0]), -1).numpy())

    out = {}
    hook = head.register_forward_pre_hook(catch)
    try:
        for name, inputs in parts.items():
            caught.clear()
            y, _ = predict_logits(prepared.module, inputs, torch.device(device))
            x = np.concatenate(caught) if caught else np.zeros((0, 0), np.float32)
            if len(x) != len(y):  # (a mirrored or multi-view pass: not one row per example)
                return None
            out[name] = x
    finally:
        hook.remove()
    return out
