"""Backbones: names (Keras aliases or timm), weights (file, package, hub), preprocessing.

The names are light; the model parts (torch, timm) load on first use, so that reading a
default here does not cost the command line seconds of imports.
"""

from headstart.modalities.image.backbones.aliases import (
    DEFAULT_BACKBONE,
    KERAS_ALIASES,
    resolve_name,
)

_LAZY = {
    "Backbone": "headstart.modalities.image.backbones.model",
    "LoadedBackbone": "headstart.modalities.image.backbones.model",
    "Preprocessing": "headstart.modalities.image.backbones.model",
    "create_backbone": "headstart.modalities.image.backbones.model",
    "create_timm_model": "headstart.modalities.image.backbones.model",
    "preprocessing_for": "headstart.modalities.image.backbones.model",
    "WeightSource": "headstart.modalities.image.backbones.weights",
    "packaged_weights_path": "headstart.modalities.image.backbones.weights",
    "read_state_dict": "headstart.modalities.image.backbones.weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'headstart.modalities.image.backbones' has no attribute {name!r}")


__all__ = [
    "DEFAULT_BACKBONE",
    "KERAS_ALIASES",
    "Backbone",
    "LoadedBackbone",
    "Preprocessing",
    "WeightSource",
    "create_backbone",
    "create_timm_model",
    "packaged_weights_path",
    "preprocessing_for",
    "read_state_dict",
    "resolve_name",
]
