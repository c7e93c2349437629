"""Deciding for a text user: encoders ranked with a random-weight control, the four scenarios
in text's words, ``--strategy auto`` climbing text's ladder, ``compare`` over encoders."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from conftest import run_cli  # noqa: E402
from test_text import reviews, write_table  # noqa: E402


def test_advise_ranks_text_encoders_with_a_random_control(tmp_path):
    data = write_table(tmp_path / "reviews.csv", reviews(12))
    out = tmp_path / "advice"
    r = run_cli("advise", str(data), "--out", str(out))  # default: offline encoders + control
    decisions = json.loads((out / "advice.json").read_text())
    names = [row["name"] for row in decisions["ranking"]]
    assert sorted(names) == ["minilm", "minilm:random"]
    control = next(row for row in decisions["ranking"] if row["random"])
    assert control["weights"].startswith("random")
    assert all(row["input"] == "256 tokens" for row in decisions["ranking"])
    reasons = " ".join(decisions["advice"]["reasons"])
    assert "training texts" in reasons and "image" not in reasons
    assert decisions["advice"]["measurements"]["backbone"].endswith("all-MiniLM-L6-v2")
    assert "training texts" in r.stdout
    assert "advice.html" in r.stdout and (out / "advice.html").is_file()
    assert "features of the training texts" in (out / "advice.html").read_text()


def test_strategy_auto_on_text_climbs_to_the_top_layer_and_skips_image_rungs(tmp_path):
    from headstart.core.advise import train_auto
    from headstart.core.config import TrainConfig

    data = write_table(tmp_path / "reviews.csv", reviews(12))
    cfg = TrainConfig(data=str(data), backbone="test_bert", strategy="auto", epochs=2, budget=5)
    run = train_auto(cfg, save=False)
    rows = run.metrics["auto"]["auto"]["candidates"]
    names = [r["candidate"] for r in rows]
    # rungs text does not have are not listed at all (every depth, image sizes, mirror TTA)
    assert not any("every-depth" in n or " px" in n or "TTA" in n for n in names)
    assert any(n.startswith("top layer on the cached prefix") for n in names)
    assert run.config.modality == "text" and run.metrics["chosen_by"] == "auto"
    # SetFit's contrastive stage is on text's ladder, with its estimated cost
    setfit = next(r for r in rows if r["candidate"].startswith("SetFit"))
    assert setfit["flags"] == "--setfit" and setfit["estimate_seconds"] > 0


def test_compare_trains_each_text_encoder_on_one_split(tmp_path):
    data = write_table(tmp_path / "reviews.csv", reviews(12))
    out = tmp_path / "cmp"
    run_cli(
        "compare", str(data), "--backbones", "test_bert,minilm", "--epochs", "2", "--out", str(out)
    )
    board = json.loads((out / "leaderboard.json").read_text())
    assert {r["name"] for r in board["leaderboard"]} == {"test_bert", "minilm"}
    assert all(r["input"] == "256 tokens" for r in board["leaderboard"])
    splits = {
        json.dumps(json.loads((out / n / "split.json").read_text()))
        for n in ("test_bert", "minilm")
    }
    assert len(splits) == 1  # the same texts in the same splits
    # the classic baseline beside the backbones, each of them alone (no blend) and paired
    classic = board["classic_baseline"]
    assert classic["name"] == "TF-IDF + logistic regression" and classic["n"] == board["n"]
    for r in board["leaderboard"]:
        vs = r["vs_classic_baseline"]
        assert vs["accuracy_difference"] == pytest.approx(r["accuracy"] - classic["accuracy"])
        run = json.loads((out / r["name"] / "model.json").read_text())
        assert run["classic_weight"] == 0
    page = (out / "compare.html").read_text()
    assert "minus the classic baseline" in page and "TF-IDF + logistic regression" in page


def test_the_random_weight_control_reads_a_stratified_sample_only(tmp_path, monkeypatch):
    """The advice's pretrained features cover every training text (training reads them
    next); the random-weight control, which serves nothing else, a stratified sample of
    CONTROL_SAMPLE, and both probes compare on that sample."""
    import numpy as np

    import headstart.core.advise as advise_module
    from headstart.core.data import load_data

    labels = np.array([0] * 30 + [1] * 10)
    rows = advise_module.control_sample(labels, size=20)
    assert len(rows) == 20 and np.array_equal(rows, np.sort(rows))
    assert np.bincount(labels[rows]).tolist() == [15, 5]  # stratified
    assert np.array_equal(advise_module.control_sample(labels, size=20), rows)  # seeded
    assert np.array_equal(advise_module.control_sample(labels, size=99), np.arange(40))

    monkeypatch.setattr(advise_module, "CONTROL_SAMPLE", 10)
    splits = load_data(str(write_table(tmp_path / "r.csv", reviews(20))), seed=0)
    m = advise_module.measure_similarity(splits, "test_bert", weights="none")
    n = len(splits.train)
    assert n > 10 and m["n_train"] == n and m["probe_sample"] == 10
    assert m["feature_examples"] == {"pretrained": n, "random": 10}
    assert sum(m["train_class_counts"]) == n
