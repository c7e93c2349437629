"""What the frozen encoder outputs for the head: the pooled last features, or pooled
statistics from every depth (``--features multi``). Shared by every modality; the image
backbones know where their stages end (``modalities/image/backbones/depth.py``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from headstart.choices import FEATURE_KINDS, STAGE_POOLINGS
from headstart.errors import ConfigError

#: ``--feature-stages auto``: the last three stages (the last one being the last features);
#: measured against ``all`` in BENCHMARKS.md.
AUTO_STAGES = 3


@dataclass(frozen=True)
class FeatureSpec:
    """What the frozen backbone outputs: the pooled last features only, or every depth."""

    kind: str = "last"
    stages: str = "auto"  # "auto", "all" or "2,5,7" (1-based stage numbers)
    pooling: str = "avg+max"

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ConfigError(
                f"--features must be one of {', '.join(FEATURE_KINDS)}; got {self.kind!r}."
            )
        if self.pooling not in STAGE_POOLINGS:
            raise ConfigError(
                f"--stage-pooling must be one of {', '.join(STAGE_POOLINGS)}; got {self.pooling!r}."
            )
        if self.stages not in ("auto", "all"):
            parse_stage_list(self.stages)

    @property
    def multi(self) -> bool:
        return self.kind == "multi"

    def to_dict(self) -> dict:
        return asdict(self)

    def resolve(self, n_stages: int) -> list[int]:
        """The 1-based stage numbers this spec takes from a backbone with ``n_stages``."""
        if self.stages == "all":
            return list(range(1, n_stages + 1))
        if self.stages == "auto":
            return list(range(max(1, n_stages - AUTO_STAGES + 1), n_stages + 1))
        chosen = parse_stage_list(self.stages)
        over = [s for s in chosen if s > n_stages]
        if over:
            raise ConfigError(
                f"--feature-stages {self.stages}: this backbone has {n_stages} stages; "
                f"use numbers from 1 to {n_stages}."
            )
        return chosen


def parse_stage_list(text: str) -> list[int]:
    """'2,5,7' -> [2, 5, 7] (sorted, unique); a clear error for anything else."""
    try:
        values = sorted({int(t) for t in str(text).split(",") if t.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise ConfigError(
            f"--feature-stages must be auto, all, or stage numbers from 1 like 5,6,7; got {text!r}."
        )
    return values
