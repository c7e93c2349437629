"""The scikit-learn estimator: its parameters are TrainConfig's, its contract is sklearn's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from conftest import make_images
from headstart import ImageClassifier
from headstart.core.config import TrainConfig
from headstart.core.estimator import ESTIMATOR_DEFAULTS

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 2}
DATA_FIELDS = {"data", "filename_column", "label_column", "text_column", "parent"}


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "save"])
def test_every_method_of_an_unfitted_classifier_raises_not_fitted(method, tmp_path):
    images, labels = make_images(2, seed=1)
    args = {"score": (images, labels), "save": (tmp_path / "run",)}.get(method, (images,))
    with pytest.raises(NotFittedError):
        getattr(ImageClassifier(**TINY), method)(*args)
    assert not (tmp_path / "run").exists()


def test_parameters_are_trainconfigs_fields_with_its_defaults():
    params = ImageClassifier().get_params()
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(params) == (set(fields) - DATA_FIELDS) | {"verbose"}
    for name, value in params.items():
        if name != "verbose":
            assert value == ESTIMATOR_DEFAULTS.get(name, fields[name]), name
    # the one documented departure: scikit-learn holds out its own test data
    assert ESTIMATOR_DEFAULTS == {"test_split": 0.0}
    assert params["verbose"] is False
    # the settings the CLI has are reachable from a grid search
    assert {"bn", "schedule", "class_weights", "test_split", "label_smoothing"} <= set(params)
    assert {"warmup_epochs", "cache_dtype", "workers", "candidates"} <= set(params)
    # a text classifier shows the encoder it trains on, not the image default
    from headstart import TextClassifier
    from headstart.modalities.text.names import DEFAULT_TEXT_ENCODER

    text = TextClassifier()
    assert text.get_params()["backbone"] == DEFAULT_TEXT_ENCODER == clone(text).backbone
    assert "backbone" not in repr(text) and "epochs=2" in repr(TextClassifier(epochs=2))


def test_clone_and_get_params_round_trip():
    clf = ImageClassifier(**TINY, bn="train", schedule="cosine", label_smoothing=0.1)
    c = clone(clf)
    assert c is not clf and c.get_params() == clf.get_params()
    assert c.set_params(bn="frozen").bn == "frozen" and clf.bn == "train"
    assert "bn='train'" in repr(clf)  # sklearn shows what differs from the defaults
    with pytest.raises(TypeError, match="unexpected"):
        ImageClassifier(data="somewhere")


def test_grid_search_over_bn():
    from sklearn.model_selection import GridSearchCV

    images, labels = make_images(6, seed=7)
    clf = ImageClassifier(**{**TINY, "strategy": "fine-tune", "epochs": 1})
    grid = GridSearchCV(clf, {"bn": ["frozen", "train"]}, cv=2).fit(images, labels)
    assert grid.best_params_["bn"] in ("frozen", "train")
    assert grid.best_estimator_.run_.config.bn == grid.best_params_["bn"]
    assert set(grid.predict(images[:3])) <= set(labels)


def test_strategy_auto_decides_from_the_data_and_writes_no_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images, labels = make_images(35, size=24, seed=9)  # 21 validation images: checked
    clf = ImageClassifier(**{**TINY, "strategy": "auto", "epochs": 1}).fit(images, labels)
    auto = clf.run_.metrics["auto"]
    assert auto["advice"]["strategy"] in ("feature-extraction", "fine-tune", "freeze-first")
    kept = [r for r in auto["auto"]["candidates"] if r["status"] == "kept"]
    assert len(kept) == 1 and kept[0]["val_accuracy"] == clf.run_.metrics["val_accuracy"]
    assert clf.run_.path is None and list(tmp_path.iterdir()) == []
    proba = clf.predict_proba(images[:4])
    assert proba.shape == (4, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    saved = clf.save(tmp_path / "kept")
    assert (saved / "model.json").is_file()
