"""The frozen-prefix cache: hits, invalidation, exact equivalence, size, budget, interruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_images, run_cli
from headstart import from_arrays
from headstart.api import train
from headstart.core.cache import cache_root, clear_memory_cache
from headstart.core.config import TrainConfig
from headstart.modalities.image.features import FeatureExtractor

FT = {"weights": "none", "image_size": 48, "epochs": 2, "strategy": "fine-tune", "unfreeze": 1}


@pytest.fixture
def source():
    images, labels = make_images(10, seed=5)
    return from_arrays(images, labels)


def _run(source, **kw):
    cfg = TrainConfig(**{"backbone": "test_resnet", **FT, **kw})
    return train(cfg, data=source, save=False, progress=False)


def test_prefix_cache_hit_then_invalidated_by_cut_views_and_preprocessing(source):
    first = _run(source)
    assert first.metrics["feature_cache"]["mode"] == "cached"
    assert set(first.metrics["feature_cache"]["hits"]) == {"computed"}
    clear_memory_cache()
    again = _run(source)
    assert set(again.metrics["feature_cache"]["hits"]) == {"disk"}
    keys = set(first.metrics["feature_cache"]["keys"])
    for change in (
        {"unfreeze": 2},
        {"image_size": 64},
        {"resize": "crop"},
        {"augment": "cached", "views": 2},
    ):
        other = _run(source, **change)
        assert other.metrics["feature_cache"]["hits"][0] == "computed", change
        train_keys = other.metrics["feature_cache"]["keys"][:-1]
        if "augment" not in change:
            train_keys = other.metrics["feature_cache"]["keys"]
        assert keys.isdisjoint(train_keys), change


@pytest.mark.parametrize("family", ["test_resnet", "test_efficientnet"])
@pytest.mark.parametrize("bn", ["frozen", "train"])
def test_cached_prefix_epoch_equals_full_network_epoch(source, family, bn):
    """Same views, seed and order: the suffix and head end with the same weights."""
    kw = {"backbone": family, "bn": bn, "epochs": 1, "patience": 0, "cache_dtype": "float32"}
    cached = _run(source, **kw)
    full = _run(source, **kw, cache=False)
    assert cached.metrics["feature_cache"]["mode"] == "cached"
    assert full.metrics["feature_cache"]["mode"] == "on-the-fly"
    a, b = cached.model.state_dict(), full.model.state_dict()
    trained = [k for k, v in a.items() if not torch.equal(v, _initial(family, source)[k])]
    assert trained  # something did train
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


_INITIAL: dict[str, dict] = {}


def _initial(family, source):
    if family not in _INITIAL:
        cfg = TrainConfig(
            **{"backbone": family, **FT, "epochs": 1, "lr": 1e-12, "backbone_lr": 1e-12}
        )
        _INITIAL[family] = train(cfg, data=source, save=False, progress=False).model.state_dict()
    return _INITIAL[family]


def test_size_estimate_matches_the_file(source):
    from headstart.modalities.image.backbones import create_backbone
    from headstart.modalities.image.backbones.split import sequential_plan

    lb = create_backbone("test_resnet", weights="none", image_size=48)
    plan = sequential_plan(lb.backbone.model)
    ex = FeatureExtractor(lb, module=plan.prefix(10), cut="unit 10", dtype=np.float16)
    estimate = ex.estimate_bytes(source.train)
    fs = ex.extract(source.train)
    files = list((cache_root() / "features").rglob(f"{fs.key}.npy"))
    assert len(files) == 1
    header = 128  # .npy header
    assert abs(files[0].stat().st_size - estimate) <= header
    assert fs.features.dtype == np.float16


def test_budget_fallback_trains_on_the_fly(source, capsys):
    notes = []
    cfg = TrainConfig(**{"backbone": "test_resnet", **FT, "cache_budget": "1KB"})
    run = train(cfg, data=source, save=False, progress=False, say=notes.append)
    assert run.metrics["feature_cache"]["mode"] == "on-the-fly"
    budget = [n for n in notes if "budget" in n]
    assert len(budget) == 1 and "--cache-budget" in budget[0]


def test_finetune_command_uses_the_prefix_cache(image_folder, tmp_path):
    """Two fine-tunes in processes of their own: the second reads the first one's prefix."""
    args = ["--backbone", "test_resnet", "--weights", "none", "--image-size", "48", "--epochs", "2"]
    run_cli("train", image_folder, "--out", tmp_path / "frozen", *args, "--batch-size", "16")
    for name, given in (("ft1", []), ("ft2", ["--weight-decay", "0.01", "--no-flip"])):
        finetune = ["finetune", tmp_path / "frozen", "--unfreeze", "1", "--epochs", "2"]
        run_cli(*finetune, *given, "--out", tmp_path / name)
    import json

    # what a continuation keeps from its parent unless given, and what it is given
    sections = {
        n: json.loads((tmp_path / n / "config.json").read_text())["config"] for n in ("ft1", "ft2")
    }
    assert [sections[n]["training"]["batch_size"] for n in ("ft1", "ft2")] == [16, 16]
    assert sections["ft1"]["training"]["weight_decay"] is None  # the parent's: auto
    assert sections["ft2"]["training"]["weight_decay"] == 0.01
    assert [sections[n]["image"]["flip"] for n in ("ft1", "ft2")] == [True, False]

    m1 = json.loads((tmp_path / "ft1" / "metrics.json").read_text())["feature_cache"]
    m2 = json.loads((tmp_path / "ft2" / "metrics.json").read_text())["feature_cache"]
    assert m1["mode"] == "cached" and set(m1["hits"]) == {"computed"}
    assert set(m2["hits"]) == {"disk"}  # the second fine-tune reuses the first one's prefix
    assert "layer3" in m1["cut"]


