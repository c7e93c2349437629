"""``--strategy auto``: the budgeted ladder of candidates (headstart.core.advise.auto)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_images
from headstart import from_arrays
from headstart.core.advise import train_auto
from headstart.core.advise.auto import finetune_size, native_side
from headstart.core.config import TrainConfig
from headstart.core.statistics import paired_noise
from headstart.notes import speaking
from headstart.progress import enabled

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


def test_the_first_candidate_trains_to_its_end_on_a_spent_budget(tmp_path):
    """The frozen pass and the advice used the whole budget: the first candidate (the plain
    train model) still trains to its end, exactly as plain ``train`` does, and the account
    says why the time went over; every later candidate is skipped."""
    from headstart.core.report_words import spent_sentence
    from headstart.core.training import train

    source = from_arrays(*make_images(30, size=24, seed=9))
    notes: list[str] = []
    cfg = TrainConfig(**{**TINY, "epochs": 4}, strategy="auto", budget=0.001)  # 0.06 s
    with speaking(notes.append):
        run = train_auto(cfg, data=source, save=False)
    auto = run.metrics["auto"]["auto"]
    rows = auto["candidates"]
    assert rows[0]["status"] == "kept" and rows[0]["candidate"] == "last features, lesson head"
    assert not rows[0]["out_of_time"] and not run.metrics.get("out_of_time")
    # plain train on the same data: the same epochs, the same validation predictions
    plain = train(TrainConfig(**{**TINY, "epochs": 4}), data=source, save=False)
    assert rows[0]["epochs_run"] == plain.metrics["epochs_run"] == run.metrics["epochs_run"]
    assert run.metrics["val_accuracy"] == pytest.approx(plain.metrics["val_accuracy"])
    assert np.array_equal(run.predictions["val"][1], plain.predictions["val"][1])
    # every later candidate follows the budget: none started
    assert all(r["status"] == "skipped" for r in rows[1:])
    assert {r["rung"] for r in rows[1:]} >= {3, 4, 5}
    assert all("budget is spent" in r["reason"] for r in rows[1:] if r["rung"] != 4)
    assert next(r for r in rows if r["rung"] == 4)["reason"] == "the top stage was skipped"
    assert any("skipped" in n and "budget is spent" in n for n in notes)
    assert any("the plain train model, still trains to its end" in n for n in notes)
    # the account says the time went over, and why
    record = auto["budget"]
    assert record["over_seconds"] > 0
    assert (
        "the first candidate, the plain train model, always trains to its end"
        in (record["over_because"])
    )
    assert notes[-1] == f"auto: {spent_sentence(record)}"
    assert auto["kept"] == rows[0]["candidate"]


def test_the_first_candidate_ignores_the_deadline_and_later_ones_follow_it(monkeypatch):
    """With a budget already spent when the ladder starts (an injected clock), the first
    candidate is trained without a deadline and no later candidate starts."""
    from headstart.core import training
    from headstart.core.advise.auto import Budget, Costs, ladder

    cfg, splits, advice, done = _ladder_inputs(9)
    given: list = []
    original = training.train

    def spy(*args, **kwargs):
        given.append(kwargs.get("max_seconds"))
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    now = [0.0]
    budget = Budget(1, clock=lambda: now[0])
    now[0] = 75.0  # the pass and the advice took 75 s of the 60
    _, decisions = ladder(
        cfg,
        splits,
        advice,
        budget=budget,
        keep_dir=None,
        frozen_pass=done,
        costs=Costs(forward=0.001, source="injected"),
    )
    assert given == [None]  # the first candidate alone trained, with no deadline
    rows = decisions["candidates"]
    assert rows[0]["status"] == "kept" and not rows[0]["out_of_time"]
    assert all(r["status"] == "skipped" for r in rows[1:])
    record = decisions["budget"]
    assert record["over_seconds"] == 15.0
    assert record["over_because"].startswith(
        "the frozen forward pass and the advice alone took 75 s, then the first candidate, "
        "the plain train model, always trains to its end"
    )


def test_auto_selects_on_validation_and_reports_on_test(tmp_path):
    source = from_arrays(*make_images(40, size=24, seed=3))  # 40 per class: a test split
    cfg = TrainConfig(**TINY, strategy="auto")
    run = train_auto(cfg, data=source, save=False)
    auto = run.metrics["auto"]["auto"]
    kept = [r for r in auto["candidates"] if r["status"] == "kept"]
    assert len(kept) == 1
    assert run.metrics["val_accuracy"] == pytest.approx(kept[0]["val_accuracy"])
    head = run.metrics["headline"]
    assert head["split"] == "test" and not head["optimistic"]
    # the test split is not among the images any candidate was chosen on
    assert run.metrics["n_examples"]["test"] > 0
    tried = [r for r in auto["candidates"] if r["status"] != "skipped"]
    names = [r["candidate"] for r in auto["candidates"]]  # (tried, or skipped once ranked)
    assert names[:4] == [
        "last features, lesson head",
        "last features, linear probe",
        "every-depth features, linear probe",
        "every-depth features, lesson head",
    ]
    ladder = [r for r in auto["candidates"] if r["rung"] < 6]  # (6: the ensemble, last)
    assert ladder[-1]["rung"] == 5  # the kept model with TTA, tried last of the ladder
    assert ladder[-1]["candidate"].endswith("with TTA")
    # a later candidate replaced the incumbent only beyond the noise of the difference
    for r in tried[1:]:
        if r["status"] == "kept":
            assert r["difference"] > r["noise"]
        if r.get("same_examples_right"):  # said in words, not as "+0.0 (noise 0.0)"
            assert r["difference"] == r["noise"] == 0 and r["status"] != "kept"


def test_no_flip_skips_the_mirror_image_candidate():
    source = from_arrays(*make_images(30, size=24, seed=9))
    cfg = TrainConfig(**TINY, strategy="auto", flip=False)
    run = train_auto(cfg, data=source, save=False)
    auto = run.metrics["auto"]["auto"]
    last = [r for r in auto["candidates"] if r["rung"] < 6][-1]  # (6: the ensemble)
    assert last["status"] == "skipped" and "--no-flip" in last["reason"]
    assert not any("--tta" in r["flags"] for r in auto["candidates"] if r["status"] != "skipped")
    assert auto["tta"] == {"outcome": "not tried", "reason": last["reason"]}
    assert not run.model.tta


def test_tta_tried_and_rejected_is_said_in_the_report():
    from headstart.core.report_advice import auto_section

    auto = {
        "budget": {"minutes": 1, "seconds": 60, "spent_seconds": 12.0},
        "candidates": [
            {
                "candidate": "last features, lesson head, with TTA",
                "flags": "--tta",
                "rung": 5,
                "status": "tried",
                "val_accuracy": 0.9,
                "seconds": 3.0,
                "estimate_seconds": 4.0,
                "difference": -0.02,
                "noise": 0.01,
            }
        ],
        "kept": "last features, lesson head",
        "kept_flags": "no flags: the defaults",
        "tta": {"outcome": "rejected", "difference": -0.02, "noise": 0.01},
    }
    html = auto_section(auto, "image")
    assert "Mirror-image test-time augmentation: tried and rejected on validation" in html
    assert "-2.0 ± 1.0 points" in html
    assert "<td>rejected on validation</td>" in html  # the candidate's own row says it too


def noisy_images(n_per_class: int, seed: int, flip: float = 0.2):
    """``make_images`` with a seeded ``flip`` share of labels moved to another class: no
    model gets every validation image right, so validation never stops the climb at its
    ceiling (the pattern images alone are separable by their colour)."""
    images, labels = make_images(n_per_class, size=24, seed=seed)
    rng = np.random.default_rng(seed)
    moved = rng.random(len(labels)) < flip
    labels = np.where(moved, (labels + rng.integers(1, 3, len(labels))) % 3, labels)
    return images, labels


def _ladder_inputs(seed: int, **settings):
    """Splits, advice and the frozen pass of a tiny ``--strategy auto`` run, as train_auto
    prepares them, for calling the ladder with injected costs or budget."""
    from headstart.core.advise import advise
    from headstart.core.advise.auto import warm_every_depth
    from headstart.core.training import split_data

    cfg = TrainConfig(**{**TINY, **settings}, strategy="auto")
    splits = split_data(cfg, from_arrays(*noisy_images(30, seed)))
    cfg = cfg.for_modality(splits.train.modality)
    done = warm_every_depth(cfg, splits)
    advice = advise(splits, cfg.backbone, image_size=48, weights="none")
    return cfg, splits, advice, done


def test_a_candidate_whose_estimate_exceeds_what_is_left_is_not_started():
    from headstart.core.advise.auto import MIN_EPOCHS, Budget, Costs, ladder

    cfg, splits, advice, done = _ladder_inputs(9)
    notes: list[str] = []
    # a forward pass of 20 s per image: the cheap candidates on cached features still fit
    # in 8 minutes, anything that must run the network (the top stage, TTA's mirror images)
    # does not, whatever the measured training times
    slow = Costs(forward=20.0, source="injected")
    with speaking(notes.append):
        run, decisions = ladder(
            cfg, splits, advice, budget=Budget(8), keep_dir=None, frozen_pass=done, costs=slow
        )
    rows = {r["candidate"]: r for r in decisions["candidates"]}
    top = next(r for r in rows.values() if r["rung"] == 3)
    n_train, n_val = len(splits.train), len(splits.val)
    n_all = n_train + n_val + len(splits.test or [])
    # extracting the prefix (a forward pass at most), then MIN_EPOCHS epochs of the top stage
    # (its share of the stages: forward and backward on train, forward on validation)
    epoch = 20.0 / advice.measurements["stages"] * (3 * n_train + n_val)
    assert top["estimate_seconds"] == pytest.approx(20.0 * n_all + MIN_EPOCHS * epoch, abs=0.1)
    assert top["status"] == "skipped"
    assert top["reason"].startswith("would take about") and "s left" in top["reason"]
    assert any(n.startswith(f"auto: skipped {top['candidate']} (would take about") for n in notes)
    assert "val_accuracy" not in top and "seconds" not in top  # never started
    tta = next(r for r in rows.values() if r["rung"] == 5)
    assert tta["status"] == "skipped" and decisions["tta"]["outcome"] == "not tried"
    # every candidate that did start fitted in what was left when it started
    for r in decisions["candidates"][1:]:
        if r["status"] != "skipped" and r["rung"] < 6:  # (the ensemble reads no pass)
            assert r["estimate_seconds"] <= 8 * 60
    assert decisions["budget"]["forward_measured_on"] == "injected"
    assert not run.model.tta


def test_the_budget_counts_what_was_spent_before_the_ladder():
    from headstart.core.advise.auto import Budget, Costs, ladder
    from headstart.core.report_words import spent_sentence

    cfg, splits, advice, done = _ladder_inputs(9)
    now = [0.0]
    budget = Budget(1, clock=lambda: now[0])  # 60 s, on a clock the test moves
    now[0] = 59.0  # the pass and the advice took 59 s: 1 s is left
    notes: list[str] = []
    with speaking(notes.append):
        run, decisions = ladder(
            cfg,
            splits,
            advice,
            budget=budget,
            keep_dir=None,
            frozen_pass=done,
            advice_seconds=40.0,
            costs=Costs(forward=0.05, source="injected"),  # the top stage: over 4 s
        )
    rows = decisions["candidates"]
    assert rows[0]["status"] != "skipped"  # the first candidate always trains
    # the test's clock stands still: every later estimate is weighed against the 1 s left
    for r in rows[1:]:
        if r["rung"] == 6:  # the ensemble of what ran: seconds, no forward pass
            assert "estimate_seconds" not in r
        elif r["status"] != "skipped":
            assert r["estimate_seconds"] <= 1.0
        elif r["reason"].startswith("would take"):
            assert r["estimate_seconds"] > 1.0 and r["reason"].endswith("; 1 s left")
    assert any(r["status"] == "skipped" and r["rung"] == 3 for r in rows)
    record = decisions["budget"]
    assert record["spent_seconds"] == 59.0 and record["over_seconds"] == 0.0
    assert record["advice_seconds"] == 40.0
    assert notes[-1] == f"auto: {spent_sentence(record)}"
    assert "spent 59 s of the 1-minute budget (60 s)" in notes[-1]


class _FakeTime:
    """A clock for :func:`fit` that moves only when the test says so."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_a_running_candidate_stops_at_the_deadline(monkeypatch):
    import torch
    from torch import nn

    from headstart.core import loop
    from headstart.core.inputs import ArrayInputs
    from headstart.core.loop import FitSettings, fit

    clock = _FakeTime()
    monkeypatch.setattr(loop, "time", clock)
    cost = [1.0]  # seconds each training batch takes, on the fake clock

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            if self.training:
                clock.now += cost[0]
            return self.fc(x)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    data = ArrayInputs([x], y)
    settings = FitSettings(epochs=10, batch_size=16, patience=0)  # 4 batches an epoch

    torch.manual_seed(0)
    model = Slow()
    history = fit(model, model.fc, data, data, settings, deadline=-1.0)
    assert len(history.epochs) == 1 and history.out_of_time  # the first epoch finishes

    # epoch 1 takes 4 s; epoch 2 looks as if it fits (4 + 4 <= 9) but its batches take 3 s:
    # the deadline passes inside it, which ends training with epoch 1's weights
    clock.now = 0.0
    torch.manual_seed(0)
    model = Slow()

    seen = {"epoch": 0}
    original = loop.evaluate_inputs

    def validate(*args, **kwargs):
        seen["epoch"] += 1
        cost[0] = 3.0  # after the first epoch, batches slow down
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "evaluate_inputs", validate)
    cost[0] = 1.0
    history = fit(model, model.fc, data, data, settings, deadline=9.0)
    assert history.out_of_time and len(history.epochs) == 1 and seen["epoch"] == 1
    assert clock.now > 9.0  # it noticed the deadline after a batch, not before the epoch
    best = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    again = Slow()
    cost[0] = 1.0
    clock.now = 0.0
    monkeypatch.setattr(loop, "evaluate_inputs", original)
    fit(again, again.fc, data, data, replace_epochs(settings, 1))
    for k, v in again.state_dict().items():  # the weights are epoch 1's, not the cut epoch's
        assert torch.equal(v, best[k])


