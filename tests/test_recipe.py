"""Fitting recipes: a text encoder that trains is fitted as transformers are (AdamW, decoupled
weight decay on weight matrices only, linear warm-up then linear decay to 0, a text learning
rate, a few epochs); images and frozen encoders keep the lesson's (Adam, 1e-5, no schedule, 30
epochs); a value the user gives always wins, and the run records what it used."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import make_images, run_cli
from headstart import from_arrays, from_texts
from headstart.api import train
from headstart.core import loop
from headstart.core.config import TrainConfig
from headstart.core.fitsettings import FitSettings
from headstart.core.recipe import ADAMW_WEIGHT_DECAY, LESSON
from headstart.errors import ConfigError
from headstart.modalities.text.modality import TEXT_FINETUNING

transformers = pytest.importorskip("transformers")

from test_text import labelled_texts, reviews, write_table  # noqa: E402

AUTO_FIELDS = ["optimizer", "backbone_lr", "schedule", "warmup_epochs", "epochs"]


def _factors(settings: FitSettings, steps: int, n: int) -> list[float]:
    """The learning-rate multiplier of each of the first ``n`` steps, read from the optimizer
    that torch's LambdaLR drives (as the loop steps it)."""
    p = torch.nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.AdamW([{"params": [p], "lr": 1.0}])
    sched = loop.make_scheduler(opt, settings, steps)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_linear_schedule_warms_up_then_decays_to_zero_at_the_last_step():
    # 4 epochs of 10 steps, warm-up 0.5 epoch: 5 warm-up steps of 40
    settings = FitSettings(epochs=4, warmup_epochs=0.5, schedule="linear", optimizer="adamw")
    f = _factors(settings, steps=10, n=41)
    assert f[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])  # step k of 5 at k/5
    assert f[5] == pytest.approx(1.0)  # the peak, then linear decay over the 35 left
    assert f[12] == pytest.approx(28 / 35) and f[33] == pytest.approx(7 / 35)
    assert f[39] == pytest.approx(1 / 35) and f[40] == 0.0  # 0 once every planned step ran
    # the decay is transformers' get_linear_schedule_with_warmup, step for step
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    theirs = transformers.get_linear_schedule_with_warmup(opt, 5, 40).lr_lambdas[0]
    assert [theirs(k) for k in range(5, 41)] == pytest.approx(f[5:41])
    # the recipe's warm-up: 10% of the planned steps (3 epochs x 15 steps: 4.5, so 5)
    text = TrainConfig(strategy="full").for_modality("text").fit_settings()
    assert text.warmup_epochs == pytest.approx(TEXT_FINETUNING.warmup_fraction * text.epochs)
    g = _factors(text, steps=15, n=text.epochs * 15 + 1)
    warm = math.ceil(TEXT_FINETUNING.warmup_fraction * text.epochs * 15)  # rounded up
    assert g[warm - 1] == pytest.approx(1.0) and g[warm - 2] < 1.0 and g[-1] == 0.0
    assert g[0] == pytest.approx(1 / warm)
    # no schedule and no warm-up: no scheduler, constant rates (the lesson's)
    assert loop.make_scheduler(opt, FitSettings(), 10) is None


def _text_model():
    from headstart.core.heads import HeadSpec, build_head
    from headstart.core.model import TransferModel
    from headstart.core.strategies import Strategy, plan_strategy
    from headstart.modalities.text.encoder import load_text_encoder

    enc = load_text_encoder("test_bert").backbone
    plan_strategy(enc, Strategy("full", unit="layer"))
    head = build_head(HeadSpec(), enc.num_features, 2)
    return TransferModel(enc, head), head


