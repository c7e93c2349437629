"""The linear probe as headstart's linear head (headstart.core.probe): equal to scikit-learn's
logistic regression, saved as the one linear layer it is, continued by fine-tuning; and
``--strategy auto``'s single shared forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import make_images, run_cli
from headstart import from_arrays
from headstart.core.config import TrainConfig
from headstart.core.evaluate import run_probabilities
from headstart.core.extractors import extractor_for
from headstart.core.model import loaded_from_run
from headstart.core.probe import PROBE_CS, fit_probe
from headstart.core.training import split_data, train

TINY = {"backbone": "test_efficientnet", "weights": "none", "image_size": 48}


def _noisy(n_per_class: int, n_classes: int, seed: int):
    """Pattern images with a fifth of the labels moved: the probe's C matters."""
    images, labels = make_images(n_per_class, size=24, n_classes=n_classes, seed=seed)
    rng = np.random.default_rng(seed)
    moved = rng.random(len(labels)) < 0.2
    shift = rng.integers(1, n_classes, len(labels))
    return images, np.where(moved, (labels + shift) % n_classes, labels)


@pytest.mark.parametrize("n_classes", [3, 2])
def test_the_probe_equals_scikit_learns_logistic_regression(n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg = TrainConfig(**TINY, head="linear")
    splits = split_data(cfg, from_arrays(*_noisy(40, n_classes, seed=n_classes)))
    run = train(cfg, data=splits, save=False)
    c = run.metrics["probe"]["C"]
    assert c in PROBE_CS and run.config.pooling == "avg"  # the probe's pooling by default
    ex = extractor_for(loaded_from_run(run))
    x_train = np.asarray(ex.extract(splits.train).features, np.float64)
    ten_lines = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    ten_lines.fit(x_train, splits.train.labels)
    for name in ("val", "test"):
        images = getattr(splits, name)
        ours, valid, _ = run_probabilities(run, images)
        assert valid.all()
        x = np.asarray(ex.extract(images).features, np.float64)
        np.testing.assert_allclose(ours, ten_lines.predict_proba(x), atol=1e-4)
    # the validation scores it chose C on are scikit-learn's too
    chosen = next(r for r in run.metrics["probe"]["tried"] if r["C"] == c)
    assert chosen["val_accuracy"] == pytest.approx(run.metrics["val_accuracy"], abs=1e-4)
    # one linear layer: the standardisation folded into its weights
    assert [type(m) for m in run.model.head] == [torch.nn.Flatten, torch.nn.Linear]


def test_fit_probe_chooses_c_on_validation_and_weights_classes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20))
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0.8).astype(int)  # about 1 in 5 positive
    fitted = fit_probe(x[:200], y[:200], x[200:], y[200:], 2)
    best = max(r["val_accuracy"] for r in fitted.tried)
    assert next(r for r in fitted.tried if r["C"] == fitted.C)["val_accuracy"] == best
    assert [r["C"] for r in fitted.tried] == sorted(PROBE_CS)
    # class weights move the boundary towards the rare class
    weights = np.where(y[:200] == 1, 4.0, 1.0)
    balanced = fit_probe(x[:200], y[:200], x[200:], y[200:], 2, sample_weight=weights)
    plain = (fitted.logits(x[200:]).argmax(1) == 1).sum()
    assert (balanced.logits(x[200:]).argmax(1) == 1).sum() >= plain


def test_a_probe_run_predicts_exports_and_continues(tmp_path):
    images, labels = _noisy(30, 3, seed=5)
    cfg = TrainConfig(**TINY, head="linear")
    run = train(cfg, data=from_arrays(images, labels), out=tmp_path / "probe")
    meta = json.loads((tmp_path / "probe" / "model.json").read_text())
    assert meta["head"]["kind"] == "linear" and meta["head"]["standardize"] is False
    # a fresh process predicts what this one does
    np.save(tmp_path / "few.npy", images[:5])
    out = tmp_path / "pred.csv"
    run_cli("predict", tmp_path / "probe", tmp_path / "few.npy", "--out", out)
    got = [line.split(",")[1] for line in out.read_text().splitlines()[1:]]
    expected = run.predict_proba(list(images[:5])).argmax(1)
    assert got == [run.class_names[i] for i in expected]
    r = run_cli("summary", "--run", tmp_path / "probe")
    assert f"the linear probe (C {run.metrics['probe']['C']:g})" in r.stdout
    # ONNX export, parity checked by ONNX Runtime on the run's own images
    pytest.importorskip("onnxruntime")
    run_cli("export", tmp_path / "probe", "--out", tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").is_file()
    # LP-FT: fine-tuning starts from the converged linear head, as saved
    from dataclasses import replace

    from headstart.core.runs import load_run

    cont = replace(
        load_run(tmp_path / "probe").config,
        strategy="fine-tune",
        unfreeze=1,
        epochs=1,
        parent=str(tmp_path / "probe"),
    )
    ft = train(cont, data=from_arrays(images, labels), out=tmp_path / "ft")
    assert ft.head_spec.kind == "linear" and not ft.head_spec.standardize
    assert ft.config.pooling == "avg" and ft.parent == str(tmp_path / "probe")


@pytest.mark.parametrize("ranked", [False, True])
def test_auto_makes_one_pretrained_forward_pass_before_fine_tuning(monkeypatch, ranked):
    """Issue 27: the ranking (``--backbone auto``), the advice, the cheap candidates (the
    lesson head, the probe on average-pooled features, every-depth features) read one
    extraction; the random-weight control runs on a sample."""
    from headstart.core.advise import CONTROL_SAMPLE, train_auto
    from headstart.modalities.image.features import FeatureExtractor

    events: list[tuple[str, str, int]] = []
    compute = FeatureExtractor._compute

    def counted(self, images, view, seed, key, out, items=None):
        n = len(images) if items is None else len(items)
        events.append((self.cut, images.name, n))
        return compute(self, images, view, seed, key, out, items)

    monkeypatch.setattr(FeatureExtractor, "_compute", counted)
    images, labels = _noisy(170, 3, seed=7)  # over CONTROL_SAMPLE training images
    cfg = TrainConfig(**TINY, strategy="auto", epochs=2)
    if ranked:
        cfg = TrainConfig(
            **{**TINY, "backbone": "auto"},
            candidates="test_efficientnet",
            strategy="auto",
            epochs=2,
        )
    run = train_auto(cfg, data=from_arrays(images, labels), save=False)
    names = [r["candidate"] for r in run.metrics["auto"]["auto"]["candidates"]]
    assert "last features, linear probe" in names
    first_tuning = next((i for i, e in enumerate(events) if e[0] != "pooled"), len(events))
    before = events[:first_tuning]
    pretrained = sum(n for _, name, n in before if "random-weight control" not in name)
    control = sum(n for _, name, n in before if "random-weight control" in name)
    assert pretrained == len(labels)  # every image once: train, validation and test
    assert control == CONTROL_SAMPLE  # the control's sample, not every training image
