"""Metrics, intervals, baselines, plots, the HTML report and compare."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from sklearn import metrics as skm

from conftest import make_images
from headstart.api import train
from headstart.core.config import TrainConfig
from headstart.core.evaluate import evaluate_run
from headstart.core.runs import load_run
from headstart.core.statistics import accuracy_interval, bootstrap_intervals, classification_metrics
from headstart.errors import DataError

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 4}


def test_metrics_on_hand_checkable_predictions():
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array(
        [
            [0.9, 0.1, 0],
            [0.2, 0.8, 0],
            [0.1, 0.7, 0.2],
            [0.1, 0.8, 0.1],
            [0, 0.3, 0.7],
            [0.6, 0.1, 0.3],
        ]
    )
    m = classification_metrics(y, proba, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)  # wrong: item 1 (-> b) and item 5 (-> a)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["c"]["recall"] == 0.5 and m["per_class"]["c"]["precision"] == 1.0
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro"))
    assert m["log_loss"] == pytest.approx(
        skm.log_loss(y, np.clip(proba, 1e-15, 1) / np.clip(proba, 1e-15, 1).sum(1, keepdims=True))
    )
    assert set(m["roc"]) == {"a", "b", "c"} and 0 <= m["macro_auc"] <= 1
    assert m["n"] == 6


def test_intervals_contain_the_estimate_and_narrow_with_more_data():
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 500, 5000):
        y = rng.integers(0, 4, n)
        pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 4, n))
        ci = bootstrap_intervals(y, pred, 4, n_boot=500)
        acc_ci = accuracy_interval(int(np.sum(y == pred)), n)
        acc = float(np.mean(y == pred))
        f1 = skm.f1_score(y, pred, average="macro")
        bal = skm.balanced_accuracy_score(y, pred)
        assert acc_ci[0] <= acc <= acc_ci[1]
        assert ci["macro_f1"][0] <= f1 <= ci["macro_f1"][1]
        assert ci["balanced_accuracy"][0] <= bal <= ci["balanced_accuracy"][1]
        widths.append(acc_ci[1] - acc_ci[0])
    assert widths[0] > widths[1] > widths[2]


def test_accuracy_interval_is_clopper_pearson_and_never_collapses():
    """17 of 17 right: about 80.5%-100% (a percentile bootstrap said 100%-100%)."""
    lo, hi = accuracy_interval(17, 17)
    assert lo == pytest.approx(0.025 ** (1 / 17))  # the exact lower limit when k = n
    assert round(100 * lo, 1) == 80.5 and hi == 1.0
    lo, hi = accuracy_interval(0, 17)
    assert lo == 0.0 and round(100 * hi, 1) == 19.5
    ci = stats.binomtest(7, 20).proportion_ci(method="exact")
    assert accuracy_interval(7, 20) == pytest.approx((ci.low, ci.high))
    assert all(v != v for v in accuracy_interval(0, 0))  # no examples: nan, not a number
    m = classification_metrics(np.zeros(17, int), np.eye(2)[np.zeros(17, int)], ["a", "b"])
    assert m["accuracy_ci95"] == accuracy_interval(17, 17)  # the one source


@pytest.fixture
def trained_run(image_folder, tmp_path):
    return train(TrainConfig(**TINY, data=str(image_folder)), out=tmp_path / "run", progress=False)


def test_train_writes_every_plot_and_a_self_contained_report(trained_run):
    path = trained_run.path
    for name in ("history", "confusion", "roc", "samples"):
        png = path / "plots" / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 1000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (path / "plots" / "augmented.png").exists()  # trained without augmentation
    html = (path / "report.html").read_text()
    for section in (
        "Data",
        "Configuration",
        "Parameters",
        "Training history",
        "Metrics",
        "Confusion matrix",
        "ROC curves",
        "Most confident mistakes",
    ):
        assert f">{section}</h2>" in html, section
    assert "majority class" in html and "95% interval" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)  # nothing fetched
    assert "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") >= 4


def test_two_histories_plot(trained_run, tmp_path):
    from headstart.core.plots import plot_histories

    out = plot_histories(
        {"Frozen": trained_run.history, "Finetuned": trained_run.history}, tmp_path / "two.png"
    )
    assert out.stat().st_size > 1000


def test_evaluate_external_data_maps_classes_by_name(trained_run, tmp_path):
    # external arrays whose class order differs from the run's (circle, square, stripes)
    images, labels = make_images(3, seed=8)
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "class_names.txt").write_text("stripes\ncircle\nsquare\n")
    to_ext = {0: 1, 1: 2, 2: 0}  # circle -> 1, square -> 2, stripes -> 0 in the external order
    keep = np.array([0, 1, 3, 4, 5, 6])  # 2 circles, 3 squares, 1 stripes
    np.save(ext / "train_images.npy", images[keep])
    np.save(ext / "train_labels.npy", np.array([to_ext[int(v)] for v in labels[keep]]))
    result = evaluate_run(load_run(trained_run.path), ext)
    assert result["n"] == 6
    support = {k: v["support"] for k, v in result["per_class"].items()}
    assert support == {"circle": 2, "square": 3, "stripes": 1}
    (ext / "class_names.txt").write_text("stripes\ncircle\ntriangle\n")
    with pytest.raises(DataError, match="'triangle' are not classes of this run"):
        evaluate_run(load_run(trained_run.path), ext)


def test_compare_runs_in_one_table(trained_run, image_folder, tmp_path):
    other = train(
        TrainConfig(**{**TINY, "backbone": "test_efficientnet"}, data=str(image_folder)),
        out=tmp_path / "other",
        progress=False,
    )
    result = evaluate_run(load_run(trained_run.path), compare=[load_run(other.path)])
    kinds = [r["kind"] for r in result["table"]]
    assert kinds == ["this run", "baseline", "compared run"]
    assert all(r["n"] == result["n"] for r in result["table"])


def test_compare_backbones_leaderboard(image_folder, tmp_path):
    from headstart.core.compare import compare_backbones

    cfg = TrainConfig(**TINY, data=str(image_folder))
    result = compare_backbones(cfg, ["test_resnet", "test_efficientnet"], tmp_path / "cmp")
    rows = result["leaderboard"]
    assert {r["name"] for r in rows} == {"test_resnet", "test_efficientnet"}
    # selected on validation, reported on held-out data (here no test split: said so)
    assert rows[0]["val_accuracy"] >= rows[1]["val_accuracy"]
    assert [r["rank"] for r in rows] == [1, 2]
    assert result["evaluated_on"] == "validation, used for model selection: optimistic"
    for r in rows:
        assert r["accuracy_ci95"][0] <= r["accuracy"] <= r["accuracy_ci95"][1]
        assert r["parameters"] > 0 and r["feature_extraction_seconds"] >= 0
    assert (tmp_path / "cmp" / "leaderboard.json").is_file()
    assert (tmp_path / "cmp" / "leaderboard.png").stat().st_size > 1000
    assert "Backbones compared" in (tmp_path / "cmp" / "compare.html").read_text()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium")
def test_report_renders_in_headless_chromium(trained_run, tmp_path):
    shot = tmp_path / "report.png"
    r = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            (trained_run.path / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), r.stderr
    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[0] >= 2000 and img.std() > 10  # a page with content, not blank