def test_adamw_decays_every_weight_matrix_and_no_bias_or_layernorm_weight():
    model, head = _text_model()
    settings = FitSettings(optimizer="adamw", weight_decay=0.01, lr=1e-3, backbone_lr=5e-5)
    opt = loop.make_optimizer(model, head, settings)
    assert type(opt) is torch.optim.AdamW
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    rate = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(decay) == len(trainable) == sum(len(g["params"]) for g in opt.param_groups)
    head_ids = {id(p) for p in head.parameters()}
    names = {n for n, _ in trainable}
    assert any("LayerNorm.weight" in n for n in names) and any("bias" in n for n in names)
    for name, p in trainable:
        expected = 0.0 if p.ndim == 1 else 0.01
        assert decay[id(p)] == expected, name
        if "LayerNorm" in name or name.endswith(".bias"):
            assert decay[id(p)] == 0.0, name
        assert rate[id(p)] == (1e-3 if id(p) in head_ids else 5e-5), name
    # the head's weight matrices are decayed too; the word embeddings are a matrix
    assert any(decay[id(p)] == 0.01 for p in head.parameters() if p.ndim > 1)
    embeddings = next(p for n, p in trainable if "word_embeddings" in n)
    assert decay[id(embeddings)] == 0.01
    by_name = {g["name"]: g for g in opt.param_groups}
    assert set(by_name) == {"head", "head-weights", "backbone", "backbone-weights"}
    # Adam (the lesson's): an L2 penalty on the head's matrices alone, the body undecayed
    adam = loop.make_optimizer(model, head, FitSettings(weight_decay=0.01))
    assert type(adam) is torch.optim.Adam
    lesson = {g["name"]: g for g in adam.param_groups}
    assert set(lesson) == {"head", "head-weights", "backbone"}
    assert lesson["backbone"]["weight_decay"] == 0.0 and lesson["head"]["weight_decay"] == 0.0
    assert lesson["head-weights"]["weight_decay"] == 0.01


def test_each_modality_resolves_its_own_recipe_and_given_values_win():
    def fitted(modality, **kw):
        return TrainConfig(**kw).for_modality(modality).fit_settings()

    for strategy in ("fine-tune", "freeze-first", "full"):
        s = fitted("text", strategy=strategy)
        assert (s.optimizer, s.schedule) == ("adamw", "linear")
        assert s.backbone_lr == TEXT_FINETUNING.backbone_lr and s.epochs == TEXT_FINETUNING.epochs
        assert s.weight_decay == ADAMW_WEIGHT_DECAY
        image = fitted("image", strategy=strategy)
        assert (image.optimizer, image.schedule, image.warmup_epochs) == ("adam", "none", 0.0)
        assert image.backbone_lr == 1e-5 == LESSON.backbone_lr and image.epochs == 30
        assert image.weight_decay == 0.0
    frozen = fitted("text")  # a frozen encoder's head: the lesson's
    assert (frozen.optimizer, frozen.epochs, frozen.schedule) == ("adam", 30, "none")
    given = dict(
        optimizer="adam",
        backbone_lr=2e-5,
        schedule="cosine",
        warmup_epochs=1.0,
        epochs=7,
        weight_decay=0.1,
    )
    s = fitted("text", strategy="full", **given)
    assert {k: getattr(s, k) for k in given} == given
    s = fitted("image", strategy="full", optimizer="adamw")
    assert s.optimizer == "adamw" and s.weight_decay == ADAMW_WEIGHT_DECAY  # AdamW's auto
    assert fitted("text", strategy="full", warmup_epochs=0.0).warmup_epochs == 0.0
    with pytest.raises(ConfigError, match="--optimizer must be one of"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ConfigError, match="--schedule must be one of"):
        TrainConfig(schedule="step")


def test_a_configuration_of_an_earlier_version_replays_as_it_ran():
    old = {k: v for k, v in TrainConfig(strategy="fine-tune").to_dict().items() if k != "optimizer"}
    old.update(backbone_lr=1e-5, epochs=30, schedule="onecycle", warmup_epochs=0.0)
    cfg = TrainConfig.from_dict(old).for_modality("text")
    s = cfg.fit_settings()
    assert (s.optimizer, s.backbone_lr, s.epochs, s.schedule) == ("adam", 1e-5, 30, "linear")
    assert s.weight_decay == 0.0
    # a new configuration keeps auto, and replays by its recipe
    new = TrainConfig.from_dict(TrainConfig(strategy="full").to_dict())
    assert new.optimizer == "auto" and new.backbone_lr is None and new.epochs is None


def _spy(monkeypatch) -> list:
    made = []
    real = loop.make_optimizer

    def spy(module, head, settings):
        made.append(real(module, head, settings))
        return made[-1]

    monkeypatch.setattr(loop, "make_optimizer", spy)
    return made


