"""The stage map: what "the last N stages" and "the first K blocks" mean, on every family.

Derived from timm's own metadata, never from per-family layer names:

* **stages** are timm's coarse parameter groups (``model.group_matcher(coarse=True)``) minus
  the stem: DenseNet's four dense blocks (each with the transition after it), ResNet's
  ``layer1-4``, EfficientNet/MobileNet's ``blocks.0-6``, ConvNeXt's stages, ViT's blocks. Where
  timm's coarse groups are single layers (VGG), consecutive layers at the same output
  resolution are merged, giving VGG's five conv blocks as in Keras.
* the **top** is what runs after the last stage: a final norm (DenseNet's ``norm5``,
  ConvNeXt's ``head.norm``) or head convolution (EfficientNet's ``conv_head``). It is unfrozen
  with any ``--unfreeze N >= 1``, as Keras' ``conv5`` block comes with the final BN.
* **blocks** are timm's fine groups (``group_matcher(coarse=False)``), the stem counted as block
  1: ``--layers K`` freezes the first K.

``--unfreeze 1`` on DenseNet121 is therefore ``denseblock4`` + ``norm5``: the lesson's ``conv5``.
"""

from __future__ import annotations

import torch
from timm.models._manipulate import group_modules
from torch import nn

from headstart.core.stages import StageMap
from headstart.errors import ConfigError

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def _param_modules(model: nn.Module) -> list[str]:
    """Modules owning parameters directly, in registration order."""
    return [
        n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))
    ]


def _execution_order(model: nn.Module, names: list[str]) -> tuple[list[str], dict[str, int]]:
    """Order in which ``forward_features`` calls the modules, and their output widths (W)."""
    order: list[str] = []
    width: dict[str, int] = {}
    modules = dict(model.named_modules())
    hooks = []
    for n in names:

        def hook(_m, _i, out, _n=n):
            if _n not in width:
                order.append(_n)
                width[_n] = out.shape[-1] if isinstance(out, torch.Tensor) else -1

        hooks.append(modules[n].register_forward_hook(hook))
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    h, w = tuple(cfg.get("input_size", (3, 224, 224)))[1:]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.forward_features(torch.zeros(1, 3, h, w))
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was)
    return order, width


def stage_map(model: nn.Module) -> StageMap:
    """Build the stage map of a timm model from its group matchers."""
    owners = _param_modules(model)
    coarse = list(group_modules(model, model.group_matcher(coarse=True)).values())
    fine = list(group_modules(model, model.group_matcher(coarse=False)).values())
    order, width = _execution_order(model, owners)
    position = {n: i for i, n in enumerate(order)}
    used = set(order)

    def keep(group: list[str]) -> list[str]:
        return [n for n in group if n in used and n in owners]

    coarse = [g for g in (keep(g) for g in coarse) if g]
    fine = [g for g in (keep(g) for g in fine) if g]
    coarse.sort(key=lambda g: position[g[0]])
    fine.sort(key=lambda g: position[g[0]])
    if not coarse:
        raise ConfigError("this backbone exposes no stages (timm group_matcher) to unfreeze.")
    stem, stages = coarse[0], coarse[1:]
    modules = dict(model.named_modules())
    # a final group made only of normalisation layers is the top, not a stage
    top: list[str] = []
    while stages and all(isinstance(modules[n], _NORMS) for n in stages[-1]):
        top = stages.pop() + top
    if stages and all(len(s) == 1 for s in stages) and len(stages) > 6:
        stages = _merge_by_resolution(stages, width)  # VGG: one conv per group
    if not stages:
        raise ConfigError("this backbone has no stages after its stem to unfreeze.")
    # modules run after the last stage but in no group (EfficientNet's conv_head) are top too
    grouped = {n for g in coarse for n in g}
    end = position[stages[-1][-1]]
    top += [n for n in order if n not in grouped and position[n] > end]
    top = sorted(set(top), key=lambda n: position[n])
    return StageMap(stem=stem, stages=stages, top=top, blocks=fine)


def _merge_by_resolution(stages: list[list[str]], width: dict[str, int]) -> list[list[str]]:
    merged: list[list[str]] = []
    for s in stages:
        if merged and width.get(merged[-1][-1]) == width.get(s[0]):
            merged[-1] = merged[-1] + s
        else:
            merged.append(list(s))
    return merged
