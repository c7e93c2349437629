"""Strategies are choices of where the frozen prefix ends: before the cut, a network gives the
same output every epoch, so that part runs once and is cached (:mod:`headstart.core.cache`).

| strategy            | frozen                       | trained                              |
|---------------------|------------------------------|--------------------------------------|
| feature-extraction  | the whole backbone           | the head                             |
| fine-tune N         | all but the last N stages    | last N stages, the top, the head     |
| freeze-first K      | the first K blocks           | the rest, the head                   |
| full                | nothing                      | everything (pretrained start)        |
| scratch             | nothing                      | everything (random start)            |

:func:`plan_strategy` sets ``requires_grad`` accordingly and finds the cut: the first unit of
the backbone's sequential chain that holds a trainable module. Everything before it is the
frozen prefix, computed once and cached; everything after is run every step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a network is planned, not when a setting is checked
    from torch import nn

from headstart.choices import STRATEGIES
from headstart.core.stages import SequentialPlan
from headstart.errors import ConfigError


@dataclass(frozen=True)
class Strategy:
    kind: str = "feature-extraction"
    unfreeze: int = 1
    layers: int = 0
    #: what the network's stages are called in words: image stages, a text encoder's layers
    unit: str = "stage"

    def __post_init__(self) -> None:
        if self.kind not in STRATEGIES:
            raise ConfigError(
                f"strategy must be one of {', '.join(STRATEGIES)}; got {self.kind!r}."
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def trains_backbone(self) -> bool:
        return self.kind != "feature-extraction"

    def label(self) -> str:
        unit = self.unit
        return {
            "fine-tune": f"fine-tune (last {self.unfreeze} {unit}{'s' * (self.unfreeze != 1)})",
            "freeze-first": (
                f"freeze-first (embeddings and {self.layers} layers frozen)"
                if unit == "layer"
                else f"freeze-first ({self.layers} blocks frozen)"
            ),
        }.get(self.kind, self.kind)


@dataclass
class StrategyPlan:
    """What a strategy means for one backbone: trainable modules and where the cut sits."""

    strategy: Strategy
    trainable: list[str]
    plan: SequentialPlan | None
    cut: int | None  # unit index; None when the backbone has no verified sequential chain

    @property
    def cached_prefix(self) -> bool:
        """True when a frozen prefix exists and can be computed once and cached."""
        return self.plan is not None and self.cut is not None and self.cut > 0

    def describe(self) -> str:
        if self.plan is None:
            return "no sequential cut for this family: frozen layers run every step"
        return self.plan.cut_name(self.cut)


def plan_strategy(backbone: nn.Module, strategy: Strategy) -> StrategyPlan:
    """Freeze / unfreeze ``backbone`` (an image backbone or a text encoder: anything with a
    ``model``, a ``stage_map()`` and a ``sequential_plan()``) for ``strategy`` and locate the
    cut."""
    model = backbone.model
    if strategy.kind in ("full", "scratch"):
        names = [
            n
            for n, m in model.named_modules()
            if n and any(True for _ in m.parameters(recurse=False))
        ]
    elif strategy.kind == "feature-extraction":
        names = []
    else:
        smap = backbone.stage_map()
        names = (
            smap.unfreeze_last(strategy.unfreeze)
            if strategy.kind == "fine-tune"
            else smap.freeze_first(strategy.layers)
        )
    trainable = set(names)
    modules = dict(model.named_modules())
    everything = strategy.kind in ("full", "scratch")
    for p in model.parameters():  # root-level tensors (ViT's pos_embed) count as the stem
        p.requires_grad_(everything)
    for n in trainable:
        for p in modules[n].parameters(recurse=False):
            p.requires_grad_(True)
    if strategy.kind == "feature-extraction":
        return StrategyPlan(strategy, [], None, None)
    plan = backbone.sequential_plan()
    cut = plan.cut_for(trainable) if plan is not None else None
    return StrategyPlan(strategy, sorted(trainable), plan, cut)


def frozen_modules_to_eval(
    module: nn.Module, bn: str = "frozen", new: nn.Module | None = None
) -> None:
    """Call after ``module.train()``: every subtree without a trainable parameter runs in
    inference mode (frozen BatchNorm statistics never move, dropout off), and with
    ``bn="frozen"`` every *pretrained* BatchNorm does too (statistics fixed; its scale and shift
    still learn). ``--bn`` is about the pretrained backbone: the BatchNorm layers of ``new``
    (the head, created for this task) always learn their statistics, as in the lesson's Keras
    model.
    """
    if bn not in ("frozen", "train"):
        raise ConfigError(f"--bn must be frozen or train; got {bn!r}.")
    from torch import nn

    fresh = {id(m) for m in new.modules()} if new is not None else set()
    for m in module.modules():
        params = list(m.parameters())
        frozen_subtree = bool(params) and not any(p.requires_grad for p in params)
        frozen_bn = (
            bn == "frozen" and isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in fresh
        )
        if frozen_subtree or frozen_bn:
            m.eval()