def test_text_fine_tuning_trains_and_records_the_text_recipe(monkeypatch, tmp_path):
    made = _spy(monkeypatch)
    texts, y = labelled_texts(12)
    cfg = TrainConfig(backbone="test_bert", strategy="fine-tune", unfreeze=1, batch_size=8)
    run = train(cfg, data=from_texts(texts, y), out=tmp_path / "run", progress=False)
    (opt,) = made
    assert type(opt) is torch.optim.AdamW
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["backbone-weights"]["initial_lr"] == TEXT_FINETUNING.backbone_lr
    assert groups["backbone-weights"]["weight_decay"] == ADAMW_WEIGHT_DECAY
    assert groups["backbone"]["weight_decay"] == 0.0
    metrics = json.loads((run.path / "metrics.json").read_text())
    fitted = metrics["fit_recipe"]
    assert fitted["recipe"] == "text fine-tuning" and fitted["auto"] == AUTO_FIELDS
    steps = fitted["steps_per_epoch"]
    assert fitted["epochs"] == TEXT_FINETUNING.epochs == len(run.history.epochs)
    assert fitted["planned_steps"] == TEXT_FINETUNING.epochs * steps
    assert fitted["warmup_steps"] == math.ceil(0.1 * fitted["planned_steps"])  # as transformers
    assert (fitted["optimizer"], fitted["schedule"]) == ("adamw", "linear")
    assert fitted["weight_decay"] == metrics["weight_decay"]["value"] == ADAMW_WEIGHT_DECAY
    # every planned step ran (no early stop): the linear decay ended at 0
    assert all(g["lr"] == 0.0 for g in opt.param_groups)
    saved = json.loads((run.path / "config.json").read_text())["config"]["training"]
    assert saved["optimizer"] == "auto" and saved["backbone_lr"] is None  # replays by recipe
    from headstart import load_run
    from headstart.core.report_settings import configuration_rows

    rows = dict(configuration_rows(load_run(run.path)))
    assert rows["optimizer"] == "adamw (auto: text fine-tuning)"
    assert rows["backbone_lr"] == f"{TEXT_FINETUNING.backbone_lr:g} (auto: text fine-tuning)"
    assert rows["schedule"] == "linear (auto: text fine-tuning)"
    warm, planned = fitted["warmup_steps"], fitted["planned_steps"]
    assert rows["warmup_epochs"] == (
        f"{fitted['warmup_epochs']:g} (auto: text fine-tuning; {warm} of {planned} steps)"
    )
    epochs = TEXT_FINETUNING.epochs
    assert rows["epochs"] == f"{epochs} (auto: text fine-tuning; ran {epochs})"
    assert rows["weight_decay"].startswith("0.01 (auto: AdamW's, decoupled")
    assert "None" not in rows.values()


def test_image_fine_tuning_keeps_the_lessons_adam_and_backbone_rate(monkeypatch):
    made = _spy(monkeypatch)
    images, labels = make_images(8, seed=3)
    cfg = TrainConfig(
        backbone="test_resnet", weights="none", image_size=48, strategy="fine-tune", epochs=2
    )
    run = train(cfg, data=from_arrays(images, labels), save=False, progress=False)
    (opt,) = made
    assert type(opt) is torch.optim.Adam
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["backbone"]["lr"] == 1e-5 and groups["backbone"]["weight_decay"] == 0.0
    assert "initial_lr" not in groups["backbone"]  # no scheduler: constant rates
    fitted = run.metrics["fit_recipe"]
    assert fitted["recipe"] == "the lesson's" and fitted["optimizer"] == "adam"
    assert (fitted["backbone_lr"], fitted["schedule"], fitted["warmup_steps"]) == (1e-5, "none", 0)
    assert fitted["auto"] == ["optimizer", "backbone_lr", "schedule", "warmup_epochs"]


def test_a_value_given_on_the_command_line_wins_over_the_text_recipe(tmp_path):
    data = write_table(tmp_path / "reviews.csv", reviews(12))
    out = tmp_path / "run"
    given = ["--backbone-lr", "2e-5", "--optimizer", "adam", "--schedule", "none"]
    run_cli(
        "train", str(data), "--backbone", "test_bert", "--strategy", "fine-tune",
        "--epochs", "1", *given, "--out", str(out),
    )  # fmt: skip
    fitted = json.loads((out / "metrics.json").read_text())["fit_recipe"]
    assert fitted["auto"] == ["warmup_epochs"]  # the one left to the text recipe
    assert (fitted["optimizer"], fitted["backbone_lr"], fitted["schedule"]) == (
        "adam",
        2e-5,
        "none",
    )
    assert fitted["epochs"] == 1 and fitted["warmup_epochs"] == pytest.approx(0.1)
    page = (out / "report.html").read_text()
    assert "<td>backbone_lr</td><td>2e-05</td>" in page
    assert "<td>optimizer</td><td>adam</td>" in page
    assert np.isfinite(fitted["weight_decay"]) and fitted["weight_decay"] == 0.0  # Adam's auto
