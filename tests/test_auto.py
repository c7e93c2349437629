"""``--strategy auto``: the budgeted ladder of candidates (headstart.core.advise.auto)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_images
from headstart.core.advise import train_auto
from headstart.core.advise.auto import finetune_size, native_side, paired_noise
from headstart.core.config import TrainConfig
from headstart.core.data import from_arrays

TINY = {"backbone": "test_efficientnet", "weights": "none", "image_size": 48, "epochs": 2}


def test_paired_noise_counts_only_the_images_where_the_two_disagree():
    y = np.zeros(100, int)
    old = np.zeros(100, int)
    new = old.copy()
    assert paired_noise(y, new, old) == (0.0, 0.0)  # identical predictions: no noise
    new[:10] = 1  # new is wrong on 10 images old gets right
    diff, se = paired_noise(y, new, old)
    assert diff == pytest.approx(-0.10) and 0 < se < 0.10
    old[50:70] = 1  # and right on 20 where old is wrong
    diff, se = paired_noise(y, new, old)
    assert diff == pytest.approx(0.10)
    assert se == pytest.approx(np.sqrt(30 - 10**2 / 100) / 100)


def test_finetune_size_comes_from_the_native_size():
    assert finetune_size(8, 224) == 96  # digits
    assert finetune_size(25, 224) == 96  # lfw faces
    assert finetune_size(64, 224) == 128  # the lesson's photos
    assert finetune_size(300, 224) == 224  # large images: the backbone's own size
    assert finetune_size(0, 260) == 260  # unknown: the backbone's own size
    source = from_arrays(*make_images(3, size=40))
    assert native_side(source.train) == 40


def test_the_ladder_respects_a_tiny_budget_and_says_why(tmp_path):
    source = from_arrays(*make_images(30, size=24, seed=9))
    notes: list[str] = []
    cfg = TrainConfig(**TINY, strategy="auto", budget=0.001)  # 0.06 s
    run = train_auto(cfg, data=source, save=False, progress=False, say=notes.append)
    rows = run.metrics["auto"]["auto"]["candidates"]
    # the first candidate always trains (there must be a model), stopped by the budget
    assert rows[0]["status"] == "kept" and rows[0]["candidate"] == "last features, lesson head"
    assert rows[0]["out_of_time"] and run.metrics["epochs_run"] == 1
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert {r["rung"] for r in skipped} >= {2, 3, 4}
    assert any("budget is spent" in r["reason"] for r in skipped)
    assert any("skipped" in n and "budget is spent" in n for n in notes)
    assert run.metrics["auto"]["auto"]["kept"] == rows[0]["candidate"]


def test_auto_selects_on_validation_and_reports_on_test(tmp_path):
    source = from_arrays(*make_images(40, size=24, seed=3))  # 40 per class: a test split
    cfg = TrainConfig(**TINY, strategy="auto")
    run = train_auto(cfg, data=source, save=False, progress=False, say=lambda _: None)
    auto = run.metrics["auto"]["auto"]
    kept = [r for r in auto["candidates"] if r["status"] == "kept"]
    assert len(kept) == 1
    assert run.metrics["val_accuracy"] == pytest.approx(kept[0]["val_accuracy"])
    head = run.metrics["headline"]
    assert head["split"] == "test" and not head["optimistic"]
    # the test split is not among the images any candidate was chosen on
    assert run.metrics["n_examples"]["test"] > 0
    tried = [r for r in auto["candidates"] if r["status"] != "skipped"]
    names = [r["candidate"] for r in tried]
    assert names[:4] == [
        "last features, lesson head",
        "last features, linear head",
        "every-depth features, linear head",
        "every-depth features, lesson head",
    ]
    assert auto["candidates"][-1]["rung"] == 4  # the kept model with TTA, tried last
    assert auto["candidates"][-1]["candidate"].endswith("with TTA")
    # a later candidate replaced the incumbent only beyond the noise of the difference
    for r in tried[1:]:
        if r["status"] == "kept":
            assert r["difference"] > r["noise"]


def test_no_flip_skips_the_mirror_image_candidate():
    source = from_arrays(*make_images(30, size=24, seed=9))
    cfg = TrainConfig(**TINY, strategy="auto", flip=False)
    run = train_auto(cfg, data=source, save=False, progress=False, say=lambda _: None)
    last = run.metrics["auto"]["auto"]["candidates"][-1]
    assert last["status"] == "skipped" and "--no-flip" in last["reason"]
    assert not run.model.tta
