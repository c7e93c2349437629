"""Features from every depth, the linear probe on them (its C chosen on validation), and
test-time augmentation: shapes, equality with hooking the stages by hand, the cache, saved runs
in a fresh process, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import make_images, run_cli
from headstart import from_arrays
from headstart.api import train
from headstart.core.cache import clear_memory_cache
from headstart.core.config import TrainConfig
from headstart.core.featurespec import FeatureSpec
from headstart.core.probe import PROBE_CS
from headstart.core.runs import load_run
from headstart.errors import ConfigError
from headstart.modalities.image.backbones.depth import pooled_stats, stage_ends
from headstart.modalities.image.backbones.model import create_backbone
from headstart.modalities.image.backbones.stages import stage_map
from headstart.modalities.image.features import FeatureExtractor

TINY = {"backbone": "test_efficientnet", "weights": "none", "image_size": 48, "epochs": 3}


@pytest.fixture
def source():
    return from_arrays(*make_images(12, size=32, seed=4))


@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize("stats", ["avg+max", "avg+std"])
def test_last_columns_are_the_last_features(pooling, stats):
    torch.manual_seed(0)
    last = create_backbone("test_resnet", weights="none", image_size=48, pooling=pooling)
    torch.manual_seed(0)
    multi = create_backbone(
        "test_resnet",
        weights="none",
        image_size=48,
        pooling=pooling,
        features=FeatureSpec("multi", "auto", stats),
    )
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        got = multi.backbone.eval()(x)[:, multi.backbone.last_columns()]
        torch.testing.assert_close(got, last.backbone.eval()(x))


@pytest.mark.parametrize("name", ["test_efficientnet", "test_resnet"])
def test_every_depth_shapes_follow_the_stage_map(name):
    torch.manual_seed(0)
    last = create_backbone(name, weights="none", image_size=48)
    multi = create_backbone(
        name, weights="none", image_size=48, features=FeatureSpec("multi", "all")
    )
    n_stages = len(stage_map(multi.backbone.model).stages)
    taps = multi.backbone.taps
    # every stage but the last (which is the last features, always included)
    assert taps.stages == list(range(1, n_stages))
    assert taps.names == stage_ends(multi.backbone.model)
    with torch.no_grad():
        x = torch.randn(2, 3, 48, 48)
        widths = []
        hooks = [
            multi.backbone.model.get_submodule(n).register_forward_hook(
                lambda _m, _i, out: widths.append(out.shape[1])
            )
            for n in taps.names
        ]
        multi.backbone.model.forward_features(x)
        for h in hooks:
            h.remove()
        taps.collect(multi.backbone.model)  # clear what the plain forward left
    # each tapped stage's and the last map's average and maximum (max is the --pooling)
    expected = 2 * sum(widths) + 2 * last.backbone.num_features
    assert multi.backbone.num_features == expected
    auto = create_backbone(name, weights="none", image_size=48, features=FeatureSpec("multi"))
    assert auto.backbone.taps.stages == [n_stages - 2, n_stages - 1]


@pytest.mark.parametrize("pooling", ["avg+max", "avg+std"])
def test_every_depth_equals_hooking_the_stages_by_hand(pooling):
    torch.manual_seed(0)
    lb = create_backbone(
        "test_efficientnet",
        weights="none",
        image_size=48,
        pooling="max",  # the lesson's: avg+std statistics lack it, so it is appended
        features=FeatureSpec("multi", "1,3", pooling),
    )
    model = lb.backbone.eval()
    x = torch.randn(3, 3, 48, 48)
    ends = stage_ends(model.model)
    captured = {}
    hooks = [
        model.model.get_submodule(ends[s - 1]).register_forward_hook(
            lambda _m, _i, out, s=s: captured.__setitem__(s, out)
        )
        for s in (1, 3)
    ]
    with torch.no_grad():
        got = model(x)
        feats = model.model.forward_features(x)
    for h in hooks:
        h.remove()
    model.taps.collect(model.model)

    def stats(t):
        flat = t.flatten(2)
        other = flat.amax(2) if pooling == "avg+max" else flat.std(2, unbiased=False)
        return torch.cat([flat.mean(2), other], 1)

    extra = [] if pooling == "avg+max" else [feats.amax(dim=(2, 3))]  # --pooling max
    by_hand = torch.cat([stats(captured[1]), stats(captured[3]), stats(feats), *extra], 1)
    torch.testing.assert_close(got, by_hand)
    assert pooled_stats(torch.ones(1, 2, 3), "avg+std").shape == (1, 6)  # tokens: (B, N, C)


def test_every_depth_cache_is_keyed_by_stages_and_statistics(source, monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory_cache()
    images = source.train

    def extractor(spec):
        torch.manual_seed(0)
        lb = create_backbone("test_efficientnet", weights="none", image_size=48, features=spec)
        return FeatureExtractor(lb)

    last = extractor(None)
    multi = extractor(FeatureSpec("multi"))
    first = multi.extract(images)
    assert first.hit == "" and first.features.shape[1] == multi.loaded.backbone.num_features
    assert multi.extract(images).hit == "memory"
    clear_memory_cache()
    again = extractor(FeatureSpec("multi")).extract(images)
    assert again.hit == "disk" and np.array_equal(again.features, first.features)
    keys = {
        extractor(spec).key(images)
        for spec in (
            FeatureSpec("multi"),
            FeatureSpec("multi", "all"),
            FeatureSpec("multi", "auto", "avg+std"),
        )
    }
    assert len(keys) == 3 and last.key(images) not in keys
    # the last features' key has no trace of the new options: earlier cache entries stay valid
    assert "features" not in last.model_key()
    # the every-depth pass stored the last features too: no second forward pass, same values
    clear_memory_cache()
    reused = last.extract(images)
    assert reused.hit == "disk"
    direct = FeatureExtractor(last.loaded, cache=False).extract(images)
    np.testing.assert_allclose(reused.features, direct.features, rtol=1e-5, atol=1e-5)


def test_linear_head_on_wide_features_is_deterministic_and_reloads(source, tmp_path):
    cfg = TrainConfig(**TINY, features="multi", head="linear", tta=True)
    a = train(cfg, data=source, out=tmp_path / "a", progress=False, report=False)
    b = train(cfg, data=source, save=False, progress=False)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    probe = a.metrics["probe"]
    assert len(probe["tried"]) == len(PROBE_CS) and "weight_decay" not in a.metrics
    chosen = next(r for r in probe["tried"] if r["C"] == probe["C"])
    assert chosen["val_accuracy"] == max(r["val_accuracy"] for r in probe["tried"])
    assert a.metrics["features"]["kind"] == "multi" and a.metrics["features"]["stages"]
    # one linear layer: the probe's standardisation is folded into its weights
    assert [type(m) for m in a.model.head] == [torch.nn.Flatten, torch.nn.Linear]
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    assert meta["features"]["kind"] == "multi" and meta["tta"] is True
    # a fresh process predicts what training measured (same features, same TTA)
    np.save(tmp_path / "images.npy", source.train.array[:6])
    out = tmp_path / "pred.csv"
    run_cli("predict", tmp_path / "a", tmp_path / "images.npy", "--out", out)
    rows = out.read_text().splitlines()[1:]
    reloaded = load_run(tmp_path / "a")
    expected = reloaded.predict_proba(list(source.train.array[:6])).argmax(1)
    got = [reloaded.class_names.index(line.split(",")[1]) for line in rows]
    assert got == expected.tolist()


def test_tta_averages_each_image_with_its_mirror(source, tmp_path):
    from headstart.core.training import split_data

    cfg = TrainConfig(**TINY, tta=True)
    splits = split_data(cfg, source)
    run = train(cfg, data=splits, save=False, progress=False)
    model = run.model.eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        plain = model.head(model.backbone(x))
        mirror = model.head(model.backbone(x.flip(-1)))
        torch.testing.assert_close(model(x), (plain + mirror) / 2)
    # the metrics were measured the same way the saved model predicts
    from headstart.core.evaluate import run_probabilities

    run.save(tmp_path / "r")
    proba, valid, _ = run_probabilities(load_run(tmp_path / "r"), splits.val)
    y = splits.val.labels[valid]
    assert run.metrics["val_accuracy"] == pytest.approx(float(np.mean(proba.argmax(1) == y)))


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"features": "multi", "strategy": "fine-tune"}, "--features last to fine-tune"),
        ({"features": "deep"}, "--features must be one of last, multi"),
        ({"features": "multi", "feature_stages": "0"}, "stage numbers from 1"),
        ({"features": "multi", "feature_stages": "two"}, "stage numbers from 1"),
        ({"stage_pooling": "median"}, "--stage-pooling must be one of"),
        ({"tta": True, "flip": False}, "mirror images may be another class"),
        ({"weight_decay": -1.0}, "--weight-decay must be auto or 0 or more"),
        ({"budget": 0.0}, "--budget must be a positive number of minutes"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(settings, words):
    with pytest.raises(ConfigError, match=words.replace("+", r"\+")):
        TrainConfig(**settings)


def test_cli_every_depth_end_to_end_and_bad_input(image_folder, tmp_path):
    tiny = ["--backbone", "test_efficientnet", "--weights", "none", "--image-size", "48"]
    out = tmp_path / "run"
    r = run_cli(
        "train", image_folder, *tiny, "--epochs", "2", "--features", "multi",
        "--feature-stages", "all", "--head", "linear", "--out", out,
    )  # fmt: skip
    assert "linear probe" in r.stderr and "chosen on validation" in r.stderr  # says its C
    assert "note: --epochs does not apply to the linear probe" in r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["features"]["stages"] == [1, 2, 3, 4]
    html = (out / "report.html").read_text()
    dims = f"{metrics['features']['dimensions']:,} dimensions"
    assert f"1, 2, 3, 4 + the last features, {dims} (all)" in html
    c = metrics["probe"]["C"]
    assert f"C {c:g} chosen on validation" in html and "every-depth features" in r.stdout
    r = run_cli("train", image_folder, *tiny, "--feature-stages", "9", "--features", "multi",
                "--out", tmp_path / "bad", check=False)  # fmt: skip
    assert r.returncode != 0 and "this backbone has 5 stages" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    r = run_cli("finetune", out, "--out", tmp_path / "ft", check=False)
    assert r.returncode != 0 and "features from every depth" in r.stdout + r.stderr
    assert not (tmp_path / "ft").exists()
    r = run_cli("train", image_folder, *tiny, "--weight-decay", "lots", check=False)
    assert r.returncode != 0 and "--weight-decay must be auto or a number" in r.stdout + r.stderr
