"""Deciding for the user: LogME, backbone ranking, the four scenarios, auto end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_images
from headstart import from_arrays
from headstart.core.advise import rank_backbones, train_auto
from headstart.core.advise.scores import knn_accuracy, logme, probe_accuracy
from headstart.core.config import TrainConfig
from headstart.core.data import load_data
from headstart.core.scenarios import recommend, transfer_gain
from headstart.notes import speaking


def _blobs(separable: bool, n: int = 300, d: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, d))
    if separable:
        x[:, :3] += 6.0 * np.eye(3)[y]
    return x, y


def test_logme_ranks_separable_features_above_noise():
    sep, y1 = _blobs(True)
    noise, y2 = _blobs(False)
    assert logme(sep, y1) > logme(noise, y2)
    assert probe_accuracy(sep, y1) > 0.95 > 0.6 > probe_accuracy(noise, y2)
    assert knn_accuracy(sep, y1) > knn_accuracy(noise, y2)
    # more informative dimensions, higher evidence; still finite when d > n
    weak = sep.copy()
    weak[:, :3] = weak[:, :3] / 6.0 * 1.5
    assert logme(sep, y1) > logme(weak, y1)
    wide, yw = _blobs(True, n=40, d=200)
    assert np.isfinite(logme(wide, yw))


def _evidence_direct(f: np.ndarray, t: np.ndarray, alpha: float, beta: float) -> float:
    """LogME's evidence (You et al., ICML 2021, eq. 2) the explicit D x D way."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    _, log_det = np.linalg.slogdet(a)
    return (
        n / 2 * np.log(beta)
        + d / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * float(np.sum((f @ m - t) ** 2))
        - alpha / 2 * float(m @ m)
        - 0.5 * log_det
    )


def _logme_direct(f: np.ndarray, y: np.ndarray, maximise: bool) -> float:
    """Per-image evidence, averaged over classes, at alpha and beta found directly: by the
    published fixed point (gamma from the eigenvalues of F^T F, m from A) or by maximising
    the explicit evidence numerically."""
    from scipy.optimize import minimize

    n, d = f.shape
    eig = np.clip(np.linalg.eigvalsh(f.T @ f), 0.0, None)
    out = []
    for c in np.unique(y):
        t = (y == c).astype(np.float64)
        alpha, beta = 1.0, 1.0
        for _ in range(1000):
            m = beta * np.linalg.solve(alpha * np.eye(d) + beta * f.T @ f, f.T @ t)
            gamma = float((beta * eig / (alpha + beta * eig)).sum())
            new_alpha = gamma / float(m @ m)
            new_beta = (n - gamma) / float(np.sum((f @ m - t) ** 2))
            done = abs(new_alpha / new_beta - alpha / beta) <= 1e-10 * alpha / beta
            alpha, beta = new_alpha, new_beta
            if done:
                break
        if maximise:
            res = minimize(
                lambda v, t=t: -_evidence_direct(f, t, np.exp(v[0]), np.exp(v[1])),
                x0=np.log([alpha, beta]),
                method="Nelder-Mead",
                options={"xatol": 1e-8, "fatol": 1e-10},
            )
            alpha, beta = np.exp(res.x)
        out.append(_evidence_direct(f, t, alpha, beta) / n)
    return float(np.mean(out))


def _rank_deficient_cases():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    full = rng.normal(size=(300, 64)) + 1.5 * np.eye(64)[y]
    dead = np.maximum(full, 0.0)
    dead[:, 20:40] = 0.0  # dead ReLU units: 20 all-zero columns
    y2 = rng.integers(0, 3, 80)
    dup = np.maximum(rng.normal(size=(80, 160)) + 1.5 * np.eye(160)[y2], 0.0)
    # 10 images twice, with independent labels (the label noise keeps the evidence bounded:
    # with equal labels, y lies in span(F) and the evidence grows without bound with beta)
    dup[70:] = dup[:10]
    return {"full-rank": (full, y), "zero-columns": (dead, y), "duplicated-rows": (dup, y2)}


@pytest.mark.parametrize("case", ["full-rank", "zero-columns", "duplicated-rows"])
def test_logme_equals_the_evidence_evaluated_directly(case):
    f, y = _rank_deficient_cases()[case]
    assert logme(f, y) == pytest.approx(_logme_direct(f, y, maximise=False), abs=1e-6)
    assert logme(f, y) == pytest.approx(_logme_direct(f, y, maximise=True), abs=1e-6)


def test_logme_is_finite_on_degenerate_features():
    y = np.array([0, 1] * 20)
    assert np.isfinite(logme(np.zeros((40, 8)), y))
    assert np.isfinite(logme(np.ones((40, 8)), y))


