"""Backbone names, weight resolution, preprocessing from the pretrained config, parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from headstart.core.catalog import model_summary
from headstart.errors import BackboneError
from headstart.modalities.image.backbones import (
    Preprocessing,
    create_backbone,
    create_timm_model,
    resolve_name,
)
from headstart.modalities.image.backbones.catalog import list_backbones
from headstart.modalities.image.backbones.weights import load_pretrained, packaged_weights_path
from headstart.modalities.image.preprocess import prepare_batch, resize_image


def test_keras_aliases_map_to_timm():
    assert resolve_name("DenseNet121") == "densenet121"
    assert resolve_name("mobilenetv2") == "mobilenetv2_100"
    assert resolve_name("EfficientNetB3") == "tf_efficientnet_b3"
    assert resolve_name("resnet18") == "resnet18"  # timm names pass through


def test_lesson_head_has_53808_trainable_parameters():
    s = model_summary(backbone="DenseNet121", n_classes=10)
    assert s["trainable"] == 53_808
    assert s["keras_style_total"] == 7_093_360  # the lesson's model.summary() total
    assert s["frozen"] == s["total"] - 53_808


def test_vgg_features_are_the_conv_map_like_keras_include_top_false():
    lb = create_backbone("VGG16", weights="none")
    assert lb.backbone.num_features == 512
    assert "pre_logits" in lb.backbone.removed  # fc6/fc7 are not part of include_top=False


def test_preprocessing_comes_from_pretrained_config():
    lb = create_backbone("tf_efficientnet_lite0", image_size=160)
    assert lb.preprocessing.mean == (0.5, 0.5, 0.5) and lb.preprocessing.std == (0.5, 0.5, 0.5)
    assert lb.preprocessing.input_size == (160, 160)
    assert lb.preprocessing.interpolation == "bicubic"
    dn = create_backbone("densenet121", weights="none")
    assert dn.preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))


def test_resize_with_pad_keeps_aspect_ratio_like_the_lesson():
    prep = Preprocessing((160, 160), (0.5,) * 3, (0.5,) * 3, "bilinear", "pad")
    img = np.full((32, 64, 3), 255, np.uint8)  # wide white image
    t = resize_image(img, prep)
    assert t.shape == (3, 160, 160)
    assert t[:, :39, :].max() == 0 and t[:, 121:, :].max() == 0  # black bars top and bottom
    assert t[:, 41:119, :].min() > 0.99
    crop = resize_image(img, Preprocessing((160, 160), (0.5,) * 3, (0.5,) * 3, "bilinear", "crop"))
    assert crop.shape == (3, 160, 160) and crop.min() > 0.99
    batch = prepare_batch([img, img[:, :32]], prep)
    assert batch.shape == (2, 3, 160, 160) and batch.min() == -1.0  # (0 - 0.5) / 0.5


@pytest.mark.slow
def test_real_lite0_weights_recognise_a_cat():
    """The packaged ImageNet weights are real: scikit-image's photo of Chelsea is a cat."""
    skimage_data = pytest.importorskip("skimage.data")
    assert packaged_weights_path("tf_efficientnet_lite0") is not None
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)  # with classifier
    source = load_pretrained(model, "tf_efficientnet_lite0", "imagenet")
    assert source.kind == "package"
    prep = Preprocessing((224, 224), (0.5,) * 3, (0.5,) * 3, "bicubic", "crop")
    with torch.no_grad():
        logits = model.eval()(prepare_batch([skimage_data.chelsea()], prep))
    top5 = logits[0].topk(5).indices.tolist()
    assert top5[0] in range(281, 286), top5  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_weights_none_is_explicit_random():
    a = create_backbone("test_resnet", weights="none")
    assert a.weights.kind == "none"


def test_missing_imagenet_weights_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="--weights none"):
        create_backbone("test_resnet", weights="imagenet")


def test_unknown_backbone():
    with pytest.raises(BackboneError, match="unknown backbone 'resnet9000'"):
        create_backbone("resnet9000")


def test_weights_file_roundtrip_and_refusals(tmp_path):
    from safetensors.torch import save_file

    src = create_backbone("test_resnet", weights="none")
    state = {k: v.contiguous() for k, v in src.backbone.model.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    loaded = create_backbone("test_resnet", weights=str(tmp_path / "w.safetensors"))
    assert loaded.weights.kind == "file"
    for k, v in loaded.backbone.model.state_dict().items():
        assert torch.equal(v, state[k])
    torch.save(state, tmp_path / "w.pth")
    assert create_backbone("test_resnet", weights=str(tmp_path / "w.pth")).weights.kind == "file"
    # wrong architecture
    with pytest.raises(BackboneError, match="do not fit this architecture"):
        create_backbone("test_efficientnet", weights=str(tmp_path / "w.safetensors"))
    # a pickle carrying code is refused by the weights-only loader
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(BackboneError, match="never arbitrary pickles"):
        create_backbone("test_resnet", weights=str(tmp_path / "evil.pth"))


def test_backbones_listing():
    rows = {r["timm_name"]: r for r in list_backbones()}
    assert rows["tf_efficientnet_lite0"]["default"]
    assert rows["tf_efficientnet_lite0"]["weights"] == "installed"
    assert rows["densenet121"]["input_size"] == [224, 224]
    assert 6.9e6 < rows["densenet121"]["parameters"] < 7.1e6


class _Chain(torch.nn.Module):
    """forward_features is a chain of two units; the second may fail on its second call."""

    def __init__(self, error: type[Exception] | None):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 4, 3)
        self.b = _FailsOnReplay(error)

    def forward_features(self, x):
        return self.b(self.a(x))


class _FailsOnReplay(torch.nn.Module):
    def __init__(self, error: type[Exception] | None):
        super().__init__()
        self.error, self.calls = error, 0

    def forward(self, x):
        self.calls += 1
        if self.error is not None and self.calls > 2:  # the probe, the reference, the replay
            raise self.error("boom")
        return x


def test_sequential_plan_reports_a_bug_instead_of_no_cut():
    from headstart.modalities.image.backbones.split import sequential_plan

    probe = torch.zeros(1, 3, 8, 8)
    assert [n for n, _ in sequential_plan(_Chain(None), probe).units] == ["a", "b"]
    # what replaying a non-chain forward raises (a shape error) means: no sequential cut
    assert sequential_plan(_Chain(RuntimeError), probe) is None
    assert sequential_plan(_Chain(ValueError), probe) is None
    # anything else is a bug, not a limitation of the family
    with pytest.raises(AttributeError, match="boom"):
        sequential_plan(_Chain(AttributeError), probe)
    with pytest.raises(KeyError):
        sequential_plan(_Chain(KeyError), probe)
    # a real family whose forward is not a chain still gets no plan
    assert sequential_plan(create_timm_model("test_vit")) is None
