"""Fine-tuning strategies: what trains, BatchNorm, learning rates, continuation, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_images
from headstart import from_arrays
from headstart.api import train
from headstart.core.config import TrainConfig
from headstart.core.runs import load_run
from headstart.core.strategies import Strategy, plan_strategy
from headstart.errors import ConfigError
from headstart.modalities.image.backbones import create_backbone, create_timm_model
from headstart.modalities.image.backbones.model import Backbone
from headstart.modalities.image.backbones.stages import stage_map

TINY = {"weights": "none", "image_size": 48, "epochs": 2}


@pytest.fixture
def source():
    images, labels = make_images(10, seed=5)
    return from_arrays(images, labels)


def _trainable(backbone: Backbone) -> set[str]:
    return {n.rsplit(".", 1)[0] for n, p in backbone.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    ("family", "last_stage", "first_blocks"),
    [
        ("test_resnet", "layer4.", "conv1."),
        ("test_efficientnet", "blocks.4.", "conv_stem"),
        ("test_vit", "blocks.5.", "patch_embed."),
    ],
)
def test_trainable_parameters_per_strategy(family, last_stage, first_blocks):
    bb = Backbone(create_timm_model(family))
    total = {n for n, _ in bb.model.named_parameters()}
    plan_strategy(bb, Strategy("feature-extraction"))
    assert not _trainable(bb)
    plan_strategy(bb, Strategy("fine-tune", unfreeze=1))
    names = _trainable(bb)
    assert names and all(
        n.startswith(last_stage) or "." not in n or n in ("norm",) for n in names
    ), names
    assert any(n.startswith(last_stage) for n in names)
    plan_strategy(bb, Strategy("fine-tune", unfreeze=2))
    assert len(_trainable(bb)) > len(names)
    plan_strategy(bb, Strategy("freeze-first", layers=1))
    frozen = {n for n, p in bb.model.named_parameters() if not p.requires_grad}
    assert frozen and all(
        n.startswith(first_blocks) or n.startswith(("bn1.", "cls_token", "pos_embed"))
        for n in frozen
    ), frozen
    plan_strategy(bb, Strategy("full"))
    assert {n for n, p in bb.model.named_parameters() if p.requires_grad} == total


def test_densenet121_unfreeze_1_is_the_lessons_conv5():
    bb = Backbone(create_timm_model("densenet121"))
    plan = plan_strategy(bb, Strategy("fine-tune", unfreeze=1))
    trainable = {n for n, p in bb.model.named_parameters() if p.requires_grad}
    assert trainable
    assert all(n.startswith(("features.denseblock4.", "features.norm5.")) for n in trainable)
    every = {
        n
        for n, _ in bb.model.named_parameters()
        if n.startswith(("features.denseblock4.", "features.norm5."))
    }
    assert trainable == every
    assert plan.plan.units[plan.cut][0] == "features.denseblock4"  # cut after transition3
    assert len(stage_map(bb.model).stages) == 4


def test_vgg16_stages_are_its_five_conv_blocks():
    assert len(stage_map(create_timm_model("vgg16")).stages) == 5


def test_unfreeze_too_many_is_a_clear_error():
    bb = Backbone(create_timm_model("test_resnet"))
    with pytest.raises(ConfigError, match="has 4 stages"):
        plan_strategy(bb, Strategy("fine-tune", unfreeze=9))


def _bn_stats(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


@pytest.mark.parametrize("bn", ["frozen", "train"])
def test_batchnorm_statistics_follow_bn_option(source, bn):
    torch.manual_seed(0)
    before = _bn_stats(create_backbone("test_resnet", weights="none").backbone)
    run = train(
        TrainConfig(backbone="test_resnet", strategy="fine-tune", unfreeze=1, bn=bn, **TINY),
        data=source,
        save=False,
        progress=False,
    )
    after = _bn_stats(run.model.backbone)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    if bn == "frozen":
        assert not moved
    else:
        assert moved and all(k.startswith("model.layer4.") for k in moved), moved
    _assert_head_batchnorm_learned(run)


def _assert_head_batchnorm_learned(run) -> None:
    """The head is new: its BatchNorm normalises with statistics learned from the data."""
    (bn,) = [m for m in run.model.head.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert int(bn.num_batches_tracked) > 0
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


def test_head_batchnorm_learns_under_bn_auto_with_a_frozen_backbone(source):
    """--bn auto freezes pretrained BatchNorm below 10,000 images; the head's still learns."""
    torch.manual_seed(0)
    before = _bn_stats(create_backbone("test_resnet", weights="none").backbone)
    config = TrainConfig(backbone="test_resnet", **TINY)
    assert config.bn == "auto" and config.fit_settings(len(source.train)).bn == "frozen"
    run = train(config, data=source, save=False, progress=False)
    after = _bn_stats(run.model.backbone)
    assert all(torch.equal(before[k], after[k]) for k in before)
    _assert_head_batchnorm_learned(run)