@pytest.mark.slow
def test_random_weights_rank_below_pretrained_on_real_photos():
    """scikit-image's lfw_subset (real face / non-face crops) with the real Lite0 weights."""
    splits = load_data("demo:lfw", val_split=0.5, seed=0)
    ranking = rank_backbones(
        splits, ["tf_efficientnet_lite0@96", "tf_efficientnet_lite0@96:random"]
    )
    assert [r["name"] for r in ranking] == [
        "tf_efficientnet_lite0@96",
        "tf_efficientnet_lite0@96:random",
    ]
    best, control = ranking  # ranked by LogME
    assert best["logme"] > control["logme"] + 0.2
    assert best["probe"] > control["probe"] and best["knn"] > control["knn"]
    assert best["weights"].startswith("package") and control["weights"].startswith("random")


@pytest.mark.parametrize(
    ("per_class", "classes", "gain", "strategy"),
    [
        (50, 10, 0.8, "feature-extraction"),  # small, similar
        (50, 10, 0.2, "freeze-first"),  # small, dissimilar
        (2000, 10, 0.8, "full"),  # large, similar
        (2000, 10, 0.1, "scratch"),  # large, dissimilar
        (600, 10, 0.9, "feature-extraction"),
    ],  # 6,000 images: not large yet
)
def test_four_scenarios_rule(per_class, classes, gain, strategy):
    advice = recommend(np.full(classes, per_class), gain, n_blocks=18)
    assert advice.strategy == strategy
    assert advice.large == (per_class * classes >= 10_000)
    assert len(advice.reasons) == 3 and all(isinstance(r, str) for r in advice.reasons)
    tiny = recommend(np.full(3, 20), gain, n_blocks=18)  # 60 examples: a warning more
    assert tiny.strategy in ("feature-extraction", "freeze-first") and len(tiny.reasons) == 4
    assert "with only 60 training images every choice here is close to chance" in tiny.reasons[3]
    if strategy == "freeze-first":
        assert advice.layers == 9 and "--layers 9" in advice.command_line()


def test_transfer_gain():
    assert transfer_gain(0.9, 0.5) == pytest.approx(0.8)
    assert transfer_gain(0.5, 0.5) == 0.0
    assert transfer_gain(0.4, 0.5) < 0


def test_backbone_auto_strategy_auto_end_to_end(tmp_path):
    images, labels = make_images(40, size=24, seed=9)  # 24 validation images: enough to check
    source = from_arrays(images, labels)
    cfg = TrainConfig(
        backbone="auto",
        candidates="test_resnet,test_efficientnet",
        strategy="auto",
        weights="none",
        image_size=48,
        epochs=2,
    )
    # an earlier run at --out is replaced atomically: it stays whole until the new one moves in
    from headstart.api import train

    out = tmp_path / "auto"
    earlier = TrainConfig(backbone="test_resnet", weights="none", image_size=48, hidden=8)
    train(earlier, data=source, out=out, progress=False)
    earlier_weights = (out / "model.safetensors").read_bytes()
    notes = []

    def say(note: str) -> None:
        notes.append(note)
        assert (out / "model.safetensors").read_bytes() == earlier_weights
        assert not (out / "advice.json").exists()

    with speaking(say):
        run = train_auto(cfg, data=source, out=out, overwrite=True)
    assert run.path == out and (out / "model.safetensors").read_bytes() != earlier_weights
    decisions = json.loads((out / "advice.json").read_text())
    auto = decisions["auto"]
    # a kept continuation brings its frozen parent beside it; nothing else is left behind
    beside = ["auto", "auto-frozen"] if run.parent else ["auto"]
    assert sorted(p.name for p in tmp_path.iterdir()) == beside
    assert run.backbone_name in ("test_resnet", "test_efficientnet")
    assert [r["rank"] for r in decisions["ranking"]] == [1, 2]
    assert decisions["ranking"][0]["timm_name"] == run.backbone_name
    # random weights on both sides: no transfer gain, so "small data, dissimilar"
    assert decisions["advice"]["strategy"] == "freeze-first"
    tried = [r for r in auto["candidates"] if r["status"] != "skipped"]
    kept = [r for r in auto["candidates"] if r["status"] == "kept"]
    assert len(kept) == 1 and kept[0]["candidate"] == auto["kept"]
    assert run.metrics["val_accuracy"] == pytest.approx(kept[0]["val_accuracy"])
    assert tried[0]["candidate"] == "last features, lesson head"
    # the top stage first, then the advised freeze-first as the deeper rung
    assert any(r["rung"] == 3 and "--unfreeze 1" in r["flags"] for r in auto["candidates"])
    assert "(chosen by --strategy auto)" in (out / "report.html").read_text()
    assert any(r["rung"] == 4 and "freeze-first" in r["flags"] for r in auto["candidates"])
    html = (tmp_path / "auto" / "report.html").read_text()
    assert "Backbones ranked on your data" in html and "four scenarios" in html
    assert "the candidates tried" in html and auto["kept"] in html
    assert any("ranks first" in n for n in notes) and any("kept" in n for n in notes)
