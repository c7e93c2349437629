"""Frozen-backbone training: feature cache, frozen BatchNorm, determinism, saved runs, sklearn."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import headstart
from conftest import make_images
from headstart import from_arrays
from headstart.api import train
from headstart.core.cache import clear_memory_cache
from headstart.core.config import TrainConfig
from headstart.core.data import load_data
from headstart.core.runs import load_run

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 4}


@pytest.fixture
def tiny_source():
    images, labels = make_images(10, seed=5)
    return from_arrays(images, labels)


def test_feature_cache_hit_on_second_run(tiny_source, tmp_path):
    clear_memory_cache()
    first = train(TrainConfig(**TINY), data=tiny_source, out=tmp_path / "a", progress=False)
    assert first.metrics["feature_cache"]["hits"] == ["computed", "computed"]
    clear_memory_cache()  # force the disk cache, as a new process would
    second = train(TrainConfig(**TINY), data=tiny_source, out=tmp_path / "b", progress=False)
    assert second.metrics["feature_cache"]["hits"] == ["disk", "disk"]
    assert second.metrics["feature_cache"]["keys"] == first.metrics["feature_cache"]["keys"]
    third = train(TrainConfig(**TINY), data=tiny_source, save=False, progress=False)
    assert third.metrics["feature_cache"]["hits"] == ["memory", "memory"]


@pytest.mark.parametrize(
    "change",
    [
        {"backbone": "test_efficientnet"},
        {"image_size": 64},
        {"resize": "crop"},
        {"pooling": "max"},
        {"augment": "cached", "views": 1},
    ],
)
def test_feature_cache_invalidated_when_inputs_change(tiny_source, change):
    base = train(TrainConfig(**TINY), data=tiny_source, save=False, progress=False)
    other = train(TrainConfig(**{**TINY, **change}), data=tiny_source, save=False, progress=False)
    assert other.metrics["feature_cache"]["hits"][0] == "computed"
    changed = other.metrics["feature_cache"]["keys"]
    if "augment" in change:  # augmented training views; validation keeps the plain view
        changed = changed[:-1]
    assert set(changed).isdisjoint(base.metrics["feature_cache"]["keys"])


def test_feature_cache_invalidated_when_data_change(tiny_source):
    base = train(TrainConfig(**TINY), data=tiny_source, save=False, progress=False)
    images, labels = make_images(10, seed=6)  # same shapes and labels, other pixels
    other = train(TrainConfig(**TINY), data=from_arrays(images, labels), save=False, progress=False)
    assert other.metrics["feature_cache"]["hits"][0] == "computed"
    assert other.metrics["feature_cache"]["keys"] != base.metrics["feature_cache"]["keys"]


def test_frozen_backbone_batchnorm_never_moves(tiny_source):
    from headstart.modalities.image.backbones import create_backbone

    torch.manual_seed(0)  # train() seeds with config.seed (0) before building the backbone
    before = {
        k: v.clone()
        for k, v in create_backbone("test_resnet", weights="none").backbone.state_dict().items()
    }
    run = train(
        TrainConfig(**{**TINY, "augment": "cached", "views": 2}),
        data=tiny_source,
        save=False,
        progress=False,
    )
    after = run.model.backbone.state_dict()
    bn_keys = [k for k in before if "running_" in k]
    assert bn_keys
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert not any(p.requires_grad for p in run.model.backbone.parameters())


def test_training_is_deterministic_for_a_seed(tiny_source):
    a = train(TrainConfig(**TINY, seed=3), data=tiny_source, save=False, progress=False)
    b = train(TrainConfig(**TINY, seed=3), data=tiny_source, save=False, progress=False)
    assert a.history.epochs == b.history.epochs
    for k, v in a.model.head.state_dict().items():
        assert torch.equal(v, b.model.head.state_dict()[k])


def test_early_stopping_restores_best_epoch(tiny_source):
    run = train(
        TrainConfig(**{**TINY, "epochs": 40, "patience": 2}),
        data=tiny_source,
        save=False,
        progress=False,
    )
    val = run.history.column("val_accuracy")
    assert run.history.best_epoch == int(np.argmax(val)) + 1
    assert run.metrics["val_accuracy"] == pytest.approx(max(val))
    if run.history.stopped_early:
        assert len(val) == run.history.best_epoch + 2


def test_saved_run_predicts_identically_in_a_fresh_process(tiny_source, tmp_path):
    run = train(TrainConfig(**TINY), data=tiny_source, out=tmp_path / "run", progress=False)
    images, _ = make_images(2, seed=11)
    np.save(tmp_path / "new.npy", images)
    here = run.predict_proba(list(images))
    code = (
        "import numpy as np, headstart, sys;"
        f"r = headstart.load_run({str(tmp_path / 'run')!r});"
        f"p = r.predict_proba(list(np.load({str(tmp_path / 'new.npy')!r})));"
        f"np.save({str(tmp_path / 'p.npy')!r}, p)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    there = np.load(tmp_path / "p.npy")
    np.testing.assert_allclose(here, there, rtol=0, atol=1e-6)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {
        "model.safetensors",
        "model.json",
        "config.json",
        "split.json",
        "history.csv",
        "metrics.json",
    } <= files
    assert not any(p.endswith((".pkl", ".pt", ".pth", ".tmp")) for p in files)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["record"]["seed"] == 0 and cfg["record"]["torch"] == torch.__version__
    assert set(cfg["record"]["data_hash"]) == {"train", "val"}


def test_run_replays_its_split(tmp_path, image_folder):
    run = train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "r", progress=False)
    loaded = load_run(tmp_path / "r")
    again = load_data(image_folder, split_record=loaded.split)
    assert again.val.ids == list(run.split["val"])


def test_sklearn_clone_and_cross_val_score():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_score

    images, labels = make_images(8, seed=7)
    clf = headstart.ImageClassifier(**TINY)
    c = clone(clf)
    assert c.get_params() == clf.get_params() and c is not clf
    scores = cross_val_score(clf, images, labels, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    grid = GridSearchCV(clf, {"hidden": [8, 16]}, cv=2).fit(images, labels)
    assert grid.best_params_["hidden"] in (8, 16)
    pred = grid.predict(images[:3])
    assert pred.dtype.kind in "iu" and set(pred) <= set(labels)
    string_labels = np.array(["cat", "dog", "eel"])[labels]
    fitted = headstart.ImageClassifier(**TINY).fit(images, string_labels)
    assert set(fitted.predict(images[:4])) <= {"cat", "dog", "eel"}
    assert fitted.predict_proba(images[:4]).shape == (4, 3)


def test_unreadable_image_is_skipped_and_reported(image_folder, tmp_path):
    (image_folder / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    run = train(TrainConfig(**TINY, data=str(image_folder)), save=False, progress=False)
    bad = run.skipped_examples
    assert len(bad) == 1 and bad[0]["path"].endswith("broken.png")


def test_flip_switch_changes_the_augmented_views_and_their_cache_key(tiny_source):
    from headstart.modalities.image.backbones import create_backbone
    from headstart.modalities.image.features import FeatureExtractor
    from headstart.modalities.image.preprocess import augmenter

    assert any("Flip" in type(t).__name__ for t in augmenter().transforms)
    assert not any("Flip" in type(t).__name__ for t in augmenter(flip=False).transforms)
    lb = create_backbone("test_resnet", weights="none", image_size=48)
    with_flip = FeatureExtractor(lb)
    without = FeatureExtractor(lb, augment_flip=False)
    train_set = tiny_source.train
    assert with_flip.key(train_set, view=1) != without.key(train_set, view=1)
    assert with_flip.key(train_set, view=0) == without.key(train_set, view=0)  # plain view


class _Seen(torch.nn.Module):
    """Records which samples (their index, in feature 0) pass through while training."""

    def __init__(self):
        super().__init__()
        self.epochs: list[list[int]] = []

    def forward(self, x):
        if self.training:
            self.epochs[-1] += x[:, 0].round().long().tolist()
        return x


@pytest.mark.parametrize("n", [4 * 3 + 1, 4 * 3, 4 * 3 + 2])
def test_every_training_sample_is_seen_every_epoch(n):
    from headstart.core.heads import HeadSpec, build_head
    from headstart.core.inputs import ArrayInputs
    from headstart.core.loop import FitSettings, fit

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, 6)).astype(np.float32)
    feats[:, 0] = np.arange(n)
    labels = np.arange(n) % 2
    seen = _Seen()
    head = build_head(HeadSpec(), 6, 2)  # the lesson's head: BatchNorm trains
    module = torch.nn.Sequential(seen, head)

    class Epochs(ArrayInputs):
        def epoch(self, rng, batch_size):
            if rng is not None:
                seen.epochs.append([])
            yield from super().epoch(rng, batch_size)

    train_inputs = Epochs([feats], labels)
    history = fit(
        module,
        head,
        train_inputs,
        ArrayInputs([feats], labels),
        FitSettings(epochs=3, batch_size=4, patience=0),
    )
    assert len(seen.epochs) == 3
    for ids in seen.epochs:
        assert sorted(ids) == list(range(n))
    assert history.skipped_samples == 0


def test_batches_never_hold_a_single_sample_and_cover_the_epoch():
    from headstart.core.inputs import batch_slices
    from headstart.modalities.image.backbones import create_backbone
    from headstart.modalities.image.inputs import ImageInputs

    assert [(b.start, b.stop) for b in batch_slices(9, 4)] == [(0, 4), (4, 9)]
    assert [(b.start, b.stop) for b in batch_slices(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert [(b.start, b.stop) for b in batch_slices(1, 4)] == [(0, 1)]
    prep = create_backbone("test_resnet", weights="none", image_size=48).preprocessing
    images = from_arrays(*make_images(9, seed=5)).train
    assert len(images) == 27
    inputs = ImageInputs(images, prep, workers=0)
    batch_size = 13  # two full batches and one image left over
    sizes, labels = [], []
    for _, y in inputs.epoch(np.random.default_rng(0), batch_size):
        sizes.append(len(y))
        labels += y.tolist()
    assert sizes == [batch_size, batch_size + 1]
    assert sorted(labels) == sorted(images.labels.tolist())


def test_headstart_train_stays_callable_after_other_parts_load(tiny_source):
    """`headstart.train` is the function, however often it is called and whatever was used
    first (a submodule of the same name once replaced it after the first call)."""
    import importlib

    headstart.load_run  # noqa: B018 - loads runs and the training loop
    importlib.import_module("headstart.core.training")
    for _ in range(2):
        run = headstart.train(TrainConfig(**TINY), data=tiny_source, save=False, progress=False)
        assert run.history is not None
    assert callable(headstart.train) and callable(headstart.ImageClassifier)
