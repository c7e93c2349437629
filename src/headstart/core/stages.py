"""Where a network can be cut, whatever the modality: the stage map (what "the last N
stages" and "the first K blocks" mean) and the sequential plan (units that, applied in order,
equal the network's feature computation; a cut is a unit index). Each modality derives them
from its own networks (images from timm's group matchers, text from a transformer's layer
list); :mod:`headstart.core.strategies` only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        return [f"{word} {i + 1}: {_span(s)}" for i, s in enumerate(self.stages)] + (
            [f"top: {_span(self.top)}"] if self.top else []
        )


def _span(names: list[str]) -> str:
    """``blocks.1 (12 modules)`` for modules under one parent, else first .. last."""
    if len(names) == 1:
        return names[0]
    parts = [n.split(".") for n in names]
    common = []
    for pieces in zip(*parts):
        if len(set(pieces)) > 1:
            break
        common.append(pieces[0])
    if common and all(len(p) > len(common) for p in parts):
        return f"{'.'.join(common)} ({len(names)} modules)"
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
        return nn.Sequential(*[m for _, m in self.units[:cut]])

    def suffix(self, cut: int) -> nn.Sequential:
        return nn.Sequential(*[m for _, m in self.units[cut:]])

    def cut_name(self, cut: int) -> str:
        """Where the cut sits, in words: the output of the last frozen unit."""
        if cut == 0:
            return "input (nothing frozen before the first unit)"
        if cut >= len(self.units):
            return "top (pooled features)"
        return f"after {self.units[cut - 1][0]} (before {self.units[cut][0]})"