def test_interrupted_extraction_is_never_trusted(source, monkeypatch):
    calls = {"n": 0}
    original = FeatureExtractor._compute

    def dying(self, images, view, seed, key, out):
        calls["n"] += 1
        out[: len(out) // 2] = 0.0  # half the rows written, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(FeatureExtractor, "_compute", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(source)
    leftovers = [p for p in Path(cache_root()).rglob("*") if p.is_file()]
    assert not [p for p in leftovers if p.suffix in (".npy", ".json")], leftovers
    monkeypatch.setattr(FeatureExtractor, "_compute", original)
    clear_memory_cache()
    run = _run(source)
    assert set(run.metrics["feature_cache"]["hits"]) == {"computed"}
    # an array whose completion marker (the JSON) never got written is not trusted either
    clear_memory_cache()
    for meta in Path(cache_root()).rglob("*.json"):
        meta.unlink()
    again = _run(source)
    assert set(again.metrics["feature_cache"]["hits"]) == {"computed"}


def test_augmented_view_does_not_depend_on_the_extraction_batch_size(source):
    """The cache key has no batch size, so the cached view must not depend on it."""
    from headstart.modalities.image.backbones import create_backbone

    lb = create_backbone("test_resnet", weights="none", image_size=48)
    views = {}
    for batch_size in (4, 7):
        clear_memory_cache()
        ex = FeatureExtractor(lb, batch_size=batch_size, cache=False)
        views[batch_size] = np.asarray(ex.extract(source.train, view=1, seed=3).features)
    np.testing.assert_allclose(views[4], views[7], rtol=1e-4, atol=1e-5)
    clear_memory_cache()
    plain = FeatureExtractor(lb, batch_size=4, cache=False)
    assert not np.allclose(np.asarray(plain.extract(source.train).features), views[4])
    other_view = np.asarray(plain.extract(source.train, view=2, seed=3).features)
    assert not np.allclose(other_view, views[4])  # views differ from each other
