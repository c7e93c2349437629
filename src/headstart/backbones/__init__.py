"""Backbones: names (Keras aliases or timm), weights (file, package, hub), preprocessing."""

from headstart.backbones.aliases import DEFAULT_BACKBONE, KERAS_ALIASES, resolve_name
from headstart.backbones.model import (
    Backbone,
    LoadedBackbone,
    Preprocessing,
    create_backbone,
    create_timm_model,
    preprocessing_for,
)
from headstart.backbones.weights import WeightSource, packaged_weights_path, read_state_dict

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
