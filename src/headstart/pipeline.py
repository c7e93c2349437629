"""``train``: data -> backbone -> cached features -> head -> saved run. The CLI and the
estimator both call this; it is the whole frozen-backbone workflow of the founding lesson."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from headstart.backbones.model import create_backbone
from headstart.config import TrainConfig, resolve_device
from headstart.data import DataSource, Splits, load_data
from headstart.features import FeatureExtractor, FeatureSet, data_fingerprint
from headstart.heads import build_head
from headstart.runs import Run, TransferModel, reproducibility_record
from headstart.train import fit_head


def default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.backbone.replace('/', '_')}"


def _split_data(config: TrainConfig, data: DataSource | Splits | str | Path | None) -> Splits:
    if isinstance(data, Splits):
        return data
    location = data if data is not None else config.data
    if location is None:
        from headstart.errors import ConfigError

        raise ConfigError("no data given: pass a data location (or --demo).")
    return load_data(
        location,
        val_split=config.val_split,
        test_split=config.test_split,
        seed=config.seed,
        filename_column=config.filename_column,
        label_column=config.label_column,
    )


def _accuracy(probs_or_logits: np.ndarray, labels: np.ndarray) -> float:
    return float((probs_or_logits.argmax(1) == labels).mean()) if len(labels) else float("nan")


def train(
    config: TrainConfig | None = None,
    /,
    *,
    data: DataSource | Splits | str | Path | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    save: bool = True,
    report: bool = True,
) -> Run:
    """Train a head on a frozen pretrained backbone, the lesson's way but one forward pass.

    ``data`` overrides ``config.data`` (a location, a :class:`DataSource` or ready
    :class:`Splits`). With ``save`` the run is written to ``out`` (a timestamped folder under
    ``runs/`` by default) and can be reloaded with :func:`headstart.load_run`; with ``report``
    it also gets inspection.json, evaluation.json, plots/ and a self-contained report.html.
    """
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    splits = _split_data(config, data)
    device = resolve_device(config.device)
    loaded = create_backbone(
        config.backbone,
        weights=config.weights,
        pooling=config.pooling,
        image_size=config.image_size,
        resize=config.resize,
    )
    extractor = FeatureExtractor(
        loaded,
        device=device,
        batch_size=max(config.batch_size, 32),
        cache=config.cache,
        progress=progress,
    )
    t0 = time.perf_counter()
    views = list(range(1, config.views + 1)) if config.augment else [0]
    train_sets = [extractor.extract(splits.train, view=v, seed=config.seed) for v in views]
    val_set = extractor.extract(splits.val)
    test_set = extractor.extract(splits.test) if splits.test is not None else None
    extract_seconds = time.perf_counter() - t0

    train_ok = np.logical_and.reduce([fs.valid for fs in train_sets])
    val_ok = val_set.valid
    head = build_head(config.head_spec(), loaded.backbone.num_features, len(splits.class_names))
    history = fit_head(
        head,
        [fs.features[train_ok] for fs in train_sets],
        splits.train.labels[train_ok],
        val_set.features[val_ok],
        splits.val.labels[val_ok],
        config.fit_settings(),
        progress=progress,
    )
    model = TransferModel(loaded.backbone.cpu(), head.cpu()).eval()
    for p in model.backbone.parameters():
        p.requires_grad_(False)

    metrics = _metrics(splits, history, head, val_set, test_set, train_sets, extract_seconds)
    run = Run(
        model=model,
        class_names=splits.class_names,
        preprocessing=loaded.preprocessing,
        config=config,
        backbone_name=loaded.timm_name,
        head_spec=config.head_spec(),
        history=history,
        metrics=metrics,
        record=reproducibility_record(
            device, {n: data_fingerprint(s) for n, s in splits.items().items()}, config.seed
        ),
        split=splits.record(),
        weights={
            "kind": loaded.weights.kind,
            "detail": loaded.weights.detail,
            "fingerprint": loaded.weights.fingerprint,
        },
    )
    run.metrics["parameters"] = run.parameter_counts()
    if save:
        run.save(out or default_run_dir(config))
        if report:
            write_run_report(run, splits, progress=progress)
    return run


def write_run_report(run: Run, splits: Splits, *, progress: bool = False) -> Path:
    """inspection.json, evaluation.json, figures and report.html for a freshly trained run."""
    from headstart.data import inspect_source
    from headstart.evaluate import evaluate_run
    from headstart.io import atomic_write_json
    from headstart.report import write_report

    source = DataSource(
        train=splits.train,
        val=splits.val,
        test=splits.test,
        layout="split used by this run",
        location=str(run.config.data or "<arrays>"),
    )
    inspection = inspect_source(source, progress=progress)
    atomic_write_json(run.path / "inspection.json", inspection.to_dict())
    images = splits.test if splits.test is not None else splits.val
    evaluation = evaluate_run(run, images, described=f"{images.name} split")
    return write_report(run, evaluation=evaluation, splits=splits)


def _metrics(
    splits: Splits,
    history,
    head,
    val_set: FeatureSet,
    test_set: FeatureSet | None,
    train_sets: list[FeatureSet],
    extract_seconds: float,
) -> dict:
    def scores(fs: FeatureSet, labels: np.ndarray) -> float:
        with torch.no_grad():
            logits = head(torch.from_numpy(np.asarray(fs.features[fs.valid], np.float32)))
        return _accuracy(logits.numpy(), labels[fs.valid])

    train_counts = splits.train.class_counts()
    majority = int(np.argmax(train_counts))
    bad = [
        b for fs in (*train_sets[:1], val_set, *([test_set] if test_set else [])) for b in fs.bad
    ]
    metrics = {
        "val_accuracy": scores(val_set, splits.val.labels),
        "train_class_counts": train_counts.tolist(),
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.epochs),
        "stopped_early": history.stopped_early,
        "majority_class": splits.class_names[majority],
        "majority_baseline_val_accuracy": float(np.mean(splits.val.labels == majority)),
        "n_images": {n: len(s) for n, s in splits.items().items()},
        "unreadable_images": bad,
        "timing": {
            "feature_extraction_seconds": round(extract_seconds, 3),
            "training_seconds": round(history.seconds, 3),
        },
        "feature_cache": {
            "train": [fs.hit or "computed" for fs in train_sets],
            "val": val_set.hit or "computed",
            "keys": [fs.key for fs in train_sets] + [val_set.key],
        },
    }
    if test_set is not None:
        metrics["test_accuracy"] = scores(test_set, splits.test.labels)
        metrics["majority_baseline_test_accuracy"] = float(np.mean(splits.test.labels == majority))
    return metrics
