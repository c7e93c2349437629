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

from headstart.errors import BackboneError
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
