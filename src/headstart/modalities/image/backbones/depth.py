"""Features from every depth (Head2Toe, Evci et al., ICML 2022): pooled statistics of each
chosen stage's output and of the last feature map, concatenated.

A frozen network's early and middle stages describe textures, edges and parts that the last
stage has already abstracted away; on data far from ImageNet (solar cells, handwriting) they
carry what a linear head needs. The frozen forward pass visits every stage anyway, so the extra
features cost one forward pass, like the last ones, and are cached the same way.

*Where a stage ends* comes from the stage map (``backbones.stages``), so stage ``k`` here is
the stage ``--unfreeze`` counts: the output of the last unit of the backbone's verified
sequential chain that belongs to the stage (after its residual additions and any pooling), or,
for families without a chain (ViT), the largest module that holds only that stage.

The statistics of a stage's feature map (B, C, H, W), or of a token sequence (B, N, C), are
taken over space / tokens per channel: the average and the maximum (``avg+max``), or the
average and the standard deviation (``avg+std``). The last feature map gets the same
statistics, plus the ``--pooling`` one when they lack it: the average matters where the
maximum is noisy (solar-cell defects: a tuned probe scored 87.0% on average-pooled and 81.5%
on max-pooled last features, BENCHMARKS.md). Stages are normalised downstream, per
feature: by the lesson head's BatchNorm, or the linear probe's standardisation (folded into
its weights; :mod:`headstart.core.probe`).
"""

from __future__ import annotations

import torch
from torch import nn

from headstart.core.featurespec import FeatureSpec
from headstart.core.stages import StageMap
from headstart.errors import ConfigError
from headstart.modalities.image.backbones.split import sequential_plan
from headstart.modalities.image.backbones.stages import stage_map


def stage_ends(model: nn.Module, smap: StageMap | None = None) -> list[str]:
    """The module whose output is each stage's output, for every stage but the last (whose
    output is the backbone's final feature map: the last features)."""
    smap = smap or stage_map(model)
    plan = sequential_plan(model)
    if plan is not None:  # the unit just before the next stage's first unit
        names = [name for name, _ in plan.units]
        ends = []
        for following in smap.stages[1:]:
            first = min(i for i, name in enumerate(names) if _holds_any(name, following))
            ends.append(names[first - 1])
        return ends
    owners = {n: i for i, stage in enumerate(smap.stages) for n in stage}
    outside = set(smap.stem) | set(smap.top)
    modules = dict(model.named_modules())
    ends = []
    for i, stage in enumerate(smap.stages[:-1]):
        parts = stage[-1].split(".")
        best = stage[-1]
        for k in range(len(parts) - 1, 0, -1):  # widen while the module holds only stage i
            candidate = ".".join(parts[:k])
            held = [n for n, _ in modules[candidate].named_modules(prefix=candidate)]
            if any(owners.get(n, i) != i or n in outside for n in held):
                break
            best = candidate
        ends.append(best)
    return ends


def _holds_any(unit: str, modules: list[str]) -> bool:
    return any(m == unit or m.startswith(unit + ".") for m in modules)


def pooled_stats(x: torch.Tensor, pooling: str) -> torch.Tensor:
    """Per-channel statistics over space (B, C, H, W) or tokens (B, N, C) -> (B, 2C)."""
    if x.ndim == 4:
        flat = x.flatten(2)  # B, C, HW
    elif x.ndim == 3:
        flat = x.transpose(1, 2)  # B, C, N
    else:
        raise ConfigError(f"a stage output of shape {tuple(x.shape)} cannot be pooled.")
    avg = flat.mean(dim=2)
    other = flat.amax(dim=2) if pooling == "avg+max" else flat.std(dim=2, unbiased=False)
    return torch.cat([avg, other], dim=1)


def _keep_output(module: nn.Module, _inputs, output) -> None:
    # stored on the module itself (not in a closure), so a deep copy of the network keeps its
    # own outputs; the Backbone reads and clears it after each forward pass
    module._headstart_stage_output = output


class StageTaps:
    """Forward hooks on the chosen stages' end modules of one timm model."""

    def __init__(self, model: nn.Module, spec: FeatureSpec):
        ends = stage_ends(model)
        n_stages = len(ends) + 1
        #: 1-based stage numbers tapped; the last stage is the last features, always included
        self.stages = [s for s in spec.resolve(n_stages) if s < n_stages]
        if not self.stages:
            raise ConfigError(
                f"--feature-stages {spec.stages}: stage {n_stages} is this backbone's last "
                "stage, whose pooled output is always included; choose earlier stages too "
                f"(1 to {n_stages - 1})."
            )
        self.names = [ends[s - 1] for s in self.stages]
        self.pooling = spec.pooling
        for name in self.names:
            model.get_submodule(name).register_forward_hook(_keep_output)

    def collect(self, model: nn.Module) -> list[torch.Tensor]:
        """Pooled statistics of each tapped stage from the forward pass that just ran."""
        out = []
        for name in self.names:
            m = model.get_submodule(name)
            x = m.__dict__.pop("_headstart_stage_output", None)
            if x is None:
                raise RuntimeError(f"stage output {name} was not produced by the forward pass")
            out.append(pooled_stats(x.float(), self.pooling))
        return out
