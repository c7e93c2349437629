"""Where a network can be cut, whatever the modality: the stage map (what "the last N
stages" and "the first K blocks" mean) and the sequential plan (units that, applied in order,
equal the network's feature computation; a cut is a unit index). Each modality derives them
from its own networks (images from timm's group matchers, text from a transformer's layer
list); :mod:`headstart.core.strategies` only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a network is cut, not when a setting is checked
    from torch import nn

from headstart.errors import ConfigError


@dataclass
class StageMap:
    """Module names (those holding parameters) of the stem, each stage, the top, each block."""

    stem: list[str]
    stages: list[list[str]]
    top: list[str]
    blocks: list[list[str]] = field(default_factory=list)

    def unfreeze_last(self, n: int) -> list[str]:
        """Modules trainable with ``--unfreeze n``: the last n stages and the top."""
        if n < 0:
            raise ConfigError(f"--unfreeze must be 0 or more; got {n}.")
        if n > len(self.stages):
            raise ConfigError(
                f"--unfreeze {n}: this backbone has {len(self.stages)} stages; use at most "
                f"{len(self.stages)}, or --strategy full."
            )
        if n == 0:
            return []
        return [m for stage in self.stages[len(self.stages) - n :] for m in stage] + self.top

    def freeze_first(self, k: int) -> list[str]:
        """Modules trainable with ``--layers k``: everything after the first k blocks."""
        if not 0 <= k <= len(self.blocks):
            raise ConfigError(
                f"--layers {k}: this backbone has {len(self.blocks)} blocks; choose 0 to "
                f"{len(self.blocks)}."
            )
        return [m for block in self.blocks[k:] for m in block] + self.top

    def describe(self, word: str = "stage") -> list[str]:
        """One line per stage (``word``: what the modality calls one), then the top."""
        groups = [*self.stages, self.top]
        everything = [n for g in [self.stem, *groups] for n in g]

        def span(group: list[str]) -> str:
            mine = set(group)
            return _span(group, [n for n in everything if n not in mine])

        return [f"{word} {i + 1}: {span(s)}" for i, s in enumerate(self.stages)] + (
            [f"top: {span(self.top)}"] if self.top else []
        )


#: A stage made of at most this many parts under a shared parent is named part by part.
_PARTS_NAMED = 4


def _span(names: list[str], others: list[str]) -> str:
    """``blocks.1 (12 modules)`` for modules under a parent of their own; where the parent
    holds other stages too (DenseNet's ``features``), the parts under it, e.g.
    ``features.denseblock1 + features.transition1 (26 modules)``; else first .. last."""
    if len(names) == 1:
        return names[0]
    parts = [n.split(".") for n in names]
    common = []
    for pieces in zip(*parts):
        if len(set(pieces)) > 1:
            break
        common.append(pieces[0])
    if common and all(len(p) > len(common) for p in parts):
        parent = ".".join(common)
        if not any(o == parent or o.startswith(parent + ".") for o in others):
            return f"{parent} ({len(names)} modules)"
        children = list(dict.fromkeys(".".join(p[: len(common) + 1]) for p in parts))
        if len(children) <= _PARTS_NAMED:
            return f"{' + '.join(children)} ({len(names)} modules)"
    return f"{names[0]} .. {names[-1]} ({len(names)} modules)"


@dataclass
class SequentialPlan:
    """``units`` applied in order equal ``forward_features``; a cut is a unit index."""

    units: list[tuple[str, nn.Module]]

    def cut_for(self, trainable: set[str] | list[str]) -> int:
        """Index of the first unit holding a trainable module (len(units) if none)."""
        trainable = list(trainable)
        for i, (name, _) in enumerate(self.units):
            prefix = name + "."
            if any(t == name or t.startswith(prefix) for t in trainable):
                return i
        return len(self.units)

    def prefix(self, cut: int) -> nn.Sequential:
        from torch import nn

        return nn.Sequential(*[m for _, m in self.units[:cut]])

    def suffix(self, cut: int) -> nn.Sequential:
        from torch import nn

        return nn.Sequential(*[m for _, m in self.units[cut:]])

    def cut_name(self, cut: int) -> str:
        """Where the cut sits, in words: the output of the last frozen unit."""
        if cut == 0:
            return "input (nothing frozen before the first unit)"
        if cut >= len(self.units):
            return "top (pooled features)"
        return f"after {self.units[cut - 1][0]} (before {self.units[cut][0]})"
