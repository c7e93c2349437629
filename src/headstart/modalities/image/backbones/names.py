"""Which image backbone names exist, answered without importing torch or timm.

timm registers each architecture with ``@register_model`` on a function of that name in
``timm/models/*.py``; reading those files (found with ``importlib.util.find_spec``, about 25 ms)
gives the same list as ``timm.list_models()``, which needs the 10 s import of torch and timm
(``tests/test_backbones.py`` checks the two agree). So a mistyped backbone is answered at
once, with the closest Keras aliases and timm names. ``create_timm_model`` still asks timm
itself before it builds anything.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from pathlib import Path

from headstart.choices import BACKBONE_SEP as STACK_SEP
from headstart.errors import BackboneError, ConfigError
from headstart.modalities.image.backbones.aliases import KERAS_ALIASES, resolve_name

_REGISTERED = re.compile(r"@register_model\s*\n\s*def\s+(\w+)\s*\(")
#: Fewer names than this means timm's layout changed: ask timm itself (slow, but right).
_PLAUSIBLE = 100


@functools.cache
def timm_model_names() -> frozenset[str]:
    """Every architecture name timm registers (``timm.list_models()``, without tags)."""
    spec = importlib.util.find_spec("timm")
    names: set[str] = set()
    if spec is not None and spec.origin:
        for file in (Path(spec.origin).parent / "models").glob("*.py"):
            try:
                names.update(_REGISTERED.findall(file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
    if len(names) < _PLAUSIBLE:
        import timm

        names = set(timm.list_models())
    return frozenset(names)


def close_backbones(name: str, n: int = 3) -> list[str]:
    """The Keras aliases and timm names closest to ``name`` (case ignored), best first; an
    alias is shown with its timm name, e.g. ``DenseNet121 (densenet121)``."""
    base = name.strip().split(".")[0]
    by_lower: dict[str, str] = {}
    for alias, timm_name in KERAS_ALIASES.items():
        by_lower[alias.lower()] = f"{alias} ({timm_name})"
    for timm_name in timm_model_names():
        by_lower.setdefault(timm_name, timm_name)
    found = difflib.get_close_matches(base.lower(), list(by_lower), n=n * 2, cutoff=0.6)
    shown: list[str] = []
    for key in found:  # an alias and its own timm name are one suggestion
        label = by_lower[key]
        if not any(label in s or s in label for s in shown):
            shown.append(label)
    return shown[:n]


def unknown_backbone(name: str) -> BackboneError:
    """The error for a backbone name neither an alias nor a timm model: the closest names,
    then where to find the others."""
    close = close_backbones(name)
    hint = f" Did you mean {said_or(close)}?" if close else ""
    return BackboneError(
        f"unknown backbone {name!r}.{hint} Use a Keras name (DenseNet121, MobileNetV2, "
        "ResNet50, ...) or a timm model name (headstart backbones lists the Keras names, "
        "headstart backbones --search PATTERN timm's)."
    )


def said_or(names: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_backbone_name(name: str) -> str:
    """The timm name of ``name`` (a Keras alias, case ignored, or a timm name, with or without
    a pretrained tag like ``.tv_in1k``); raises :func:`unknown_backbone` otherwise."""
    timm_name = resolve_name(name)
    if timm_name.split(".")[0] not in timm_model_names():
        raise unknown_backbone(name)
    return timm_name


#: What a refused stack is told to do.
SAME_PIXELS = (
    "Backbones side by side read one input: choose backbones with the same pixel statistics "
    "(the EfficientNet-Lite family shares them)."
)


def stack_names(name: str) -> list[str] | None:
    """The member names of a stack's ``--backbone``, or None for one backbone."""
    if STACK_SEP not in name:
        return None
    parts = [p.strip() for p in name.split(STACK_SEP)]
    if any(not p for p in parts):
        raise ConfigError(
            f"--backbone {name!r}: an empty name between '{STACK_SEP}'s; name each backbone, "
            "e.g. tf_efficientnet_lite0+tf_efficientnet_lite1."
        )
    if len(set(parts)) < len(parts):
        raise ConfigError(f"--backbone {name!r}: a backbone is named twice; name each once.")
    return parts


def check_stack_names(timm_names: list[str]) -> None:
    """Refuse, before any data is read, a stack whose members expect other pixel statistics
    or interpolation than the first's (read from timm's pretrained configurations; what
    :func:`create_stack` checks again on the loaded networks)."""
    import timm

    def pixels(timm_name: str):
        cfg = timm.models.get_pretrained_cfg(timm_name.split(".")[0])
        if cfg is None:
            return None
        return {"mean": cfg.mean, "std": cfg.std, "interpolation": cfg.interpolation}

    first = pixels(timm_names[0])
    for timm_name in timm_names[1:]:
        other = pixels(timm_name)
        if first is None or other is None:
            continue  # (checked when loaded)
        diff = [f"{k} {other[k]} (not {first[k]})" for k in first if first[k] != other[k]]
        if diff:
            raise ConfigError(
                f"{timm_name} expects other pixels than {timm_names[0]}: {'; '.join(diff)}. "
                f"{SAME_PIXELS}"
            )