def replace_epochs(settings, n):
    from dataclasses import replace

    return replace(settings, epochs=n)


def test_validation_at_its_ceiling_stops_the_ladder_and_says_why(tmp_path):
    source = from_arrays(*make_images(20, size=24, seed=5))
    notes: list[str] = []
    cfg = TrainConfig(
        **{**TINY, "epochs": 15, "lr": 1e-2},
        strategy="auto",
        ensemble_backbones="test_efficientnet,test_resnet",  # (the first one itself: no row)
    )
    with speaking(notes.append):
        run = train_auto(cfg, data=source, out=tmp_path / "run")
    auto = run.metrics.get("auto") or __import__("json").loads(
        (tmp_path / "run" / "advice.json").read_text()
    )
    auto = auto["auto"]
    # another backbone is not tried once validation cannot rank, and says so
    assert [b["backbone"] for b in auto["backbones"]] == ["test_resnet"]
    assert "validation can no longer rank" in auto["backbones"][0]["reason"]
    assert run.metrics["val_accuracy"] == 1.0
    assert auto["stopped"].startswith("validation is at its ceiling")
    stop = [n for n in notes if n.startswith("auto: stopped climbing")]
    assert stop == [f"auto: stopped climbing: {auto['stopped']}"]
    kept = next(i for i, r in enumerate(auto["candidates"]) if r["status"] == "kept")
    after = auto["candidates"][kept + 1 :]
    assert after and all(r["status"] == "skipped" for r in after)
    assert all("validation can no longer rank" in r["reason"] for r in after)
    report = (tmp_path / "run" / "report.html").read_text()
    assert "The climb stopped early: validation is at its ceiling" in report