def test_learning_rates_per_parameter_group():
    from headstart.core.heads import HeadSpec, build_head
    from headstart.core.loop import FitSettings, param_groups
    from headstart.core.model import TransferModel

    bb = Backbone(create_timm_model("test_resnet"))
    plan_strategy(bb, Strategy("fine-tune", unfreeze=1))
    head = build_head(HeadSpec(), bb.num_features, 3)
    groups = param_groups(TransferModel(bb, head), head, FitSettings(lr=1e-3, backbone_lr=1e-5))
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["lr"] == 1e-3 and by_name["backbone"]["lr"] == 1e-5
    n_backbone = sum(p.numel() for p in by_name["backbone"]["params"])
    assert n_backbone == sum(
        p.numel() for n, p in bb.model.named_parameters() if n.startswith("layer4.")
    )
    assert TrainConfig(strategy="scratch").fit_settings().backbone_lr == 1e-3


def test_scratch_starts_from_random_weights(source, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    pretrained = create_backbone("test_resnet", weights="none").backbone.model.state_dict()
    path = tmp_path / "pretrained.safetensors"
    save_file({k: v.contiguous() for k, v in pretrained.items()}, str(path))
    cfg = {**TINY, "epochs": 1, "weights": str(path)}
    run = train(
        TrainConfig(backbone="test_resnet", strategy="scratch", **cfg),
        data=source,
        save=False,
        progress=False,
    )
    trained = run.model.backbone.state_dict()["model.conv1.0.weight"]
    # one or two Adam steps move a weight by about 1e-3: a 1e-2 gap means a fresh start
    assert not torch.allclose(trained, pretrained["conv1.0.weight"], atol=1e-2)
    assert run.weights["detail"].startswith("scratch from random")


def test_finetune_continues_a_frozen_run_and_records_its_parent(image_folder, tmp_path):
    frozen = train(
        TrainConfig(backbone="test_resnet", data=str(image_folder), **TINY),
        out=tmp_path / "frozen",
        progress=False,
    )
    cfg = TrainConfig(
        backbone="test_resnet",
        data=str(image_folder),
        strategy="fine-tune",
        unfreeze=1,
        parent=str(tmp_path / "frozen"),
        **{**TINY, "epochs": 1},
    )
    child = train(cfg, out=tmp_path / "ft", progress=False)
    assert child.parent == str(tmp_path / "frozen")
    reloaded = load_run(tmp_path / "ft")
    assert reloaded.parent == str(tmp_path / "frozen")
    assert reloaded.strategy.kind == "fine-tune"
    # it started from the parent's head: the first epoch's validation matches the parent's
    # best closely, not a random head's chance level
    assert child.history.epochs[0]["val_accuracy"] >= frozen.metrics["val_accuracy"] - 0.35
    assert (tmp_path / "ft" / "plots" / "parent_vs_this.png").is_file()
    html = (tmp_path / "ft" / "report.html").read_text()
    assert "Continued from" in html


def test_resume_after_interruption_matches_an_uninterrupted_run(source, tmp_path):
    cfg = TrainConfig(
        backbone="test_resnet",
        strategy="fine-tune",
        unfreeze=1,
        patience=0,
        **{**TINY, "epochs": 4},
    )
    whole = train(cfg, data=source, out=tmp_path / "whole", progress=False, report=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data=source, out=tmp_path / "cut", progress=False, stop_after=2)
    assert (tmp_path / "cut" / "checkpoint" / "state.json").is_file()
    resumed = train(
        cfg, data=source, out=tmp_path / "cut", progress=False, resume=True, report=False
    )
    assert len(resumed.history.epochs) == 4
    for a, b in zip(resumed.history.epochs, whole.history.epochs):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
        assert a["val_accuracy"] == b["val_accuracy"]
    for k, v in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=1e-6)
    assert not (tmp_path / "cut" / "checkpoint").exists()


def test_resume_needs_a_started_run(source, tmp_path):
    from headstart.errors import RunError

    with pytest.raises(RunError, match="nothing to resume"):
        train(
            TrainConfig(**TINY, backbone="test_resnet"),
            data=source,
            out=tmp_path / "x",
            resume=True,
        )


def test_class_weights_auto(source):
    from headstart.core.training import _class_weights

    images, labels = make_images(6)
    labels = np.array([0] * 12 + [1] * 4 + [2] * 2)
    from headstart.core.data import make_splits

    splits = make_splits(from_arrays(images, labels), val_split=0.3)
    w = _class_weights(TrainConfig(class_weights="auto"), splits)
    counts = splits.train.class_counts()
    assert w[0] < w[1] < w[2]
    assert np.allclose(w * counts, counts.sum() / 3)