def test_cannot_rank_at_the_ceiling_or_one_example_from_it():
    from headstart.core.advise.auto import cannot_rank

    y = np.arange(50) % 5
    assert "ceiling" in cannot_rank(y, y.copy())
    one = y.copy()
    one[0] = 4
    assert "misses 1 of 50" in cannot_rank(y, one, "text")
    two = one.copy()
    two[1] = 3
    assert cannot_rank(y, two) is None


def test_the_report_says_frozen_outputs_computed_by_this_run(tmp_path):
    source = from_arrays(*make_images(30, size=24, seed=11))
    cfg = TrainConfig(**TINY, strategy="auto")
    run = train_auto(cfg, data=source, out=tmp_path / "run")
    assert run.metrics["feature_cache"]["computed_this_run"]
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Frozen outputs: computed by this run before its candidates trained" in report
    assert "computed by an earlier run" not in report
    # the budget's account, in the report as in advice.json
    import json

    from headstart.core.report_words import spent_sentence

    record = json.loads((tmp_path / "run" / "advice.json").read_text())["auto"]["budget"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["auto_budget"] == record
    words = spent_sentence(record)
    assert words[0].upper() + words[1:] in report


def test_advise_names_the_random_weight_control_line(capsys):
    from headstart.core.advise import rank_backbones
    from headstart.core.training import split_data

    splits = split_data(TrainConfig(**TINY), from_arrays(*make_images(10, size=24, seed=2)))
    with enabled(True):
        rows = rank_backbones(
            splits, ["test_efficientnet@48", "test_efficientnet@40:random"], weights="none"
        )
    lines = [s for s in capsys.readouterr().err.splitlines() if s.startswith("features")]
    assert len(lines) == 2 and len(rows) == 2
    assert lines[0].startswith("features train: ")  # the candidate itself
    assert lines[1].startswith("features train, random-weight control: "), lines


def test_a_text_auto_report_says_its_frozen_outputs_were_computed_by_this_run(tmp_path):
    pytest.importorskip("transformers")
    import json

    from test_text import reviews, write_table

    data = write_table(tmp_path / "reviews.csv", reviews(12))
    cfg = TrainConfig(data=str(data), backbone="test_bert", strategy="auto", epochs=2, budget=5)
    run = train_auto(cfg, out=tmp_path / "run")
    advice = json.loads((tmp_path / "run" / "advice.json").read_text())["advice"]
    # the frozen pass came first: the advice read its pretrained features from the cache
    assert advice["measurements"]["feature_cache"]["pretrained"] != "computed"
    assert run.metrics["feature_cache"]["computed_this_run"]
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Frozen outputs: computed by this run before its candidates trained" in report
    assert "computed by an earlier run" not in report
